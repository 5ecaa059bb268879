"""OpenLineage events as the real ``openlineage-python`` client writes them, loaded by ingest.

The events are emitted through the client's ``FileTransport`` (never hand-written JSON), the
way an Airflow-like scheduler reports a DAG run and its task runs: START and COMPLETE/FAIL of
one run in separate files and separate ingests, no Forest-specific facet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    data_quality_metrics_input_dataset as dq,
)
from openlineage.client.facet_v2 import (
    error_message_run,
    parent_run,
    processing_engine_run,
)
from openlineage.client.facet_v2 import (
    output_statistics_output_dataset as out_stats,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.uuid import generate_new_uuid
from stores import build_store, table_rows

from tools.errors import IngestError
from tools.store.connection import open_readonly
from tools.store.ingest import ingest_dir

NS = "airflow://scheduler"
PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.1.0"
FRAMES = "s3://frames"


class Emitter:
    """One scheduler's DAG run with two task runs, emitting through the real client."""

    def __init__(self) -> None:
        self.dag = str(generate_new_uuid())
        self.extract = str(generate_new_uuid())
        self.detect = str(generate_new_uuid())

    def emit(self, path: Path, *events: RunEvent) -> None:
        client = OpenLineageClient(
            transport=FileTransport(FileConfig(log_file_path=str(path), append=True))
        )
        for event in events:
            client.emit(event)

    def _parent(self) -> parent_run.ParentRunFacet:
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=self.dag),
            job=parent_run.Job(namespace=NS, name="nightly"),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=self.dag),
                job=parent_run.RootJob(namespace=NS, name="nightly"),
            ),
        )

    def event(
        self,
        state: RunState,
        time: str,
        run_id: str,
        job: str,
        *,
        facets: dict[str, Any] | None = None,
        inputs: list[InputDataset] | None = None,
        outputs: list[OutputDataset] | None = None,
    ) -> RunEvent:
        run_facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version="2.9.1", name="Airflow", openlineageAdapterVersion="1.14.0"
            )
        }
        if run_id != self.dag:
            run_facets["parent"] = self._parent()
        run_facets.update(facets or {})
        return RunEvent(
            eventType=state,
            eventTime=time,
            run=Run(runId=run_id, facets=run_facets),
            job=Job(namespace=NS, name=job),
            producer=PRODUCER,
            inputs=inputs or [],
            outputs=outputs or [],
        )


def _raw_frames(*, with_stats: bool) -> OutputDataset:
    facets: dict[str, Any] = {}
    if with_stats:
        facets["outputStatistics"] = out_stats.OutputStatisticsOutputDatasetFacet(
            rowCount=120, size=4096, fileCount=3
        )
    return OutputDataset(namespace=FRAMES, name="raw", outputFacets=facets)


def _raw_frames_read() -> InputDataset:
    return InputDataset(
        namespace=FRAMES,
        name="raw",
        inputFacets={
            "dataQualityMetrics": dq.DataQualityMetricsInputDatasetFacet(
                rowCount=118,
                bytes=4000,
                columnMetrics={"frame_id": dq.ColumnMetrics(nullCount=2, distinctCount=116)},
            )
        },
    )


def _first_batch(em: Emitter, src: Path) -> None:
    """Everything up to the detector's START, spread over two files."""
    src.mkdir()
    em.emit(
        src / "a.openlineage.jsonl",
        em.event(RunState.START, "2024-05-01T10:00:00Z", em.dag, "nightly"),
        em.event(RunState.START, "2024-05-01T10:00:01Z", em.extract, "nightly.extract"),
    )
    em.emit(
        src / "b.openlineage.jsonl",
        em.event(
            RunState.COMPLETE,
            "2024-05-01T10:00:05Z",
            em.extract,
            "nightly.extract",
            outputs=[_raw_frames(with_stats=True)],
        ),
        em.event(
            RunState.START,
            "2024-05-01T10:00:06Z",
            em.detect,
            "nightly.detect",
            inputs=[_raw_frames_read()],
        ),
    )


