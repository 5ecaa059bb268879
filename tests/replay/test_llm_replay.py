"""The real-HTTP LLM path, replayed from cassettes recorded from a real llama.cpp server.

Record with ``make record`` (never by hand). Replay runs with the network blocked, matches
on method + path + body, and fails when a cassette has unplayed interactions. The model is
the 270M Gemma 3 from PyPI: its answers are often junk, which is the point — whatever it
says, the verdict must be schema-valid and grounded.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
from cassettes import vcr_config as shared_vcr_config

from agent.api import Investigator
from agent.dag import Lineage
from agent.schemas import Verdict
from agent.settings import Settings

pytestmark = [pytest.mark.vcr, pytest.mark.block_network]

BASE_URL = os.environ.get("FOREST_RECORD_BASE_URL", "http://127.0.0.1:8765/v1")
FROZEN = dt.datetime(2025, 3, 10, 13, 0, tzinfo=dt.UTC)
SWEEP_SIZE = 21  # intake (2) + sweep (19) evidence items for a small_store output


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return shared_vcr_config()


@pytest.fixture(autouse=True)
def _every_interaction_played(vcr: Any, record_mode: str):
    yield
    if record_mode == "none":
        assert vcr.all_played, f"cassette {vcr._path} has unplayed interactions"


def investigate(store, evaluation_id: str, **overrides: Any) -> Verdict:
    config: dict[str, Any] = {
        "store": store,
        "reasoner": "llm",
        "llm_base_url": BASE_URL,
        "llm_model": "gemma3-270m",
        "llm_api_key": "not-a-real-key",
        "llm_max_retries": 0,
        "llm_timeout_s": 600,
        "llm_structured_output": "json_object",
    }
    settings = Settings(**{**config, **overrides})
    with Investigator(store, settings=settings, clock=lambda: FROZEN) as inv:
        verdict = inv.investigate(evaluation_id)
        lineage_ev = next(e for e in verdict.evidence if e.tool == "get_lineage")
        assert_grounded(verdict, Lineage.from_tool_data(lineage_ev.data))
    return verdict


def assert_grounded(verdict: Verdict, lineage: Lineage) -> None:
    Verdict.model_validate_json(verdict.model_dump_json())  # schema-valid round trip
    ids = {e.id for e in verdict.evidence}
    cited = {i for c in verdict.components for i in c.evidence_ids}
    cited |= {i for h in verdict.hypotheses for i in h.evidence_ids}
    assert cited <= ids
    assert verdict.failing_node is None or verdict.failing_node in lineage.nodes
    if verdict.causal_path:
        assert lineage.follows_edges(verdict.causal_path)
        assert verdict.failing_node in verdict.causal_path
    if verdict.category == "model_error":
        assert verdict.failing_node is not None


def test_tool_calling_run_ends_in_a_verdict(small_store):
    verdict = investigate(
        small_store, "ev-001", llm_tool_choice="forced", llm_forced_tool_rounds=1, llm_max_repairs=0
    )
    p = verdict.provenance
    follow_ups = verdict.evidence[SWEEP_SIZE:]
    assert [e.tool for e in follow_ups] == ["search_logs"]  # the forced function, run
    assert p.llm_calls >= 2 and p.prompt_tokens > 1000 and p.completion_tokens > 0
    assert p.model == "gemma3-270m" and p.tool_calls == len(verdict.evidence)


def test_schema_invalid_answer_gets_repair_turns_then_a_clear_verdict(small_store, vcr):
    # The 270M model answers confidence 4 (> 1): pydantic rejects it whatever the server's
    # grammar allowed, and each repair turn feeds the validation error back.
    verdict = investigate(
        small_store, "ev-003", llm_tool_choice="forced", llm_forced_tool_rounds=1, llm_max_repairs=2
    )
    p = verdict.provenance
    assert p.repairs >= 1 and p.llm_calls == 2 + p.repairs
    repair_requests = [r for r in vcr.requests if b"could not be used" in (r.body or b"")]
    assert len(repair_requests) == p.repairs
    if p.errors:  # still invalid after the bounded repairs: a clear, non-training verdict
        assert (verdict.category, verdict.action.kind) == ("inconclusive", "escalate_human")
        assert "invalid answer after" in p.errors[0] and not verdict.route_to_training


def test_budget_hit_forces_an_answer(small_store):
    verdict = investigate(
        small_store,
        "ev-003",
        llm_tool_choice="forced",
        llm_forced_tool_rounds=5,
        llm_max_tool_calls=1,
        llm_max_repairs=0,
    )
    assert len(verdict.evidence) == SWEEP_SIZE + 1  # one follow-up, then the budget stopped it
    assert verdict.provenance.llm_calls == 2  # one tool turn, one forced answer


def test_server_error_ends_in_a_clear_error_verdict(small_store):
    # llama.cpp's server answers response_format json_schema with HTTP 500
    verdict = investigate(
        small_store, "ev-001", llm_tool_choice="none", llm_structured_output="json_schema"
    )
    assert (verdict.category, verdict.action.kind, verdict.gate) == (
        "inconclusive",
        "escalate_human",
        "hold",
    )
    assert verdict.provenance.errors and "HTTP 500" in verdict.provenance.errors[0]
    assert verdict.provenance.llm_calls == 1 and verdict.confidence == 0.0
