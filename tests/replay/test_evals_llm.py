"""The eval suite with the LLM tier, replayed from one cassette per incident.

Recorded by ``make record`` from the real llama.cpp server (270M Gemma 3): the floors are
that every verdict is schema-valid and fully grounded whatever the model answered; its
accuracy is reported by ``forest eval --reasoner llm``, not asserted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cassettes import vcr_config as shared_vcr_config

from agent.settings import Settings
from evals.incident import group_of, load_suite
from evals.runner import DEFAULT_INCIDENTS, run_case

pytestmark = [pytest.mark.vcr, pytest.mark.block_network]

# The LLM tier replays the original suite; the fleet and hand-written groups are scored by
# the rules tier (recording them all against the 270M model would take hours).
CASES = [c.folder for c in load_suite(DEFAULT_INCIDENTS) if group_of(c.tags) == "suite"]
BASE_URL = os.environ.get("FOREST_RECORD_BASE_URL", "http://127.0.0.1:8765/v1")


def llm_settings() -> Settings:
    """Built inside a test, after conftest cleared the shell's FOREST_/OPENAI_ variables."""
    return Settings(
        reasoner="llm",
        llm_base_url=BASE_URL,
        llm_model="gemma3-270m",
        llm_api_key="not-a-real-key",
        llm_max_retries=0,
        llm_timeout_s=600,
        llm_structured_output="json_object",
        llm_tool_choice="none",
        llm_max_repairs=1,
    )


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return shared_vcr_config()


@pytest.mark.parametrize("folder", CASES, ids=lambda p: Path(p).name)
def test_llm_verdict_is_schema_valid_and_grounded(folder: Path, vcr: Any, record_mode: str):
    result = run_case(folder, "llm", settings=llm_settings())
    assert result.error is None, result.error
    assert result.grades["schema"].passed, result.grades["schema"]
    assert result.grades["grounded"].passed, result.grades["grounded"]
    assert result.cost.llm_calls >= 1 and result.cost.prompt_tokens > 0
    if result.got.get("route_to_training"):  # whatever the model says, noise never trains
        assert result.expected["route_to_training"], result.got
    if record_mode == "none":
        assert vcr.all_played, f"{folder.name}: cassette has unplayed interactions"


def test_a_recorded_schema_invalid_answer_is_repaired(record_mode: str):
    """Incident 062, as the real 270M model answered it: confidence 1.95 is rejected by
    pydantic, the repair turn carries the validation error, the second answer is valid."""
    if record_mode != "none":
        pytest.skip("replay-only check of an existing recording")
    import vcr as vcrlib
    from cassettes import ReadableYaml

    name = "062_defocus_s5m_000007"
    folder = next(c for c in CASES if c.name == name)
    config = {k: v for k, v in shared_vcr_config().items() if k != "allow_playback_repeats"}
    player = vcrlib.VCR(record_mode="none", **config)
    player.register_serializer("yaml", ReadableYaml())
    path = Path(__file__).parent / "cassettes" / "test_evals_llm"
    cassette_file = path / f"test_llm_verdict_is_schema_valid_and_grounded[{name}].yaml"
    with player.use_cassette(str(cassette_file), serializer="yaml") as cassette:
        result = run_case(folder, "llm", settings=llm_settings())
        second = cassette.requests[1].body
    assert cassette.play_count == 2 and b"could not be used" in second and b"1.95" in second
    assert result.error is None and result.cost.llm_calls == 2
    # two calls and no third: the repaired answer parsed and was used (grounding may still
    # turn a wrongly located answer into an inconclusive verdict, never into training)
    assert result.got["route_to_training"] is False
    assert result.grades["schema"].passed and result.grades["grounded"].passed