def _second_batch(em: Emitter, src: Path) -> None:
    """The detector fails with an error message, then the DAG run completes."""
    src.mkdir()
    error = error_message_run.ErrorMessageRunFacet(
        message="CUDA out of memory", programmingLanguage="PYTHON", stackTrace="Traceback ..."
    )
    em.emit(
        src / "openlineage.jsonl",
        em.event(
            RunState.FAIL,
            "2024-05-01T10:00:09Z",
            em.detect,
            "nightly.detect",
            facets={"errorMessage": error},
        ),
        em.event(RunState.COMPLETE, "2024-05-01T10:00:10Z", em.dag, "nightly"),
    )


def _runs(store: Path) -> dict[str, tuple[Any, ...]]:
    con = open_readonly(store)
    try:
        rows = con.execute(
            "SELECT run_id, output_id, component_id, kind, version, CAST(started_at AS VARCHAR), "
            "CAST(ended_at AS VARCHAR), status, params, metrics FROM runs"
        ).fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def _query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    con = open_readonly(store)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_client_files_are_real_openlineage_lines(tmp_path: Path) -> None:
    em = Emitter()
    _first_batch(em, tmp_path / "in1")
    lines = (tmp_path / "in1" / "b.openlineage.jsonl").read_text().splitlines()
    event = json.loads(lines[1])
    assert "forest" not in event["run"]["facets"]
    assert event["run"]["facets"]["parent"]["root"]["run"]["runId"] == em.dag
    assert event["inputs"][0]["inputFacets"]["dataQualityMetrics"]["rowCount"] == 118


def test_runs_merge_across_files_and_ingests(tmp_path: Path) -> None:
    em = Emitter()
    store = tmp_path / "s.duckdb"
    _first_batch(em, tmp_path / "in1")
    assert ingest_dir(tmp_path / "in1", store) == {"runs": 3, "lineage_edges": 3}

    runs = _runs(store)
    # no forest facet: every run maps to its root (DAG) run; the DAG run is its own output
    assert {r[0] for r in runs.values()} == {em.dag}
    assert runs[em.dag][:7] == (
        em.dag,
        "nightly",
        "transform",
        "2.9.1",  # the processing_engine facet, as no other version is given
        "2024-05-01 10:00:00",
        None,
        "degraded",  # started, never ended (yet)
    )
    assert runs[em.extract][4:7] == ("2024-05-01 10:00:01", "2024-05-01 10:00:05", "ok")
    assert json.loads(runs[em.extract][8]) == {
        "output.raw.rowCount": 120,
        "output.raw.size": 4096,
        "output.raw.fileCount": 3,
    }
    assert runs[em.detect][4:7] == ("2024-05-01 10:00:06", None, "degraded")
    edges = set(_query(store, "SELECT output_id, parent_run_id, child_run_id FROM lineage_edges"))
    assert edges == {
        (em.dag, em.dag, em.extract),  # parent facet: DAG run -> task run
        (em.dag, em.dag, em.detect),
        (em.dag, em.extract, em.detect),  # dataset s3://frames/raw written, then read
    }

    _second_batch(em, tmp_path / "in2")
    # the later events update the stored runs instead of being duplicate runs
    assert ingest_dir(tmp_path / "in2", store) == {"runs": 2, "logs": 1}
    runs = _runs(store)
    assert len(runs) == 3
    detect = runs[em.detect]
    assert detect[:7] == (
        em.dag,
        "nightly.detect",
        "transform",
        "2.9.1",
        "2024-05-01 10:00:06",  # START (first ingest) kept
        "2024-05-01 10:00:09",  # FAIL (second ingest)
        "failed",
    )
    assert json.loads(detect[8]) == {
        "input.raw.rowCount": 118,
        "input.raw.bytes": 4000,
        "input.raw.frame_id.nullCount": 2,
        "input.raw.frame_id.distinctCount": 116,
    }
    assert runs[em.dag][5:7] == ("2024-05-01 10:00:10", "ok")
    logs = _query(
        store,
        "SELECT CAST(ts AS VARCHAR), run_id, component_id, level, message, attributes FROM logs "
        "WHERE run_id IS NOT NULL",
    )
    assert [log[:5] for log in logs] == [
        ("2024-05-01 10:00:09", em.detect, "nightly.detect", "ERROR", "CUDA out of memory")
    ]
    assert json.loads(logs[0][5]) == {
        "source": "openlineage.errorMessage",
        "eventType": "FAIL",
        "programmingLanguage": "PYTHON",
        "stackTrace": "Traceback ...",
    }
    assert len(_query(store, "SELECT * FROM lineage_edges")) == 3

    # the same events again change nothing: no duplicate run, edge or log line
    before = table_rows(store)
    ingest_dir(tmp_path / "in2", store)
    ingest_dir(tmp_path / "in1", store)
    assert table_rows(store) == before


