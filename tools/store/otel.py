"""OpenTelemetry traces (OTLP JSON) as per-output lineage.

A folder entry named ``*.otlp.jsonl`` or ``*.otlp.json`` (e.g. ``traces.otlp.jsonl``) holds
what the OpenTelemetry Collector's file exporter writes: one ``ExportTraceServiceRequest``
JSON object per line (``{"resourceSpans": [{"resource": ..., "scopeSpans": [{"spans":
[...]}]}]}``); a ``.otlp.json`` file may also hold one such object over several lines.
``traceId``/``spanId`` are hex (base64, as plain protobuf JSON writes them, is accepted too);
nanosecond times and ``intValue`` may be strings or numbers; ``status.code`` may be the number
or the enum name. All files of a folder are read together, so a trace may span files.

Mapping (a trace is one output's lineage; a span is one run):

- ``output_id`` = the ``forest.output_id`` attribute of any span of the trace (all spans that
  set it must agree), else the resource's, else the ``traceId``.
- ``run_id`` = ``spanId``. ``component_id`` = ``forest.component`` (span attribute, else
  resource attribute), else the span ``name``. ``service.name`` is not used: a pipeline
  traced in one process has one service for every stage. ``kind`` = ``forest.kind`` (span,
  else resource), else ``transform``. ``version`` = ``forest.version``, else the resource's
  ``service.version``.
- ``started_at``/``ended_at`` from ``startTimeUnixNano``/``endTimeUnixNano`` (0 or absent ->
  NULL end). ``status``: span status ERROR -> ``failed``; else ``forest.status``
  (``ok``/``degraded``/``failed``) if set, else ``ok``.
- The span's other attributes (``forest.*`` ones excepted): numbers -> ``metrics``; strings,
  booleans, arrays and maps -> ``params``. Resource attributes are not copied.
- Span events -> ``logs`` rows of the run: an ``exception`` event is ``ERROR`` with message
  ``"<exception.type>: <exception.message>"``, any other event ``INFO`` with the event name
  as message; the event attributes are the row's ``attributes``. An ERROR span without an
  exception event logs its ``status.message`` (or "span status ERROR") as one ERROR line.
- ``lineage_edges`` (data flow, upstream -> downstream), from the span tree:

  * children of one span, in start order, are stages run under it: a child that starts at or
    after a sibling ended is fed by it (only by the latest such siblings: ``a -> b -> c``,
    not also ``a -> c``; siblings that overlap are parallel branches);
  * a parent feeds its children that no sibling feeds (its first stage(s)).

  So a chain (``capture`` parent of ``detector`` parent of ``threshold``) and a root span
  with one child per stage (``frame`` -> ``capture`` -> ``detector`` -> ``threshold``) both
  give the pipeline order. Spans whose parent is not in the files (a root, or stages whose
  remote parent was not exported) are ordered the same way as siblings, with no parent.
- ``outputs``: when neither the folder's ``outputs`` rows nor the store hold the trace's
  output, a row is made from attributes of its spans (else resource): ``forest.tenant_id``,
  ``forest.site_id``, ``forest.device_id``, ``forest.decision`` (required; an
  ``IngestError`` names those missing), ``forest.captured_at`` (ISO 8601 text or Unix
  nanoseconds; default: start of the trace's earliest span), and optional ``forest.label``,
  ``forest.score``, ``forest.model_id``, ``forest.model_version``.

Malformed input raises ``IngestError`` naming the file, the line and the field.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tools.errors import IngestError
from tools.store.contract import COMPONENT_KINDS

__all__ = [
    "DEFAULT_KIND",
    "OUTPUT_ATTRIBUTES",
    "REQUIRED_OUTPUT_ATTRIBUTES",
    "Traces",
    "is_otlp_file",
    "output_rows",
    "read_traces",
]

DEFAULT_KIND: Final = "transform"
PREFIX: Final = "forest."
RUN_STATUSES: Final = ("ok", "degraded", "failed")
# outputs column -> attribute; the first four are required to make an outputs row.
OUTPUT_ATTRIBUTES: Final = {
    "tenant_id": "forest.tenant_id",
    "site_id": "forest.site_id",
    "device_id": "forest.device_id",
    "decision": "forest.decision",
    "captured_at": "forest.captured_at",
    "label": "forest.label",
    "score": "forest.score",
    "model_id": "forest.model_id",
    "model_version": "forest.model_version",
}
REQUIRED_OUTPUT_ATTRIBUTES: Final = ("tenant_id", "site_id", "device_id", "decision")
_STATUS_ERROR: Final = (2, "2", "STATUS_CODE_ERROR")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_HEX: Final = re.compile(r"[0-9a-fA-F]+")


def is_otlp_file(path: Path) -> bool:
    """Whether ``path`` is named as an OTLP JSON traces file."""
    name = path.name.lower()
    return name.endswith((".otlp.jsonl", ".otlp.json"))


@dataclass(frozen=True)
class _Where:
    file: str
    line: int

    def error(self, fld: str, problem: str) -> IngestError:
        return IngestError(f"{self.file} line {self.line}: field {fld!r} {problem}")


@dataclass
class _Span:
    where: _Where
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start: int
    end: int | None
    error: bool
    status_message: str
    attrs: dict[str, Any]
    resource: dict[str, Any]
    events: list[tuple[_Where, str, int, dict[str, Any]]]


@dataclass
class OutputCandidate:
    """The outputs row a trace could make, if the folder and store have none for it."""

    output_id: str
    trace_id: str
    file: str
    line: int
    values: dict[str, Any]  # outputs column -> value found in the attributes

    def missing(self) -> list[str]:
        return [OUTPUT_ATTRIBUTES[c] for c in REQUIRED_OUTPUT_ATTRIBUTES if c not in self.values]


@dataclass
class Traces:
    """Rows (each with ``_file`` and ``_line``) per table, and the outputs traces could make."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outputs: list[OutputCandidate] = field(default_factory=list)


