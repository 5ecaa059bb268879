"""OpenTelemetry traces (OTLP JSON, as the Collector's file exporter writes) as lineage.

The traces come from the real OpenTelemetry SDK: an instrumented capture -> detector ->
threshold pipeline, encoded by the OTLP exporter's protobuf encoder and written as OTLP
JSON (protobuf JSON mapping with hex trace and span ids, as the OTLP spec requires).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import Tracer

from tools.errors import IngestError
from tools.lineage import GetLineageArgs, get_lineage
from tools.store.connection import fetch_dicts, open_readonly
from tools.store.ingest import ingest_dir

DEVICE = "cam-t1-s1-01"
OUTPUT_HEADER = "output_id,tenant_id,site_id,device_id,captured_at,decision"


@pytest.fixture
def tracing() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "vision", "service.version": "2.3.0"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("forest.test"), exporter
    provider.shutdown()


def _hex_ids(node: Any) -> Any:
    """OTLP JSON writes trace and span ids as hex, where protobuf's JSON mapping uses base64."""
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex()
            if k in ("traceId", "spanId", "parentSpanId") and v
            else _hex_ids(v)
            for k, v in node.items()
        }
    return node


def otlp_json(spans: list[ReadableSpan]) -> str:
    """One ExportTraceServiceRequest as a line of OTLP JSON."""
    message = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    return json.dumps(_hex_ids(message))


def write_otlp(path: Path, *batches: list[ReadableSpan]) -> None:
    """One line per export batch, as the Collector's file exporter does."""
    path.write_text("".join(otlp_json(batch) + "\n" for batch in batches))


def run_pipeline(tracer: Tracer, frame: str, *, fail: bool = False, **output: Any) -> None:
    """A vision pipeline traced as a root span per frame with one child span per stage."""
    with tracer.start_as_current_span("frame") as root:
        root.set_attribute("forest.output_id", frame)
        for key, value in output.items():
            root.set_attribute(f"forest.{key}", value)
        with tracer.start_as_current_span("capture") as span:
            span.set_attribute("forest.component", DEVICE)
            span.set_attribute("forest.kind", "capture")
            span.set_attribute("exposure", 0.42)
            span.set_attribute("codec", "h264")
        score = 0.0
        try:
            with tracer.start_as_current_span("detector") as span:
                span.set_attribute("forest.kind", "model")
                span.set_attribute("forest.version", "det-v7")
                span.set_attribute("classes", ["person", "car"])
                span.set_attribute("half_precision", True)
                span.add_event("nms", {"boxes_in": 40, "boxes_out": 3})
                if fail:
                    raise RuntimeError("CUDA out of memory")
                score = 0.91
                span.set_attribute("max_score", score)
                span.set_attribute("boxes", 3)
        except RuntimeError:
            pass  # the pipeline carries on with no detections
        with tracer.start_as_current_span("threshold") as span:
            span.set_attribute("forest.kind", "threshold")
            span.set_attribute("threshold.person", 0.5)
            span.set_attribute("decision", "alert" if score >= 0.5 else "no_alert")


def _rows(store: Path, sql: str, *json_columns: str) -> list[dict[str, Any]]:
    con = open_readonly(store)
    try:
        return fetch_dicts(con, sql, json_columns=json_columns)
    finally:
        con.close()