def test_an_earlier_terminal_event_does_not_override_a_later_one(tmp_path: Path) -> None:
    em = Emitter()
    store = tmp_path / "s.duckdb"
    _first_batch(em, tmp_path / "in1")
    _second_batch(em, tmp_path / "in2")
    ingest_dir(tmp_path / "in2", store)  # FAIL arrives before START: started_at from FAIL
    assert _runs(store)[em.detect][4:7] == ("2024-05-01 10:00:09", "2024-05-01 10:00:09", "failed")
    ingest_dir(tmp_path / "in1", store)
    # START is earlier, so started_at moves back; the FAIL stays the last state
    assert _runs(store)[em.detect][4:7] == ("2024-05-01 10:00:06", "2024-05-01 10:00:09", "failed")
    assert _runs(store)[em.extract][5:7] == ("2024-05-01 10:00:05", "ok")


def test_end_before_start_is_an_error_and_leaves_the_store_unchanged(tmp_path: Path) -> None:
    em = Emitter()
    store = build_store(tmp_path / "s.duckdb")
    _first_batch(em, tmp_path / "in1")
    ingest_dir(tmp_path / "in1", store)
    before = table_rows(store)

    src = tmp_path / "in2"
    src.mkdir()
    em.emit(
        src / "late.openlineage.jsonl",
        em.event(RunState.COMPLETE, "2024-05-01T10:00:11Z", em.dag, "nightly"),
        em.event(RunState.FAIL, "2024-05-01T09:59:00Z", em.detect, "nightly.detect"),
    )
    with pytest.raises(IngestError) as err:
        ingest_dir(src, store)
    message = str(err.value)
    for fragment in ["late.openlineage.jsonl line 2", em.detect, "before it starts"]:
        assert fragment in message, f"{fragment!r} not in {message}"
    assert table_rows(store) == before  # the DAG run's COMPLETE (line 1) was rolled back


def test_forest_facet_output_wins_and_other_rules(tmp_path: Path) -> None:
    em = Emitter()
    src = tmp_path / "in"
    src.mkdir()
    em.emit(
        src / "openlineage.jsonl",
        em.event(
            RunState.COMPLETE,
            "2024-05-01T10:00:01Z",
            em.extract,
            "nightly.extract",
            facets={"forest": {"output_id": "out-7", "kind": "capture"}},
        ),
        em.event(RunState.COMPLETE, "2024-05-01T10:00:02Z", em.detect, "nightly.detect"),
    )
    ingest_dir(src, tmp_path / "root.duckdb")
    runs = _runs(tmp_path / "root.duckdb")
    assert runs[em.extract][:3] == ("out-7", "nightly.extract", "capture")
    assert runs[em.detect][0] == em.dag

    ingest_dir(src, tmp_path / "job.duckdb", openlineage_output="job")
    assert _runs(tmp_path / "job.duckdb")[em.detect][0] == f"{NS}/nightly"

    def by_job(event: dict[str, Any]) -> str | None:
        return str(event["job"]["name"]).split(".")[0] + "-output"

    ingest_dir(src, tmp_path / "fn.duckdb", openlineage_output=by_job)
    assert _runs(tmp_path / "fn.duckdb")[em.detect][0] == "nightly-output"
    assert _runs(tmp_path / "fn.duckdb")[em.extract][0] == "out-7"  # the facet still wins

    with pytest.raises(IngestError, match="unknown OpenLineage output rule"):
        ingest_dir(src, tmp_path / "bad.duckdb", openlineage_output="dag")


def test_the_cli_takes_the_output_rule(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    em = Emitter()
    src = tmp_path / "in"
    src.mkdir()
    em.emit(
        src / "openlineage.jsonl",
        em.event(RunState.COMPLETE, "2024-05-01T10:00:02Z", em.detect, "nightly.detect"),
    )
    store = tmp_path / "job.duckdb"
    args = ["ingest", str(src), "--store", str(store), "--openlineage-output", "job"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _runs(store)[em.detect][0] == f"{NS}/nightly"
