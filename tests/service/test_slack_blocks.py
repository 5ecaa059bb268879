"""slack_blocks builds its payloads with slack_sdk's Block Kit models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from agent.api import investigate
from agent.schemas import Verdict
from agent.service.slack_blocks import override_modal, verdict_message
from agent.settings import Settings

URL = "https://forest.example.com/v1/verdicts/ev-002"


@pytest.fixture
def verdict(small_store: Path, tmp_path: Path) -> Verdict:
    store = Path(shutil.copy(small_store, tmp_path / "blocks.duckdb"))
    return investigate("ev-002", store=store, settings=Settings(store=store))


def test_payloads_are_slack_sdk_models_to_dict(verdict: Verdict) -> None:
    message = verdict_message(verdict, URL)
    parsed = Block.parse_all(message["blocks"])
    assert [b.to_dict() for b in parsed] == message["blocks"]
    modal = override_modal(verdict, "C1", "1.2")
    assert View(**modal).to_dict() == modal


def test_the_models_refuse_what_clipping_cannot_fix(verdict: Verdict) -> None:
    # a button value (the verdict id) is not text to clip: past 2000 chars the model refuses
    with pytest.raises(SlackObjectFormationError, match="value"):
        verdict_message(verdict.model_copy(update={"verdict_id": "v" * 2001}), URL)
    # the modal's private_metadata carries the ids: past 3000 chars the view refuses
    with pytest.raises(SlackObjectFormationError, match="private_metadata"):
        override_modal(verdict.model_copy(update={"verdict_id": "v" * 3001}), "C1", "1.2")