def read_traces(paths: Iterable[Path]) -> Traces:
    """Parse OTLP JSON trace files into runs, lineage_edges and logs rows."""
    traces: dict[str, list[_Span]] = {}
    seen: dict[str, _Where] = {}
    for path in paths:
        for where, request in _requests(path):
            for span in _spans(request, where):
                first = seen.setdefault(span.span_id, span.where)
                if first is not span.where:
                    raise span.where.error(
                        "spanId",
                        f"{span.span_id!r} is given twice ({first.file} line {first.line})",
                    )
                traces.setdefault(span.trace_id, []).append(span)
    out = Traces({"runs": [], "lineage_edges": [], "logs": []})
    for trace_id, spans in traces.items():
        spans.sort(key=lambda s: (s.start, s.where.file, s.where.line))
        output_id = _trace_value(spans, "forest.output_id") or trace_id
        output_id = str(output_id)
        for span in spans:
            run = _run_row(span, output_id)
            out.rows["runs"].append(run)
            out.rows["logs"].extend(_log_rows(span, run["component_id"]))
        out.rows["lineage_edges"].extend(_edges(spans, output_id))
        out.outputs.append(_candidate(spans, output_id, trace_id))
    return out


def output_rows(candidates: list[OutputCandidate], known: set[str]) -> list[dict[str, Any]]:
    """outputs rows for traces whose output is not ``known``; an error if one lacks attributes."""
    rows: dict[str, dict[str, Any]] = {}
    for cand in candidates:
        if cand.output_id in known or cand.output_id in rows:
            continue
        missing = cand.missing()
        if missing:
            raise IngestError(
                f"{cand.file} line {cand.line}: trace {cand.trace_id} (output "
                f"{cand.output_id!r}) has no outputs row in the folder or the store, and its "
                f"spans set no {', '.join(missing)}; set these attributes on a span (or the "
                f"resource), or add an outputs file for it"
            )
        rows[cand.output_id] = {
            "output_id": cand.output_id,
            **cand.values,
            "_file": cand.file,
            "_line": cand.line,
        }
    return list(rows.values())


# -- reading ------------------------------------------------------------------------------


