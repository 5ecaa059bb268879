"""OpenLineage run events (JSON Lines) turned into ``runs``, ``lineage_edges`` and ``logs`` rows.

A file named ``openlineage.jsonl`` or ``<anything>.openlineage.jsonl`` holds one OpenLineage
``RunEvent`` per line (https://openlineage.io/spec/2-0-2/OpenLineage.json): ``eventType``
(START, RUNNING, COMPLETE, ABORT, FAIL, OTHER), ``eventTime``, ``run.runId``, ``run.facets``,
``job.namespace``/``job.name`` and ``inputs``/``outputs`` datasets (``namespace``, ``name``).
``DatasetEvent`` and ``JobEvent`` lines (no ``run``) are skipped. No custom facet is needed.

Mapping
-------
- One ``runs`` row per ``run.runId``. The events of a run are merged across every events file
  of an ingest and with the run already in the store (a later ingest updates that row).
- ``output_id``, first that applies: ``run.facets.forest.output_id``; else the output rule
  (ingest option, default ``root``): ``root`` = ``run.facets.parent.root.run.runId``, else
  ``run.facets.parent.run.runId``; ``parent`` = ``run.facets.parent.run.runId``; ``job`` =
  ``<namespace>/<name>`` of the parent's root job, else of the parent job, else of the run's
  own job; or a callable taking the raw event and returning an id or None. A run none of
  these names is its own output (``output_id`` = its ``runId``). Once stored, a run keeps its
  output; an event mapping it to another output is an error.
- ``component_id`` = ``forest.component_id``, else ``job.name``; ``kind`` = ``forest.kind``,
  else ``transform``; ``version`` = ``forest.version``, else the ``processing_engine``
  facet's ``version``; ``params``, ``metrics``, ``status`` may come from ``forest`` too.
- ``started_at`` = time of the START event (else the stored start, else the earliest event);
  ``ended_at`` = time of the latest (by ``eventTime``, stored end included) COMPLETE/FAIL/ABORT
  event, NULL while the run has none; ``ended_at`` before ``started_at`` is an error.
  ``status``: FAIL or ABORT -> ``failed``; COMPLETE -> ``forest.status`` if given (so a run
  can be marked ``degraded``) else ``ok``; a run with only START/RUNNING/OTHER events ->
  ``degraded`` (it has not reported an end).
- ``metrics``: per input dataset ``<name>``, ``dataQualityMetrics`` (or ``inputStatistics``)
  give ``input.<name>.rowCount|bytes|size|fileCount`` and ``input.<name>.<column>.nullCount|
  distinctCount|sum|count|min|max``; per output, ``outputStatistics`` gives
  ``output.<name>.rowCount|size|fileCount``. ``forest.metrics`` wins over them.
- ``logs``: an ``errorMessage`` run facet is an ERROR line of the run at its event's time.
- ``lineage_edges`` (each stored once): run A -> run B when a dataset (``namespace`` +
  ``name``) is among A's outputs and B's inputs in the same ingest and both runs have the same
  ``output_id``; and parent -> child for a ``parent`` run facet, under the child's output
  (skipped when the parent run is known to belong to another output).

Malformed lines raise ``IngestError`` naming the file, the line and the field.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import duckdb

from tools.errors import IngestError
from tools.store.contract import COMPONENT_KINDS

__all__ = [
    "DEFAULT_KIND",
    "EVENT_TYPES",
    "FACET",
    "OUTPUT_RULES",
    "Loaded",
    "OutputRule",
    "is_openlineage_file",
    "load",
    "read_events",
    "update_runs",
]

EVENT_TYPES: Final = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
FACET: Final = "forest"
DEFAULT_KIND: Final = "transform"
RUN_STATUSES: Final = ("ok", "degraded", "failed")
OUTPUT_RULES: Final = ("root", "parent", "job")
_TERMINAL: Final = {"COMPLETE": "ok", "FAIL": "failed", "ABORT": "failed"}
_INPUT_STATS: Final = ("rowCount", "bytes", "size", "fileCount")
_COLUMN_STATS: Final = ("nullCount", "distinctCount", "sum", "count", "min", "max")
_OUTPUT_STATS: Final = ("rowCount", "size", "fileCount")
_RUN_COLUMNS: Final = (
    "run_id",
    "output_id",
    "component_id",
    "kind",
    "version",
    "started_at",
    "ended_at",
    "status",
    "params",
    "metrics",
)

Dataset = tuple[str, str]
OutputRule = str | Callable[[dict[str, Any]], str | None]


@dataclass
class _Event:
    file: str
    line: int
    seq: int
    time: dt.datetime
    type: str
    job: str
    facet: dict[str, Any]
    candidate: str | None  # output id the output rule names, if any
    fallback: str  # output id when no event names one
    parent: str | None
    engine_version: str | None
    error: dict[str, Any] | None
    metrics: dict[str, float]
    inputs: list[Dataset]
    outputs: list[Dataset]

    @property
    def where(self) -> _Where:
        return _Where(self.file, self.line)


@dataclass
class _Run:
    run_id: str
    events: list[_Event] = field(default_factory=list)


@dataclass
class Loaded:
    """What an ingest's events do to the store: rows to insert, runs to update in place."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)