def test_traces_become_runs_edges_logs_and_outputs(
    tracing: tuple[Tracer, InMemorySpanExporter], tmp_path: Path
) -> None:
    tracer, exporter = tracing
    run_pipeline(tracer, "o-ok")
    ok_spans = list(exporter.get_finished_spans())
    exporter.clear()
    run_pipeline(
        tracer,
        "o-fail",
        fail=True,
        tenant_id="t1",
        site_id="s1",
        device_id=DEVICE,
        decision="no_alert",
        captured_at="2025-03-10T12:00:00Z",
    )
    failed_spans = list(exporter.get_finished_spans())
    src = tmp_path / "in"
    src.mkdir()
    # o-ok has its outputs row in the folder; o-fail's comes from its span attributes.
    (src / "outputs.csv").write_text(f"{OUTPUT_HEADER}\no-ok,t1,s1,{DEVICE},2025-03-10,alert\n")
    # one trace over two files: its root span (with forest.output_id) ends, so is sent, last
    write_otlp(src / "a.otlp.jsonl", ok_spans[:2])
    write_otlp(src / "traces.otlp.jsonl", ok_spans[2:], failed_spans[:1], failed_spans[1:])
    store = tmp_path / "s.duckdb"

    counts = ingest_dir(src, store)

    assert counts == {"outputs": 2, "runs": 8, "lineage_edges": 6, "logs": 3}
    outputs = _rows(store, "SELECT * FROM outputs ORDER BY output_id")
    assert [(o["output_id"], o["decision"], o["site_id"]) for o in outputs] == [
        ("o-fail", "no_alert", "s1"),
        ("o-ok", "alert", "s1"),
    ]
    assert str(outputs[0]["captured_at"]) == "2025-03-10 12:00:00"

    runs = _rows(store, "SELECT * FROM runs ORDER BY output_id, started_at", "params", "metrics")
    by_span = {r["run_id"]: r for r in runs}
    detector = {r["output_id"]: r for r in runs if r["component_id"] == "detector"}
    assert {(r["component_id"], r["kind"]) for r in runs if r["output_id"] == "o-ok"} == {
        ("frame", "transform"),  # no forest.kind: the documented default
        (DEVICE, "capture"),
        ("detector", "model"),
        ("threshold", "threshold"),
    }
    ok = detector["o-ok"]
    assert ok["status"] == "ok" and ok["version"] == "det-v7"
    assert ok["metrics"] == {"max_score": 0.91, "boxes": 3}
    assert ok["params"] == {"classes": ["person", "car"], "half_precision": True}
    assert ok["ended_at"] >= ok["started_at"]
    assert detector["o-fail"]["status"] == "failed"
    assert detector["o-fail"]["metrics"] is None
    assert {r["status"] for r in runs if r["component_id"] != "detector"} == {"ok"}
    # forest.* attributes drive the mapping and are not copied into params
    frame = next(r for r in runs if r["component_id"] == "frame")
    assert frame["params"] is None and frame["version"] == "2.3.0"  # service.version
    assert by_span[ok["run_id"]]["output_id"] == "o-ok"

    edges = _rows(store, "SELECT * FROM lineage_edges")
    named = {
        (
            e["output_id"],
            by_span[e["parent_run_id"]]["component_id"],
            by_span[e["child_run_id"]]["component_id"],
        )
        for e in edges
    }
    assert named == {
        (out, parent, child)
        for out in ("o-ok", "o-fail")
        for parent, child in (("frame", DEVICE), (DEVICE, "detector"), ("detector", "threshold"))
    }

    logs = _rows(store, "SELECT * FROM logs ORDER BY ts", "attributes")
    assert sorted((g["run_id"], g["level"], g["message"]) for g in logs) == sorted(
        [
            (ok["run_id"], "INFO", "nms"),
            (detector["o-fail"]["run_id"], "INFO", "nms"),
            (detector["o-fail"]["run_id"], "ERROR", "RuntimeError: CUDA out of memory"),
        ]
    )
    assert {g["component_id"] for g in logs} == {"detector"}
    info = next(g for g in logs if g["level"] == "INFO")
    error = next(g for g in logs if g["level"] == "ERROR")
    assert info["attributes"] == {"boxes_in": 40, "boxes_out": 3}
    assert "Traceback" in error["attributes"]["exception.stacktrace"]

    # the investigator's lineage tool sees the pipeline in data-flow order
    con = open_readonly(store)
    try:
        lineage = get_lineage(con, GetLineageArgs(output_id="o-fail")).data
    finally:
        con.close()
    assert [n["node_id"] for n in lineage["nodes"]] == ["frame", DEVICE, "detector", "threshold"]


def test_chain_of_nested_spans_is_a_chain(
    tracing: tuple[Tracer, InMemorySpanExporter], tmp_path: Path
) -> None:
    tracer, exporter = tracing
    with tracer.start_as_current_span("capture") as cap:
        cap.set_attribute("forest.kind", "capture")
        with tracer.start_as_current_span("detector") as det:
            det.set_attribute("forest.kind", "model")
            with tracer.start_as_current_span("threshold") as thr:
                thr.set_attribute("forest.kind", "threshold")
    trace_id = format(cap.get_span_context().trace_id, "032x")
    src = tmp_path / "in"
    src.mkdir()
    (src / "outputs.csv").write_text(f"{OUTPUT_HEADER}\n{trace_id},t1,s1,{DEVICE},2025-03-10,x\n")
    # a .otlp.json file may be one pretty-printed request
    request = json.loads(otlp_json(list(exporter.get_finished_spans())))
    (src / "traces.otlp.json").write_text(json.dumps(request, indent=2))

    ingest_dir(src, tmp_path / "s.duckdb")

    runs = {
        r["run_id"]: r["component_id"] for r in _rows(tmp_path / "s.duckdb", "SELECT * FROM runs")
    }
    edges = _rows(tmp_path / "s.duckdb", "SELECT * FROM lineage_edges")
    # no forest.output_id anywhere: the trace id is the output id
    assert {e["output_id"] for e in edges} == {trace_id}
    assert {(runs[e["parent_run_id"]], runs[e["child_run_id"]]) for e in edges} == {
        ("capture", "detector"),
        ("detector", "threshold"),
    }