def _requests(path: Path) -> Iterator[tuple[_Where, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.name.lower().endswith(".json"):
        try:
            yield _Where(path.name, 1), json.loads(text)
            return
        except json.JSONDecodeError:
            pass  # one request per line, as the Collector's file exporter writes
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield _Where(path.name, n), json.loads(line)
        except json.JSONDecodeError as exc:
            raise IngestError(f"{path.name} line {n}: not valid JSON ({exc.msg})") from exc


def _list(obj: dict[str, Any], key: str, where: _Where, fld: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(fld, "must be a list")
    return value


def _dict(value: Any, where: _Where, fld: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.error(fld, "must be an object")
    return value


def _spans(request: Any, where: _Where) -> Iterator[_Span]:
    if not isinstance(request, dict) or "resourceSpans" not in request:
        raise where.error("resourceSpans", "is missing; expected an OTLP JSON traces object")
    for i, rs in enumerate(_list(request, "resourceSpans", where, "resourceSpans")):
        rs = _dict(rs, where, f"resourceSpans[{i}]")
        resource = _dict(rs.get("resource"), where, f"resourceSpans[{i}].resource")
        res_attrs = _attributes(resource.get("attributes"), where, "resource.attributes")
        for j, ss in enumerate(_list(rs, "scopeSpans", where, "scopeSpans")):
            ss = _dict(ss, where, f"scopeSpans[{j}]")
            for k, raw in enumerate(_list(ss, "spans", where, "spans")):
                yield _span(_dict(raw, where, f"spans[{k}]"), res_attrs, where)


def _span(raw: dict[str, Any], resource: dict[str, Any], where: _Where) -> _Span:
    span_id = _id(raw.get("spanId"), 8, where, "spanId")
    trace_id = _id(raw.get("traceId"), 16, where, "traceId")
    parent = raw.get("parentSpanId")
    status = _dict(raw.get("status"), where, "status")
    end = _nanos(raw.get("endTimeUnixNano"), where, "endTimeUnixNano", optional=True)
    events = []
    for i, ev in enumerate(_list(raw, "events", where, "events")):
        ev = _dict(ev, where, f"events[{i}]")
        name = ev.get("name")
        if not isinstance(name, str):
            raise where.error(f"events[{i}].name", "is missing or not a string")
        ts = _nanos(ev.get("timeUnixNano"), where, f"events[{i}].timeUnixNano")
        attrs = _attributes(ev.get("attributes"), where, f"events[{i}].attributes")
        events.append((where, name, ts, attrs))
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise where.error("name", f"of span {span_id} is missing or not a non-empty string")
    return _Span(
        where=where,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=_id(parent, 8, where, "parentSpanId") if parent else None,
        name=name,
        start=_nanos(raw.get("startTimeUnixNano"), where, "startTimeUnixNano"),
        end=end or None,
        error=status.get("code") in _STATUS_ERROR,
        status_message=str(status.get("message") or ""),
        attrs=_attributes(raw.get("attributes"), where, "attributes"),
        resource=resource,
        events=events,
    )


def _id(value: Any, size: int, where: _Where, fld: str) -> str:
    if isinstance(value, str) and len(value) == 2 * size and _HEX.fullmatch(value):
        return value.lower()
    if isinstance(value, str) and value:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size:
            return raw.hex()
    raise where.error(fld, f"is {value!r}; expected {2 * size} hex digits")


def _nanos(value: Any, where: _Where, fld: str, *, optional: bool = False) -> int:
    if value is None and optional:
        return 0
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            nanos = int(value)
        except ValueError:
            nanos = -1
        if nanos >= 0:
            return nanos
    raise where.error(fld, f"is {value!r}; expected Unix time in nanoseconds")


def _attributes(items: Any, where: _Where, fld: str) -> dict[str, Any]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise where.error(fld, "must be a list of {key, value}")
    out = {}
    for i, kv in enumerate(items):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise where.error(f"{fld}[{i}]", "must be an object with a string key")
        out[kv["key"]] = _value(kv.get("value"), where, f"{fld}[{i}].value")
    return out


def _value(value: Any, where: _Where, fld: str) -> Any:
    """An OTLP AnyValue as a Python value."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise where.error(fld, "must be an AnyValue object with one field")
    ((kind, inner),) = value.items()
    try:
        if kind in ("stringValue", "bytesValue"):
            return str(inner)
        if kind == "boolValue":
            return inner if isinstance(inner, bool) else str(inner).lower() == "true"
        if kind == "intValue":
            return int(inner)
        if kind == "doubleValue":
            number = float(inner)
            return number if math.isfinite(number) else None
        if kind == "arrayValue":
            return [_value(v, where, fld) for v in _dict(inner, where, fld).get("values", [])]
        if kind == "kvlistValue":
            return _attributes(_dict(inner, where, fld).get("values", []), where, fld)
    except (TypeError, ValueError) as exc:
        raise where.error(fld, f"{kind} is {inner!r}, not a valid value") from exc
    raise where.error(fld, f"has unknown value type {kind!r}")


# -- mapping ------------------------------------------------------------------------------


def _iso(nanos: int) -> str:
    return (_EPOCH + dt.timedelta(microseconds=nanos // 1000)).isoformat()


def _attr(span: _Span, key: str) -> Any:
    value = span.attrs.get(key)
    return span.resource.get(key) if value is None else value


def _trace_value(spans: list[_Span], key: str) -> Any:
    """The value of ``key`` on the trace's spans (all that set it must agree), else resource."""
    found: tuple[Any, _Span] | None = None
    for span in spans:
        value = span.attrs.get(key)
        if value is None:
            continue
        if found is None:
            found = (value, span)
        elif value != found[0]:
            raise span.where.error(
                key,
                f"is {value!r} on span {span.span_id} but {found[0]!r} on span "
                f"{found[1].span_id} of the same trace {span.trace_id}",
            )
    if found is not None:
        return found[0]
    return next((s.resource[key] for s in spans if s.resource.get(key) is not None), None)


def _run_row(span: _Span, output_id: str) -> dict[str, Any]:
    kind = _attr(span, "forest.kind") or DEFAULT_KIND
    if kind not in COMPONENT_KINDS:
        raise span.where.error(
            "forest.kind",
            f"of span {span.span_id} is {kind!r}; expected one of {', '.join(COMPONENT_KINDS)}",
        )
    forced = _attr(span, "forest.status")
    if forced is not None and forced not in RUN_STATUSES:
        raise span.where.error(
            "forest.status",
            f"of span {span.span_id} is {forced!r}; expected one of {', '.join(RUN_STATUSES)}",
        )
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    for key, value in span.attrs.items():
        if key.startswith(PREFIX):
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[key] = value
        else:
            params[key] = value
    version = _attr(span, "forest.version") or span.resource.get("service.version")
    return {
        "run_id": span.span_id,
        "output_id": output_id,
        "component_id": str(_attr(span, "forest.component") or span.name),
        "kind": kind,
        "version": None if version is None else str(version),
        "started_at": _iso(span.start),
        "ended_at": None if span.end is None else _iso(span.end),
        "status": "failed" if span.error else (forced or "ok"),
        "params": json.dumps(params) if params else None,
        "metrics": json.dumps(metrics) if metrics else None,
        "_file": span.where.file,
        "_line": span.where.line,
    }


def _log_rows(span: _Span, component: str) -> list[dict[str, Any]]:
    rows = []
    for where, name, ts, attrs in span.events:
        if name == "exception":
            level = "ERROR"
            message = ": ".join(
                str(attrs[k]) for k in ("exception.type", "exception.message") if attrs.get(k)
            )
        else:
            level, message = "INFO", name
        rows.append(_log(where, ts or span.start, span, component, level, message or name, attrs))
    if span.error and not any(name == "exception" for _, name, _, _ in span.events):
        message = span.status_message or "span status ERROR"
        rows.append(_log(span.where, span.end or span.start, span, component, "ERROR", message, {}))
    return rows


def _log(
    where: _Where,
    ts: int,
    span: _Span,
    component: str,
    level: str,
    message: str,
    attrs: dict[str, Any],
) -> dict[str, Any]:
    return {
        "ts": _iso(ts),
        "run_id": span.span_id,
        "component_id": component,
        "level": level,
        "message": message,
        "attributes": json.dumps(attrs) if attrs else None,
        "_file": where.file,
        "_line": where.line,
    }


def _edges(spans: list[_Span], output_id: str) -> list[dict[str, Any]]:
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[_Span]] = {}
    for span in spans:  # already in start order
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    pairs: list[tuple[str, _Span]] = []
    for parent, kids in children.items():
        for kid in kids:
            # siblings that ended before this one started, minus those feeding another of them
            before = [s for s in kids if s is not kid and s.end is not None and s.end <= kid.start]
            feeders = [
                s
                for s in before
                if not any(o is not s and o.start >= s.end for o in before)  # type: ignore[operator]
            ]
            if feeders:
                pairs.extend((s.span_id, kid) for s in feeders)
            elif parent is not None:
                pairs.append((parent, kid))
    return [
        {
            "output_id": output_id,
            "parent_run_id": upstream,
            "child_run_id": kid.span_id,
            "_file": kid.where.file,
            "_line": kid.where.line,
        }
        for upstream, kid in pairs
    ]


def _candidate(spans: list[_Span], output_id: str, trace_id: str) -> OutputCandidate:
    values: dict[str, Any] = {}
    for column, key in OUTPUT_ATTRIBUTES.items():
        value = _trace_value(spans, key)
        if value is None:
            continue
        if column == "captured_at" and isinstance(value, int):
            value = _iso(value)
        values[column] = str(value)
    values.setdefault("captured_at", _iso(spans[0].start))
    first = min(spans, key=lambda s: (s.where.file, s.where.line))
    return OutputCandidate(output_id, trace_id, first.where.file, first.where.line, values)
