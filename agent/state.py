"""Graph state (with a reducer on every list) and the per-investigation runtime context."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import duckdb

from agent.dag import Lineage
from agent.llm import ChatResult, ToolCallRequest
from agent.llm_reasoner import LLMSession
from agent.schemas import Evaluation, Evidence, Verdict, VerdictDraft
from agent.settings import Settings

__all__ = [
    "InvestigationContext",
    "InvestigationInput",
    "InvestigationOutput",
    "InvestigationState",
]


class InvestigationInput(TypedDict):
    evaluation: Evaluation


class InvestigationOutput(TypedDict):
    verdict: Verdict
    intake_error: str | None


class InvestigationState(TypedDict):
    evaluation: Evaluation
    captured_at: str | None
    output: dict[str, Any] | None
    lineage: Lineage | None
    intake_error: str | None
    evidence: Annotated[list[Evidence], operator.add]
    messages: Annotated[list[dict[str, Any]], operator.add]
    pending: list[ToolCallRequest]
    answer: ChatResult | None
    draft: VerdictDraft | None
    notes: Annotated[list[str], operator.add]
    errors: Annotated[list[str], operator.add]
    verdict: Verdict | None


@dataclass
class InvestigationContext:
    """What nodes need besides state: injected, never global."""

    con: duckdb.DuckDBPyConnection
    settings: Settings
    clock: Callable[[], dt.datetime]
    started_at: dt.datetime
    store_snapshot: str | None = None
    session: LLMSession | None = None
    pool: Executor | None = None  # the investigator's sweep threads, reused across runs
    sink: Callable[[Verdict], None] | None = None
