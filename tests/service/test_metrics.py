"""/metrics through prometheus-client: its content type, a registry per app, the same names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from agent.service import create_app
from agent.settings import Settings

BODY = {
    "evaluation_id": "m-001",
    "output_id": "out-002",
    "source_kind": "human",
    "source_id": "rev-bob",
    "claim": "false_positive",
    "created_at": "2025-03-10T12:12:00Z",
}


@pytest.fixture
def store(small_store: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(small_store, tmp_path / "metrics.duckdb"))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_are_served_by_prometheus_client_from_a_registry_per_app(
    store: Path, tmp_path: Path
) -> None:
    with TestClient(create_app(Settings(store=store))) as client:
        assert client.post("/v1/evaluations", json=BODY).status_code == 200
        r = client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"] == CONTENT_TYPE_LATEST
        samples = _samples(r.text)
    route = (("method", "POST"), ("route", "/v1/evaluations"), ("status", "200"))
    assert samples[("forest_http_requests_total", route)] == 1
    assert samples[("forest_gate_decisions_total", (("decision", "hold"),))] == 1
    for decision in ("train", "discard"):  # known label values are exposed at 0
        assert samples[("forest_gate_decisions_total", (("decision", decision),))] == 0
    for result in ("done", "failed"):
        assert samples[("forest_llm_investigations_total", (("result", result),))] == 0
    for kind in ("agree", "override"):
        assert samples[("forest_feedback_total", (("kind", kind),))] == 0
    assert samples[("forest_queue_capacity", ())] > 0
    assert samples[("forest_queue_depth", ())] == 0
    assert samples[("forest_unflushed_rows", ())] >= 1
    rules = (("tier", "rules"),)
    assert samples[("forest_investigation_seconds_count", rules)] == 1
    assert samples[("forest_investigation_seconds_bucket", (("le", "+Inf"), *rules))] == 1

    # a second app in the same process starts from zero, and nothing went to the global registry
    other = Path(shutil.copy(store, tmp_path / "other.duckdb"))
    with TestClient(create_app(Settings(store=other))) as client:
        fresh = _samples(client.get("/metrics").text)
    assert fresh[("forest_gate_decisions_total", (("decision", "hold"),))] == 0
    assert ("forest_http_requests_total", route) not in fresh
    assert REGISTRY.get_sample_value("forest_gate_decisions_total", {"decision": "hold"}) is None