def is_openlineage_file(path: Path) -> bool:
    """Whether ``path`` is named as an OpenLineage events file."""
    name = path.name.lower()
    return name == "openlineage.jsonl" or name.endswith(".openlineage.jsonl")


def read_events(paths: list[Path], rule: OutputRule = "root") -> dict[str, _Run]:
    """Parse the events of every file in ``paths``, grouped by ``run.runId``."""
    if isinstance(rule, str) and rule not in OUTPUT_RULES:
        raise IngestError(
            f"unknown OpenLineage output rule {rule!r}; use one of {', '.join(OUTPUT_RULES)}"
        )
    runs: dict[str, _Run] = {}
    seq = 0
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for n, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    raw = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise IngestError(f"{path.name} line {n}: not valid JSON ({exc.msg})") from exc
                if _not_a_run_event(raw):
                    continue
                seq += 1
                run_id, event = _parse(raw, _Where(path.name, n), seq, rule)
                runs.setdefault(run_id, _Run(run_id)).events.append(event)
    return runs


def load(con: duckdb.DuckDBPyConnection, runs: dict[str, _Run]) -> Loaded:
    """Merge parsed runs with the store's runs of the same ids; nothing is written here."""
    stored = _stored_runs(con, list(runs))
    out = Loaded()
    rows: list[dict[str, Any]] = []
    for run in runs.values():
        row = _run_row(run, stored.get(run.run_id))
        rows.append(row)
        (out.updates if run.run_id in stored else out.runs).append(row)
    output_of = {r["run_id"]: r["output_id"] for r in rows}
    parents = [p for run in runs.values() for e in run.events if (p := e.parent)]
    output_of = {**_stored_outputs(con, parents), **output_of}
    edges = _edges(rows) + _parent_edges(runs, rows, output_of)
    out.edges = _new_edges(con, edges)
    out.logs = _new_logs(con, _logs(runs, rows))
    for row in rows:
        for key in ("_inputs", "_outputs", "_start", "_end"):
            row.pop(key, None)
    return out


