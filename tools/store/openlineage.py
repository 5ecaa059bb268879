"""OpenLineage run events (JSON Lines) turned into ``runs`` and ``lineage_edges`` rows.

A file named ``openlineage.jsonl`` or ``<anything>.openlineage.jsonl`` holds one OpenLineage
``RunEvent`` per line (https://openlineage.io/spec/2-0-2/OpenLineage.json): ``eventType``
(START, RUNNING, COMPLETE, ABORT, FAIL, OTHER), ``eventTime``, ``run.runId``, ``run.facets``,
``job.namespace``/``job.name`` and ``inputs``/``outputs`` datasets (``namespace``, ``name``).

Mapping
-------
- One ``runs`` row per ``run.runId``; events of a run are ordered by ``eventTime`` and their
  facets merged (later events override earlier ones), as OpenLineage intends.
- Forest's own fields come from a custom run facet ``run.facets.forest``:
  ``output_id`` (required), ``kind`` (required, a contract component kind), and optional
  ``component_id``, ``version``, ``params`` (object), ``metrics`` (object), ``status``.
- ``component_id`` = ``forest.component_id``, else ``job.name``.
- ``started_at`` = time of the START event (else of the earliest event); ``ended_at`` = time of
  the last COMPLETE/FAIL/ABORT event, NULL when the run never ended.
- ``status``: FAIL or ABORT -> ``failed``; COMPLETE -> ``forest.status`` if given (so a run
  can be marked ``degraded``) else ``ok``; a run with only START/RUNNING/OTHER events ->
  ``degraded`` (it never reported an end). OTHER events add facets but never set the status.
- ``lineage_edges``: run A -> run B when a dataset (same ``namespace`` + ``name``) is among
  A's outputs and B's inputs, both runs having the same ``output_id``. The ``parent`` run
  facet describes orchestration (a DAG run owning task runs), not data flow, so it makes
  no edge.

Malformed lines raise ``IngestError`` naming the file, the line and the field.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tools.errors import IngestError
from tools.store.contract import COMPONENT_KINDS

__all__ = ["EVENT_TYPES", "FACET", "is_openlineage_file", "read_events"]

EVENT_TYPES: Final = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
FACET: Final = "forest"
RUN_STATUSES: Final = ("ok", "degraded", "failed")
_TERMINAL: Final = {"COMPLETE": "ok", "FAIL": "failed", "ABORT": "failed"}

Dataset = tuple[str, str]


@dataclass
class _Event:
    line: int
    time: dt.datetime
    type: str
    job: str
    facet: dict[str, Any]
    inputs: list[Dataset]
    outputs: list[Dataset]


@dataclass
class _Run:
    run_id: str
    events: list[_Event] = field(default_factory=list)


def is_openlineage_file(path: Path) -> bool:
    """Whether ``path`` is named as an OpenLineage events file."""
    name = path.name.lower()
    return name == "openlineage.jsonl" or name.endswith(".openlineage.jsonl")


def read_events(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse the events in ``path`` into (runs rows, lineage_edges rows).

    Each row carries ``_line``: the line of the run's first event, for error messages.
    """
    runs: dict[str, _Run] = {}
    with path.open(encoding="utf-8") as fh:
        for n, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise IngestError(f"{path.name} line {n}: not valid JSON ({exc.msg})") from exc
            run_id, event = _parse(raw, _Where(path.name, n))
            runs.setdefault(run_id, _Run(run_id)).events.append(event)
    rows = [_run_row(run, path.name) for run in runs.values()]
    return rows, _edges(rows)


@dataclass(frozen=True)
class _Where:
    file: str
    line: int

    def error(self, fld: str, problem: str) -> IngestError:
        return IngestError(f"{self.file} line {self.line}: field {fld!r} {problem}")


def _parse(raw: Any, where: _Where) -> tuple[str, _Event]:
    if not isinstance(raw, dict):
        raise where.error("(event)", "must be a JSON object (one RunEvent per line)")
    etype = raw.get("eventType", "OTHER")  # optional in the spec; OTHER adds facets only
    if etype not in EVENT_TYPES:
        raise where.error("eventType", f"is {etype!r}; expected one of {', '.join(EVENT_TYPES)}")
    run = _obj(raw, "run", where)
    job = _obj(raw, "job", where)
    facets = run.get("facets") or {}
    if not isinstance(facets, dict):
        raise where.error("run.facets", "must be an object")
    facet = facets.get(FACET) or {}
    if not isinstance(facet, dict):
        raise where.error(f"run.facets.{FACET}", "must be an object")
    _check_facet(facet, where)
    event = _Event(
        line=where.line,
        time=_time(raw.get("eventTime"), where),
        type=etype,
        job=_str(job, "name", where, "job.name"),
        facet=facet,
        inputs=_datasets(raw, "inputs", where),
        outputs=_datasets(raw, "outputs", where),
    )
    _str(job, "namespace", where, "job.namespace")
    return _str(run, "runId", where, "run.runId"), event