def test_parallel_stages_fan_out_and_in(
    tracing: tuple[Tracer, InMemorySpanExporter], tmp_path: Path
) -> None:
    tracer, exporter = tracing
    with tracer.start_as_current_span("frame") as root:
        root.set_attribute("forest.output_id", "o1")
        with tracer.start_as_current_span("capture"):
            pass
        det_a = tracer.start_span("detector_a")  # two models run side by side
        det_b = tracer.start_span("detector_b")
        det_a.end()
        det_b.end()
        with tracer.start_as_current_span("fusion"):
            pass
    src = tmp_path / "in"
    src.mkdir()
    (src / "outputs.csv").write_text(f"{OUTPUT_HEADER}\no1,t1,s1,{DEVICE},2025-03-10,x\n")
    write_otlp(src / "a.otlp.jsonl", list(exporter.get_finished_spans()))
    ingest_dir(src, tmp_path / "s.duckdb")
    runs = {r["run_id"]: r["component_id"] for r in _rows(tmp_path / "s.duckdb", "FROM runs")}
    edges = {
        (runs[e["parent_run_id"]], runs[e["child_run_id"]])
        for e in _rows(tmp_path / "s.duckdb", "FROM lineage_edges")
    }
    assert edges == {
        ("frame", "capture"),
        ("capture", "detector_a"),
        ("capture", "detector_b"),
        ("detector_a", "fusion"),
        ("detector_b", "fusion"),
    }


def test_trace_without_outputs_row_or_attributes_names_what_is_needed(
    tracing: tuple[Tracer, InMemorySpanExporter], tmp_path: Path
) -> None:
    tracer, exporter = tracing
    run_pipeline(tracer, "o-lost", tenant_id="t1", device_id=DEVICE)
    src = tmp_path / "in"
    src.mkdir()
    write_otlp(src / "traces.otlp.jsonl", list(exporter.get_finished_spans()))
    store = tmp_path / "s.duckdb"
    with pytest.raises(IngestError) as err:
        ingest_dir(src, store)
    message = str(err.value)
    for fragment in ("traces.otlp.jsonl line 1", "'o-lost'", "forest.site_id", "forest.decision"):
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "forest.tenant_id" not in message and "\n" not in message


def test_an_output_already_in_the_store_is_not_made_again(
    tracing: tuple[Tracer, InMemorySpanExporter], tmp_path: Path
) -> None:
    tracer, exporter = tracing
    store = tmp_path / "s.duckdb"
    first = tmp_path / "outputs"
    first.mkdir()
    (first / "outputs.csv").write_text(f"{OUTPUT_HEADER}\no1,t1,s1,{DEVICE},2025-03-10,alert\n")
    ingest_dir(first, store)
    run_pipeline(tracer, "o1")
    src = tmp_path / "in"
    src.mkdir()
    write_otlp(src / "traces.otlp.jsonl", list(exporter.get_finished_spans()))
    assert ingest_dir(src, store) == {"runs": 4, "lineage_edges": 3, "logs": 1}


def _request(**span: Any) -> dict[str, Any]:
    base = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "detector",
        "startTimeUnixNano": "1741608000000000000",
        "endTimeUnixNano": "1741608000100000000",
        "attributes": [{"key": "forest.output_id", "value": {"stringValue": "o1"}}],
    }
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [{**base, **span}]}]}]}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", ["line 2", "not valid JSON"]),
        (json.dumps({"spans": []}), ["line 2", "'resourceSpans'"]),
        (json.dumps(_request(spanId="xyz")), ["line 2", "'spanId'", "hex"]),
        (json.dumps(_request(startTimeUnixNano="soon")), ["line 2", "'startTimeUnixNano'"]),
        (
            json.dumps(
                _request(attributes=[{"key": "forest.kind", "value": {"stringValue": "camera"}}])
            ),
            ["line 2", "'forest.kind'", "'camera'", "sensor, capture"],
        ),
    ],
)
def test_malformed_otlp_names_file_line_and_field(
    tmp_path: Path, line: str, expected: list[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "outputs.csv").write_text(f"{OUTPUT_HEADER}\no1,t1,s1,{DEVICE},2025-03-10,alert\n")
    good = _request(spanId="00f067aa0ba902b7")
    (src / "traces.otlp.jsonl").write_text(json.dumps(good) + "\n" + line + "\n")
    with pytest.raises(IngestError) as err:
        ingest_dir(src, tmp_path / "s.duckdb")
    for fragment in ["traces.otlp.jsonl", *expected]:
        assert fragment in str(err.value), f"{fragment!r} not in {err.value}"
