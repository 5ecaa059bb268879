"""Loading folders into the store: round trip, validation errors, atomicity, OpenLineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stores import build_store, table_rows

from tools.errors import IngestError
from tools.store.connection import open_readonly
from tools.store.contract import SORT_KEYS, TABLES
from tools.store.ingest import export_dir, ingest_dir


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return build_store(tmp_path / "seed.duckdb")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_export_then_ingest_reproduces_every_table(store: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "export"
    written = export_dir(store, out, fmt)  # type: ignore[arg-type]
    assert written["outputs"] == 2 and written["feature_baselines"] == 1
    ext = "jsonl" if fmt == "jsonl" else fmt
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.{ext}" for t in TABLES)

    counts = ingest_dir(out, tmp_path / "copy.duckdb")
    assert counts == written
    # JSON Lines carries JSON values, not their text: whitespace inside JSON is not kept.
    minify = fmt == "jsonl"
    assert table_rows(tmp_path / "copy.duckdb", minify_json=minify) == table_rows(
        store, minify_json=minify
    )


def test_rows_are_inserted_in_sort_key_order(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_dir(store, out, "csv")
    lines = (out / "device_health.csv").read_text().splitlines()
    (out / "device_health.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    ingest_dir(out, tmp_path / "copy.duckdb")
    con = open_readonly(tmp_path / "copy.duckdb")
    order = ", ".join(SORT_KEYS["device_health"])
    stored = con.execute("SELECT ts FROM device_health").fetchall()
    expected = con.execute(f"SELECT ts FROM device_health ORDER BY {order}").fetchall()
    con.close()
    assert stored == expected


def test_parts_folder_and_mixed_formats(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "device_health").mkdir(parents=True)
    (src / "device_health" / "a.csv").write_text(
        "device_id,ts,metric,value\ncam-1,2024-05-01T10:00:00Z,fps,15\n"
    )
    (src / "device_health" / "b.jsonl").write_text(
        # another metric: (device_id, ts, metric) is device_health's key, and this is 10:00 UTC
        '{"device_id": "cam-1", "ts": "2024-05-01T12:00:00+02:00", "metric": "exposure", '
        '"value": 14}\n'
    )
    (src / "runs.jsonl").write_text(
        json.dumps(
            {
                "run_id": "r1",
                "output_id": "o1",
                "component_id": "pre",
                "kind": "transform",
                "started_at": "2024-05-01 10:00:00",
                "status": "ok",
                "params": {"resize": [640, 480]},
                "metrics": '{"mean_intensity": 0.4}',
            }
        )
        + "\n"
    )
    counts = ingest_dir(src, tmp_path / "s.duckdb")
    assert counts == {"runs": 1, "device_health": 2}
    con = open_readonly(tmp_path / "s.duckdb")
    health = con.execute("SELECT CAST(ts AS VARCHAR), value FROM device_health").fetchall()
    params, metrics = con.execute("SELECT params, metrics FROM runs").fetchone()  # type: ignore[misc]
    con.close()
    # +02:00 is converted to UTC, so both samples land at 10:00 UTC
    assert health == [("2024-05-01 10:00:00", 15.0), ("2024-05-01 10:00:00", 14.0)]
    assert json.loads(params) == {"resize": [640, 480]}
    assert json.loads(metrics) == {"mean_intensity": 0.4}


OUTPUTS_HEADER = "output_id,tenant_id,site_id,device_id,captured_at,decision"

MALFORMED = {
    "bad_type": (
        "outputs.csv",
        f"{OUTPUTS_HEADER},score\nx1,t,s,d,2024-05-01 00:00:00,alert,0.5\n"
        "x2,t,s,d,yesterday,alert,0.5\n",
        ["outputs.csv row 2", "'captured_at'", "TIMESTAMP", "'yesterday'"],
    ),
    "bad_number": (
        "outputs.csv",
        f"{OUTPUTS_HEADER},score\nx1,t,s,d,2024-05-01 00:00:00,alert,high\n",
        ["outputs.csv row 1", "'score'", "DOUBLE"],
    ),
    "missing_column": (
        "outputs.csv",
        "output_id,tenant_id,site_id,captured_at,decision\nx1,t,s,2024-05-01,alert\n",
        ["outputs.csv", "missing required column", "'device_id'"],
    ),
    "empty_required": (
        "outputs.csv",
        f"{OUTPUTS_HEADER}\nx1,t,s,d,2024-05-01,alert\nx2,t,,d,2024-05-01,alert\n",
        ["outputs.csv row 2", "'site_id'", "required"],
    ),
    "unknown_table": ("cameras.csv", "a\n1\n", ["cameras.csv", "not a table", "outputs, runs"]),
    "unknown_column": (
        "outputs.csv",
        f"{OUTPUTS_HEADER},colour\nx1,t,s,d,2024-05-01,alert,red\n",
        ["outputs.csv", "unknown column", "'colour'", "output_id"],
    ),
    "bad_enum": (
        "logs.jsonl",
        '{"ts": "2024-05-01 00:00:00", "component_id": "c", "level": "INFO", "message": "m"}\n'
        '{"ts": "2024-05-01 00:00:00", "component_id": "c", "level": "WARNING", "message": "m"}\n',
        ["logs.jsonl row 2", "'level'", "'WARNING'", "DEBUG, INFO, WARN, ERROR"],
    ),
    "bad_kind": (
        "runs.csv",
        "run_id,output_id,component_id,kind,started_at,status\nrx,o1,c,camera,2024-05-01,ok\n",
        ["runs.csv row 1", "'kind'", "'camera'", "sensor, capture"],
    ),
    "bad_json": (
        "runs.csv",
        "run_id,output_id,component_id,kind,started_at,status,params\n"
        "rx,o1,c,model,2024-05-01,ok,{oops\n",
        ["runs.csv row 1", "'params'", "JSON"],
    ),
    "duplicate_key_in_file": (
        "outputs.csv",
        f"{OUTPUTS_HEADER}\nx1,t,s,d,2024-05-01,alert\nx1,t,s,d,2024-05-02,alert\n",
        ["duplicate output_id", "'x1'", "outputs.csv row 1", "outputs.csv row 2"],
    ),
    "duplicate_key_in_store": (
        "outputs.csv",
        f"{OUTPUTS_HEADER}\nx1,t,s,d,2024-05-01,alert\no1,t,s,d,2024-05-02,alert\n",
        ["outputs.csv row 2", "'o1'", "already in the store"],
    ),
    "ragged_csv": (
        "outputs.csv",
        f"{OUTPUTS_HEADER}\nx1,t,s,d,2024-05-01,alert\nx2,t,s,d,2024-05-01,alert,extra\n",
        ["outputs.csv", "Line: 3"],
    ),
    "broken_jsonl": ("logs.jsonl", '{"ts": "2024-05-01"\n', ["logs.jsonl", "cannot read"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_raises_precise_error_and_leaves_store_unchanged(
    store: Path, tmp_path: Path, case: str
) -> None:
    name, content, expected = MALFORMED[case]
    src = tmp_path / "in"
    src.mkdir()
    # A valid file alongside, loaded earlier in the same transaction, must be rolled back too.
    (src / "device_facts.csv").write_text("device_id,kind\ncam-new,camera\n")
    (src / name).write_text(content)
    before = table_rows(store)

    with pytest.raises(IngestError) as err:
        ingest_dir(src, store)

    message = str(err.value)
    assert "\n" not in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert table_rows(store) == before


def test_same_table_twice_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "outputs.csv").write_text(f"{OUTPUTS_HEADER}\n")
    (src / "outputs.jsonl").write_text("")
    with pytest.raises(IngestError, match="given twice"):
        ingest_dir(src, tmp_path / "s.duckdb")


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="not a folder"):
        ingest_dir(tmp_path / "nope", tmp_path / "s.duckdb")


def _event(run_id: str, etype: str, time: str, job: str, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventType": etype,
        "eventTime": time,
        "producer": "https://example.com/pipeline",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "vision", "name": job},
        "inputs": [],
        "outputs": [],
    }
    if "forest" in extra:
        event["run"]["facets"]["forest"] = extra.pop("forest")
    event.update(extra)
    return event


def _ds(name: str) -> list[dict[str, str]]:
    return [{"namespace": "s3://frames", "name": name}]


OL_EVENTS = [
    _event(
        "u-cam",
        "START",
        "2024-05-01T10:00:00Z",
        "cam-1",
        forest={"output_id": "o9", "kind": "sensor"},
    ),
    _event("u-cam", "COMPLETE", "2024-05-01T10:00:01Z", "cam-1", outputs=_ds("raw/o9")),
    _event(
        "u-det",
        "START",
        "2024-05-01T10:00:02Z",
        "detect",
        forest={
            "output_id": "o9",
            "kind": "model",
            "component_id": "detector",
            "version": "v3",
            "params": {"min_box_px": 16},
        },
        inputs=_ds("raw/o9"),
    ),
    _event(
        "u-det",
        "FAIL",
        "2024-05-01T10:00:03+00:00",
        "detect",
        forest={"metrics": {"detections": 0}},
        outputs=_ds("det/o9"),
    ),
    _event(
        "u-thr",
        "COMPLETE",
        "2024-05-01T10:00:05Z",
        "threshold",
        inputs=_ds("det/o9"),
        forest={"output_id": "o9", "kind": "threshold", "status": "degraded"},
    ),
    # same dataset name but another output: must not link
    _event(
        "u-other",
        "RUNNING",
        "2024-05-01T11:00:00Z",
        "detect",
        inputs=_ds("raw/o9"),
        forest={"output_id": "o10", "kind": "model"},
    ),
]


def _write_events(path: Path, events: list[Any]) -> None:
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))


def test_openlineage_events_become_runs_and_edges(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _write_events(src / "pipeline.openlineage.jsonl", OL_EVENTS)
    counts = ingest_dir(src, tmp_path / "s.duckdb")
    assert counts == {"runs": 4, "lineage_edges": 2}

    con = open_readonly(tmp_path / "s.duckdb")
    runs = con.execute(
        "SELECT run_id, output_id, component_id, kind, version, status, "
        "CAST(started_at AS VARCHAR), CAST(ended_at AS VARCHAR), params, metrics "
        "FROM runs ORDER BY run_id"
    ).fetchall()
    edges = con.execute("SELECT * FROM lineage_edges ORDER BY parent_run_id").fetchall()
    con.close()
    by_id = {r[0]: r for r in runs}
    assert by_id["u-cam"][1:8] == (
        "o9",
        "cam-1",
        "sensor",
        None,
        "ok",
        "2024-05-01 10:00:00",
        "2024-05-01 10:00:01",
    )
    assert by_id["u-det"][2:6] == ("detector", "model", "v3", "failed")
    assert json.loads(by_id["u-det"][8]) == {"min_box_px": 16}
    assert json.loads(by_id["u-det"][9]) == {"detections": 0}
    assert by_id["u-thr"][5] == "degraded"  # COMPLETE, but the forest facet says degraded
    assert by_id["u-other"][5:8] == ("degraded", "2024-05-01 11:00:00", None)
    assert edges == [("o9", "u-cam", "u-det"), ("o9", "u-det", "u-thr")]


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("{not json", ["line 2", "not valid JSON"]),
        ({**_event("u1", "FINISH", "2024-05-01T10:00:00Z", "j")}, ["line 2", "'eventType'"]),
        (_event("u1", "START", "noon", "j"), ["line 2", "'eventTime'"]),
        (
            {
                "eventType": "START",
                "eventTime": "2024-05-01T10:00:00Z",
                "run": {},
                "job": {"namespace": "n", "name": "j"},
            },
            ["line 2", "'run.runId'"],
        ),
        (
            _event("u1", "START", "2024-05-01T10:00:00Z", "j", inputs=[{"namespace": "n"}]),
            ["line 2", "'inputs[0].name'"],
        ),
        (
            _event(
                "u1",
                "START",
                "2024-05-01T10:00:00Z",
                "j",
                forest={"output_id": "o", "kind": "camera"},
            ),
            ["line 2", "'run.facets.forest.kind'", "'camera'"],
        ),
        # (a forest facet without output_id is no longer an error: the output rule applies)
        (
            _event(
                "u1",
                "START",
                "2024-05-01T10:00:00Z",
                "j",
                run={"runId": "u1", "facets": {"parent": {"run": {}}}},
            ),
            ["line 2", "'run.facets.parent.run.runId'"],
        ),
    ],
)
def test_malformed_openlineage_event(
    store: Path, tmp_path: Path, bad: Any, expected: list[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _write_events(src / "openlineage.jsonl", [OL_EVENTS[0], bad])
    before = table_rows(store)
    with pytest.raises(IngestError) as err:
        ingest_dir(src, store)
    for fragment in ["openlineage.jsonl", *expected]:
        assert fragment in str(err.value), f"{fragment!r} not in {err.value}"
    assert table_rows(store) == before