def update_runs(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Rewrite stored runs in place (inside the caller's transaction)."""
    sets = ", ".join(
        f"{c} = CAST(CAST(? AS TIMESTAMPTZ) AS TIMESTAMP)" if c.endswith("_at") else f"{c} = ?"
        for c in _RUN_COLUMNS[1:]
    )
    for row in rows:
        con.execute(
            f"UPDATE main.runs SET {sets} WHERE run_id = ?",
            [row[c] for c in _RUN_COLUMNS[1:]] + [row["run_id"]],
        )


@dataclass(frozen=True)
class _Where:
    file: str
    line: int

    def error(self, fld: str, problem: str) -> IngestError:
        return IngestError(f"{self.file} line {self.line}: field {fld!r} {problem}")


def _not_a_run_event(raw: Any) -> bool:
    """DatasetEvent and JobEvent lines carry no run: they describe no execution."""
    if not isinstance(raw, dict) or "run" in raw or "eventType" in raw:
        return False
    return "dataset" in raw or "job" in raw


def _parse(raw: Any, where: _Where, seq: int, rule: OutputRule) -> tuple[str, _Event]:
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
    name = _str(job, "name", where, "job.name")
    namespace = _str(job, "namespace", where, "job.namespace")
    run_id = _str(run, "runId", where, "run.runId")
    parent = _parent(facets, where)
    event = _Event(
        file=where.file,
        line=where.line,
        seq=seq,
        time=_time(raw.get("eventTime"), where),
        type=etype,
        job=name,
        facet=facet,
        candidate=_candidate(raw, rule, where),
        fallback=f"{namespace}/{name}" if rule == "job" else run_id,
        parent=None if parent is None else parent["run"]["runId"],
        engine_version=_engine_version(facets, where),
        error=_error_facet(facets, where),
        metrics=_dataset_metrics(raw),
        inputs=_datasets(raw, "inputs", where),
        outputs=_datasets(raw, "outputs", where),
    )
    return run_id, event


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


def _parent(facets: dict[str, Any], where: _Where) -> dict[str, Any] | None:
    parent = facets.get("parent")
    if parent is None:
        return None
    if not isinstance(parent, dict) or not isinstance(parent.get("run"), dict):
        raise where.error("run.facets.parent.run", "is missing or not an object")
    _str(parent["run"], "runId", where, "run.facets.parent.run.runId")
    return parent


def _candidate(raw: dict[str, Any], rule: OutputRule, where: _Where) -> str | None:
    """The output id the rule names for this event, or None when the event does not say."""
    if callable(rule):
        try:
            value = rule(raw)
        except Exception as exc:
            raise IngestError(f"{where.file} line {where.line}: output rule failed: {exc}") from exc
        if value is not None and (not isinstance(value, str) or not value):
            raise IngestError(
                f"{where.file} line {where.line}: output rule returned {value!r}, not an id"
            )
        return value
    parent = (raw["run"].get("facets") or {}).get("parent")
    if not isinstance(parent, dict):
        return None
    root: dict[str, Any] = parent["root"] if isinstance(parent.get("root"), dict) else {}
    if rule == "job":
        for owner in (root, parent):
            job = owner.get("job")
            if isinstance(job, dict) and job.get("namespace") and job.get("name"):
                return f"{job['namespace']}/{job['name']}"
        return None
    scopes = [root, parent] if rule == "root" else [parent]
    for owner in scopes:
        run = owner.get("run")
        if isinstance(run, dict) and isinstance(run.get("runId"), str) and run["runId"]:
            return str(run["runId"])
    return None


def _engine_version(facets: dict[str, Any], where: _Where) -> str | None:
    engine = facets.get("processing_engine")
    if engine is None:
        return None
    if not isinstance(engine, dict):
        raise where.error("run.facets.processing_engine", "must be an object")
    return _str(engine, "version", where, "run.facets.processing_engine.version")


def _error_facet(facets: dict[str, Any], where: _Where) -> dict[str, Any] | None:
    error = facets.get("errorMessage")
    if error is None:
        return None
    if not isinstance(error, dict):
        raise where.error("run.facets.errorMessage", "must be an object")
    _str(error, "message", where, "run.facets.errorMessage.message")
    return error


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _dataset_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """Numeric dataset statistics; ill-typed values are left out (they are optional)."""
    metrics: dict[str, float] = {}
    for side, facet_key, names, stats in (
        ("input", "inputFacets", ("inputStatistics", "dataQualityMetrics"), _INPUT_STATS),
        ("output", "outputFacets", ("outputStatistics",), _OUTPUT_STATS),
    ):
        items = raw.get(f"{side}s")
        for item in items if isinstance(items, list) else []:
            facets = item.get(facet_key) if isinstance(item, dict) else None
            if not isinstance(facets, dict) or not isinstance(item.get("name"), str):
                continue
            prefix = f"{side}.{item['name']}"
            for name in names:  # dataQualityMetrics is listed last: it wins
                facet = facets.get(name)
                if not isinstance(facet, dict):
                    continue
                metrics.update({f"{prefix}.{k}": facet[k] for k in stats if _number(facet.get(k))})
                columns = facet.get("columnMetrics")
                for col, values in (columns if isinstance(columns, dict) else {}).items():
                    if isinstance(values, dict):
                        metrics.update(
                            {
                                f"{prefix}.{col}.{k}": values[k]
                                for k in _COLUMN_STATS
                                if _number(values.get(k))
                            }
                        )
    return metrics


def _stored_runs(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not run_ids:
        return {}
    cols = ", ".join(_RUN_COLUMNS)
    cur = con.execute(f"SELECT {cols} FROM main.runs WHERE list_contains(?, run_id)", [run_ids])
    out = {}
    for values in cur.fetchall():
        row = dict(zip(_RUN_COLUMNS, values, strict=True))
        for key in ("started_at", "ended_at"):
            if row[key] is not None:
                row[key] = row[key].replace(tzinfo=dt.UTC)
        out[row["run_id"]] = row
    return out


def _stored_outputs(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, str]:
    if not run_ids:
        return {}
    sql = "SELECT run_id, output_id FROM main.runs WHERE list_contains(?, run_id)"
    return dict(con.execute(sql, [sorted(set(run_ids))]).fetchall())


def _run_row(run: _Run, stored: dict[str, Any] | None) -> dict[str, Any]:
    events = sorted(run.events, key=lambda e: (e.time, e.seq))
    first = min(run.events, key=lambda e: e.seq)
    facet: dict[str, Any] = {}
    for event in events:
        facet.update({k: v for k, v in event.facet.items() if not k.startswith("_")})
    started_at, ended_at, status = _span(run.run_id, events, facet, stored)
    version = facet.get("version")
    if version is None and stored is not None:
        version = stored["version"]
    engine = [e.engine_version for e in events if e.engine_version]
    if version is None and engine:
        version = engine[-1]
    metrics: list[dict[str, Any] | None] = [e.metrics or None for e in events]
    return {
        "run_id": run.run_id,
        "output_id": _output_id(run.run_id, events, stored),
        "component_id": str(
            facet.get("component_id") or (stored["component_id"] if stored else events[-1].job)
        ),
        "kind": facet.get("kind") or (stored["kind"] if stored else DEFAULT_KIND),
        "version": None if version is None else str(version),
        "started_at": started_at.isoformat(),
        "ended_at": None if ended_at is None else ended_at.isoformat(),
        "status": status,
        "params": _merged([stored and stored["params"], facet.get("params")]),
        "metrics": _merged([stored and stored["metrics"], *metrics, facet.get("metrics")]),
        "_file": first.file,
        "_line": first.line,
        "_inputs": {d for e in events for d in e.inputs},
        "_outputs": {d for e in events for d in e.outputs},
    }


def _output_id(run_id: str, events: list[_Event], stored: dict[str, Any] | None) -> str:
    named = [
        (e, str(e.facet["output_id"])) for e in events if e.facet.get("output_id") not in (None, "")
    ]
    named = named or [(e, e.candidate) for e in events if e.candidate]
    if stored is None:
        return named[-1][1] if named else events[-1].fallback
    for event, output_id in named:
        if output_id != stored["output_id"]:
            raise event.where.error(
                "run.runId",
                f"names run {run_id!r}, stored for output {stored['output_id']!r}, "
                f"but this event maps it to output {output_id!r}",
            )
    return str(stored["output_id"])


def _span(
    run_id: str, events: list[_Event], facet: dict[str, Any], stored: dict[str, Any] | None
) -> tuple[dt.datetime, dt.datetime | None, str]:
    """(started_at, ended_at, status) of a run: its events merged with the stored row."""
    # A START event decides; else the stored start; else the earliest event.
    start = next((e for e in events if e.type == "START"), None)
    if start is None and stored is not None:
        started_at: dt.datetime = stored["started_at"]
    else:
        start = start or events[0]
        started_at = start.time
    end: _Event | None = next((e for e in reversed(events) if e.type in _TERMINAL), None)
    stored_end = None if stored is None else stored["ended_at"]
    if end is not None and stored_end is not None and end.time < stored_end:
        end = None  # the stored end is later: last state wins by eventTime
    ended_at: dt.datetime | None
    if end is not None:
        ended_at = end.time
        status = (facet.get("status") or "ok") if end.type == "COMPLETE" else "failed"
    elif stored is not None:
        ended_at, status = stored["ended_at"], stored["status"]
    else:
        ended_at, status = None, "degraded"
    if ended_at is not None and ended_at < started_at:
        culprit = end or start or events[0]
        raise IngestError(
            f"{culprit.file} line {culprit.line}: run {run_id!r} ends at "
            f"{ended_at.isoformat()} before it starts at {started_at.isoformat()} "
            "(ended_at must not be before started_at)"
        )
    return started_at, ended_at, status


def _merged(parts: list[Any]) -> str | None:
    """JSON objects merged left to right (stored JSON text first); None when none is given."""
    given = [p for p in parts if p is not None]
    if not given:
        return None
    out: dict[str, Any] = {}
    for part in given:
        parsed = json.loads(part) if isinstance(part, str) else part
        if isinstance(parsed, dict):
            out.update(parsed)
    return json.dumps(out)


def _edge(output_id: str, parent: str, child: dict[str, Any]) -> dict[str, Any]:
    return {
        "output_id": output_id,
        "parent_run_id": parent,
        "child_run_id": child["run_id"],
        "_file": child["_file"],
        "_line": child["_line"],
    }


def _edges(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Data-flow edges: a dataset one run wrote and another read, within one output."""
    producers: dict[tuple[str, Dataset], list[str]] = {}
    for row in rows:
        for ds in sorted(row["_outputs"]):
            producers.setdefault((row["output_id"], ds), []).append(row["run_id"])
    edges = []
    for row in rows:
        for ds in sorted(row["_inputs"]):
            for parent in producers.get((row["output_id"], ds), []):
                if parent != row["run_id"]:
                    edges.append(_edge(row["output_id"], parent, row))
    return edges


def _parent_edges(
    runs: dict[str, _Run], rows: list[dict[str, Any]], output_of: dict[str, str]
) -> list[dict[str, Any]]:
    """Parent run facet -> child run, when both are (or may be) runs of the same output."""
    edges = []
    for row in rows:
        parents = {e.parent for e in runs[row["run_id"]].events if e.parent}
        for parent in sorted(parents - {row["run_id"]}):
            if output_of.get(parent, row["output_id"]) == row["output_id"]:
                edges.append(_edge(row["output_id"], parent, row))
    return edges


def _new_edges(con: duckdb.DuckDBPyConnection, edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each edge once: not twice in this ingest, not again when the store holds it."""
    children = sorted({e["child_run_id"] for e in edges})
    seen: set[tuple[str, str, str]] = set()
    if children:
        seen = set(
            con.execute(
                "SELECT output_id, parent_run_id, child_run_id FROM main.lineage_edges "
                "WHERE list_contains(?, child_run_id)",
                [children],
            ).fetchall()
        )
    out = []
    for edge in edges:
        key = (edge["output_id"], edge["parent_run_id"], edge["child_run_id"])
        if key not in seen:
            seen.add(key)
            out.append(edge)
    return out


def _logs(runs: dict[str, _Run], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ERROR log line per distinct ``errorMessage`` of a run, at its first event."""
    out = []
    for row in rows:
        messages: set[str] = set()
        for event in sorted(runs[row["run_id"]].events, key=lambda e: (e.time, e.seq)):
            error = event.error
            if error is None or error["message"] in messages:
                continue
            messages.add(error["message"])
            attributes = {"source": "openlineage.errorMessage", "eventType": event.type}
            attributes |= {
                k: error[k]
                for k in ("programmingLanguage", "stackTrace")
                if isinstance(error.get(k), str)
            }
            out.append(
                {
                    "ts": event.time.isoformat(),
                    "run_id": row["run_id"],
                    "component_id": row["component_id"],
                    "level": "ERROR",
                    "message": error["message"],
                    "attributes": json.dumps(attributes),
                    "_file": event.file,
                    "_line": event.line,
                }
            )
    return out


def _new_logs(con: duckdb.DuckDBPyConnection, logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leave out error lines the store already holds (the same event ingested again)."""
    run_ids = sorted({log["run_id"] for log in logs})
    if not run_ids:
        return logs
    seen = set(
        con.execute(
            "SELECT run_id, message FROM main.logs "
            "WHERE level = 'ERROR' AND list_contains(?, run_id)",
            [run_ids],
        ).fetchall()
    )
    return [log for log in logs if (log["run_id"], log["message"]) not in seen]
