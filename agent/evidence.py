"""Turning tool results into numbered evidence, and running tool calls concurrently."""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import duckdb

from agent.schemas import Evidence
from tools.base import ToolResult
from tools.errors import NotFoundError
from tools.registry import TOOLS, get_tool

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
    """Run ``calls`` (concurrently on ``pool``, one cursor each; the calls of a tool with a
    batch form together, e.g. every ``get_run`` of a lineage); number them in plan order."""
    groups: dict[str, list[int]] = {}
    for i, call in enumerate(calls):
        tool = TOOLS.get(call.tool)
        key = call.tool if tool is not None and tool.batch is not None else f"{i}:{call.tool}"
        groups.setdefault(key, []).append(i)

    def run(indices: list[int]) -> list[ToolResult]:
        name = calls[indices[0]].tool
        try:
            tool = get_tool(name)
        except NotFoundError as exc:  # the model asked for a tool that does not exist
            return [ToolResult.error(name, str(exc))]
        return tool.call_many(con, [calls[i].arguments for i in indices])

    batches = list(groups.values())
    if pool and len(batches) > 1:  # each task in a copy of this context (the tools' memo)
        futures = [pool.submit(contextvars.copy_context().run, run, b) for b in batches]
        outcomes = [f.result() for f in futures]
    else:
        outcomes = [run(b) for b in batches]
    results: dict[int, ToolResult] = {}
    for indices, outcome in zip(batches, outcomes, strict=True):
        results.update(zip(indices, outcome, strict=True))
    return [to_evidence(first_index + i, call, results[i]) for i, call in enumerate(calls)]