def _obj(raw: dict[str, Any], key: str, where: _Where) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise where.error(key, "is missing or not an object")
    return value


def _str(obj: dict[str, Any], key: str, where: _Where, fld: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise where.error(fld, "is missing or not a non-empty string")
    return value


def _time(value: Any, where: _Where) -> dt.datetime:
    if not isinstance(value, str):
        raise where.error("eventTime", "is missing or not a string")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise where.error("eventTime", f"is {value!r}, not an ISO 8601 date-time") from exc
    aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC)


def _datasets(raw: dict[str, Any], key: str, where: _Where) -> list[Dataset]:
    items = raw.get(key) or []
    if not isinstance(items, list):
        raise where.error(key, "must be a list of datasets")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise where.error(f"{key}[{i}]", "must be an object with namespace and name")
        out.append(
            (
                _str(item, "namespace", where, f"{key}[{i}].namespace"),
                _str(item, "name", where, f"{key}[{i}].name"),
            )
        )
    return out


def _check_facet(facet: dict[str, Any], where: _Where) -> None:
    prefix = f"run.facets.{FACET}"
    if "kind" in facet and facet["kind"] not in COMPONENT_KINDS:
        raise where.error(
            f"{prefix}.kind", f"is {facet['kind']!r}; expected one of {', '.join(COMPONENT_KINDS)}"
        )
    if "status" in facet and facet["status"] not in RUN_STATUSES:
        raise where.error(
            f"{prefix}.status", f"is {facet['status']!r}; expected one of {', '.join(RUN_STATUSES)}"
        )
    for key in ("output_id", "component_id", "version"):
        if key in facet and not isinstance(facet[key], str | int | float):
            raise where.error(f"{prefix}.{key}", "must be a string")
    for key in ("params", "metrics"):
        if facet.get(key) is not None and not isinstance(facet[key], dict):
            raise where.error(f"{prefix}.{key}", "must be an object")


def _run_row(run: _Run, file: str) -> dict[str, Any]:
    events = sorted(run.events, key=lambda e: (e.time, e.line))
    first = min(run.events, key=lambda e: e.line)
    facet: dict[str, Any] = {}
    for event in events:
        facet.update({k: v for k, v in event.facet.items() if not k.startswith("_")})
    for key in ("output_id", "kind"):
        if facet.get(key) in (None, ""):
            raise _Where(file, first.line).error(
                f"run.facets.{FACET}.{key}", f"is missing for run {run.run_id!r} (no event sets it)"
            )
    starts = [e.time for e in events if e.type == "START"]
    ends = [e for e in events if e.type in _TERMINAL]
    if not ends:
        status = "degraded"
    elif ends[-1].type == "COMPLETE":
        status = facet.get("status") or "ok"
    else:
        status = "failed"
    return {
        "run_id": run.run_id,
        "output_id": str(facet["output_id"]),
        "component_id": str(facet.get("component_id") or events[-1].job),
        "kind": facet["kind"],
        "version": None if facet.get("version") is None else str(facet["version"]),
        "started_at": (starts[0] if starts else events[0].time).isoformat(),
        "ended_at": ends[-1].time.isoformat() if ends else None,
        "status": status,
        "params": None if facet.get("params") is None else json.dumps(facet["params"]),
        "metrics": None if facet.get("metrics") is None else json.dumps(facet["metrics"]),
        "_line": first.line,
        "_inputs": {d for e in events for d in e.inputs},
        "_outputs": {d for e in events for d in e.outputs},
    }


def _edges(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    producers: dict[tuple[str, Dataset], list[str]] = {}
    for row in rows:
        for ds in sorted(row["_outputs"]):
            producers.setdefault((row["output_id"], ds), []).append(row["run_id"])
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        for ds in sorted(row.pop("_inputs")):
            for parent in producers.get((row["output_id"], ds), []):
                if parent != row["run_id"]:
                    edges.setdefault(
                        (parent, row["run_id"]),
                        {
                            "output_id": row["output_id"],
                            "parent_run_id": parent,
                            "child_run_id": row["run_id"],
                            "_line": row["_line"],
                        },
                    )
    for row in rows:
        row.pop("_outputs")
    return list(edges.values())
