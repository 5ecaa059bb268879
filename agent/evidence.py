"""Turning tool results into numbered evidence, and running tool calls concurrently."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import duckdb

from agent.schemas import Evidence
from tools.base import ToolResult
from tools.errors import NotFoundError
from tools.registry import get_tool

__all__ = ["PlannedCall", "evidence_id", "finding", "run_calls"]

_NODE_ARGS = ("device_id", "component_id")


@dataclass(frozen=True)
class PlannedCall:
    """A tool call to make, and the lineage node it is about (if any)."""

    tool: str
    arguments: dict[str, Any]
    node: str | None = None


def evidence_id(index: int) -> str:
    return f"E{index}"


def finding(result: ToolResult) -> str:
    """One line written by code: status, the flags and what the tool said."""
    if result.status != "ok":
        return f"{result.status}: {result.message}"[:300]
    if not result.flags:
        text = "no anomaly flagged"
    else:
        text = "; ".join(
            f"{f.signal} ({f.severity}, {f.relative.replace('_', ' ')}) on {f.node or '-'}"
            for f in result.flags[:6]
        )
        if len(result.flags) > 6:
            text += f"; +{len(result.flags) - 6} more"
    if result.truncated:
        text += " [truncated]"
    return text[:300]


def to_evidence(index: int, call: PlannedCall, result: ToolResult) -> Evidence:
    node = call.node or next((call.arguments[a] for a in _NODE_ARGS if a in call.arguments), None)
    return Evidence(
        id=evidence_id(index),
        tool=call.tool,
        arguments=call.arguments,
        status=result.status,
        node=node,
        finding=finding(result),
        flags=result.flags,
        data=result.data,
    )


def run_calls(
    con: duckdb.DuckDBPyConnection,
    calls: Sequence[PlannedCall],
    *,
    first_index: int,
    pool: Executor | None = None,
) -> list[Evidence]:
    """Run ``calls`` (concurrently on ``pool``, one cursor each); number them in plan order."""

    def one(call: PlannedCall) -> ToolResult:
        try:
            tool = get_tool(call.tool)
        except NotFoundError as exc:  # the model asked for a tool that does not exist
            return ToolResult.error(call.tool, str(exc))
        return tool.call(con, call.arguments)

    results = list(pool.map(one, calls)) if pool and len(calls) > 1 else [one(c) for c in calls]
    return [
        to_evidence(first_index + i, call, result)
        for i, (call, result) in enumerate(zip(calls, results, strict=True))
    ]
