"""What the LLM tier has spent, and whether it may call tools again.

Counters live in the investigation's state (each node returns what it spent); the limits
live in :class:`agent.settings.Settings`; :func:`budget_spent` is the one check.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.chat import LLMUsage
from agent.settings import Settings

__all__ = ["budget_spent"]


def budget_spent(
    settings: Settings,
    usage: Sequence[LLMUsage],
    *,
    tool_calls: int,
    tool_rounds: int,
    elapsed_s: float,
) -> str | None:
    """None while tools may still be called, else the reason the budget is spent (one LLM
    call is always kept back for the answer)."""
    s = settings
    if s.llm_tool_choice == "none":
        return "tool calling disabled"
    if len(usage) >= s.llm_max_calls - 1:
        return f"{s.llm_max_calls} LLM calls"
    if tool_calls >= s.llm_max_tool_calls:
        return f"{s.llm_max_tool_calls} tool calls"
    if s.llm_tool_choice == "forced" and tool_rounds >= s.llm_forced_tool_rounds:
        return f"{s.llm_forced_tool_rounds} forced tool rounds"
    if sum(u.prompt_tokens for u in usage) >= s.llm_max_prompt_tokens:
        return f"{s.llm_max_prompt_tokens} prompt tokens"
    if elapsed_s >= s.llm_wall_time_s:
        return f"{s.llm_wall_time_s:g}s wall time"
    return None
