"""Human overrides: journaled by the service, flushed into the store, listed by
`forest overrides`, and turned into a regression case by `record-incident --from-override`."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agent.cli import app as cli
from agent.schemas import Override
from agent.service import create_app
from agent.settings import Settings
from evals.incident import load_case
from tools.errors import NotFoundError

BODY = {
    "evaluation_id": "ovr-001",
    "output_id": "out-002",
    "source_kind": "human",
    "source_id": "rev-bob",
    "claim": "false_positive",
    "comment": "wrong",
    "created_at": "2025-03-10T12:12:00Z",
}
runner = CliRunner()


def listed(store: Path) -> list[dict]:
    result = runner.invoke(cli, ["overrides", "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_an_override_is_listed_then_flushed_then_recorded_as_a_case(
    small_store: Path, tmp_path: Path
) -> None:
    store = Path(shutil.copy(small_store, tmp_path / "gate.duckdb"))
    application = create_app(Settings(store=store, serve_flush_interval_s=3600))
    with TestClient(application) as client:
        answer = client.post("/v1/evaluations", json=BODY).json()
        gate = application.state.gate
        override = Override(
            override_id="o-1",
            verdict_id=answer["verdict_id"],
            evaluation_id="ovr-001",
            created_at=dt.datetime(2025, 3, 11, 9, 0, tzinfo=dt.UTC),
            author="U-alice",
            category="threshold_miscalibration",
            failing_node="detector",
            action="recalibrate_threshold",
            reason="threshold was left at the old model's value",
        )
        assert gate.override(override) is True
        assert gate.override(override) is False  # a resubmitted modal journals nothing new
        with pytest.raises(NotFoundError):
            gate.override(override.model_copy(update={"override_id": "o-2", "verdict_id": "v?"}))
        pending = listed(store)
        assert [(o["override_id"], o["source"]) for o in pending] == [("o-1", "journal")]
    # leaving the client stops the service, which flushes the journal into the store
    (row,) = listed(store)
    assert row["source"] == "store"
    assert Override.model_validate({k: v for k, v in row.items() if k != "source"}) == override
    assert listed(store) == [row]  # flushed rows are not listed twice
    assert (
        runner.invoke(
            cli, ["overrides", "--store", str(store), "--evaluation", "other"]
        ).stderr.strip()
        == "no overrides"
    )

    out = tmp_path / "cases"
    result = runner.invoke(
        cli,
        ["record-incident", "ovr-001", "--store", str(store), "--out", str(out), "--from-override"],
    )
    assert result.exit_code == 0, result.output
    case = load_case(out)
    assert case.incident.expected.category == "threshold_miscalibration"
    assert case.incident.expected.failing_node == "detector"
    assert case.incident.expected.action == "recalibrate_threshold"
    assert "from_override" in case.incident.tags
