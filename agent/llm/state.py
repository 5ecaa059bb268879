"""The LLM tier's own state: the conversation and what it has spent (reducers on every
list and counter; nodes return partial updates)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from agent.chat import ChatResult, LLMUsage, ToolCallRequest
from agent.dag import Lineage
from agent.schemas import Evaluation, Evidence, VerdictDraft

__all__ = ["LLMInput", "LLMOutput", "LLMState"]


class LLMInput(TypedDict):
    """What the tier is handed: the evaluation, its output and lineage, the sweep."""

    evaluation: Evaluation
    output: dict[str, Any] | None
    lineage: Lineage | None
    evidence: list[Evidence]


class LLMOutput(TypedDict):
    """What the tier hands back (``evidence`` includes what it was handed)."""

    evidence: list[Evidence]
    draft: VerdictDraft | None
    errors: list[str]
    llm_usage: list[LLMUsage]
    repairs: int


class LLMState(TypedDict):
    evaluation: Evaluation
    """The evaluation under investigation."""
    output: dict[str, Any] | None
    """Its output row."""
    lineage: Lineage | None
    """The output's lineage DAG: the nodes a verdict may name."""
    evidence: Annotated[list[Evidence], operator.add]
    """The sweep's evidence, then what the model's tool calls found."""
    messages: Annotated[list[dict[str, Any]], operator.add]
    """The conversation sent to the model."""
    pending: list[ToolCallRequest]
    """Tool calls the model asked for and that have not run yet."""
    answer: ChatResult | None
    """A final answer the model gave in a tool turn (parsed by ``answer``)."""
    draft: VerdictDraft | None
    """The validated verdict draft, or the fallback when none could be had."""
    errors: Annotated[list[str], operator.add]
    """Endpoint failures and invalid answers, in order."""
    llm_usage: Annotated[list[LLMUsage], operator.add]
    """Every call to the model (failed attempts too) and its tokens."""
    llm_tool_calls: Annotated[int, operator.add]
    """Tool calls the model made (they count against ``llm_max_tool_calls``)."""
    tool_rounds: Annotated[int, operator.add]
    """Successful tool turns (``forced`` mode picks its tool from this)."""
    repairs: Annotated[int, operator.add]
    """Repair turns taken for invalid answers."""
