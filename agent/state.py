"""The investigation's state (a reducer on every list and counter; nodes return partial
updates) and its runtime context (what nodes need besides state, injected)."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

import duckdb

from agent.chat import ChatModel, LLMUsage
from agent.dag import Lineage
from agent.schemas import Evaluation, Evidence, Verdict, VerdictDraft
from agent.settings import Settings

__all__ = [
    "InvestigationContext",
    "InvestigationInput",
    "InvestigationOutput",
    "InvestigationState",
]

Reasoner = Literal["rules", "llm"]


class InvestigationInput(TypedDict):
    evaluation: Evaluation
    """The evaluation to investigate."""
    reasoner: Reasoner
    """Which tier reasons over the sweep."""


class InvestigationOutput(TypedDict):
    verdict: Verdict
    """The grounded, routed verdict with provenance."""
    intake_error: str | None
    """Why the evaluation could not be investigated (unknown output, no lineage), if so."""


class InvestigationState(TypedDict):
    evaluation: Evaluation
    """The evaluation under investigation."""
    reasoner: Reasoner
    """Which tier reasons over the sweep."""
    captured_at: str | None
    """The output's capture time (ISO), once intake found the output."""
    output: dict[str, Any] | None
    """The output row."""
    lineage: Lineage | None
    """The output's lineage DAG: the closed set of nodes a verdict may name."""
    intake_error: str | None
    """Why intake could not go on, or None."""
    evidence: Annotated[list[Evidence], operator.add]
    """Every tool result, in id order (intake, sweep, then the LLM tier's calls)."""
    draft: VerdictDraft | None
    """The reasoner's draft (grounded in place by ``ground``)."""
    notes: Annotated[list[str], operator.add]
    """What grounding changed and why."""
    errors: Annotated[list[str], operator.add]
    """LLM endpoint failures and invalid answers."""
    llm_usage: Annotated[list[LLMUsage], operator.add]
    """Every call to the model and its tokens (empty for the rules tier)."""
    repairs: Annotated[int, operator.add]
    """Repair turns the LLM tier took."""
    verdict: Verdict | None
    """The final verdict, set by ``finalize``."""


@dataclass
class InvestigationContext:
    """What nodes need besides state: injected, never global."""

    con: duckdb.DuckDBPyConnection
    settings: Settings
    clock: Callable[[], dt.datetime]
    started_at: dt.datetime
    store_snapshot: str | None = None
    model: ChatModel | None = None  # the LLM tier's model; None for the rules tier
    pool: Executor | None = None  # the investigator's sweep threads, reused across runs
