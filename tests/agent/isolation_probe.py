"""Run only by test_isolation.py, in a pytest subprocess whose environment carries a developer's
LLM and Slack settings. Not named ``test_*.py``, so the suite never collects it itself."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from agent.service import create_app
from agent.settings import Settings

NAMES = ("OPENAI_API_KEY", "FOREST_LLM_BASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
# read at import, before tests/conftest.py clears the environment for each test
SHELL = {name: os.environ.get(name) for name in NAMES}
BODY = {
    "evaluation_id": "api-001",
    "output_id": "out-002",
    "source_kind": "human",
    "source_id": "rev-bob",
    "claim": "false_positive",
    "comment": "wrong!!",
    "created_at": "2025-03-10T12:12:00Z",
}


def test_the_shell_had_llm_and_slack_settings() -> None:
    assert all(SHELL.values()), SHELL


def test_settings_in_a_test_see_none_of_them() -> None:
    assert not any(os.environ.get(name) for name in NAMES)
    settings = Settings()
    assert settings.llm_configured is False and settings.slack_configured is False


def test_the_service_runs_no_llm_tier(small_store: Path, tmp_path: Path) -> None:
    store = Path(shutil.copy(small_store, tmp_path / "gate.duckdb"))
    # below 0.99 every rules verdict would queue an LLM investigation if the tier were on
    app = create_app(Settings(store=store, train_confidence=0.99))
    assert app.state.gate.llm_enabled is False
    with TestClient(app) as client:
        answer = client.post("/v1/evaluations", json=BODY)
        assert answer.status_code == 200 and answer.json()["llm_investigation"] == "none"
        assert client.get("/v1/verdicts/api-001").json()["provenance"]["reasoner"] == "rules"
