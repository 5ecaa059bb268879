"""How far a reviewer's or judge's past evaluations agreed with adjudication."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import duckdb
from pydantic import Field

from tools import signals
from tools.base import Flag, Severity, ToolArgs, ToolResult, jsonable
from tools.store.timestamps import UtcTimestamp, from_db, to_db

__all__ = ["GetEvaluatorReliabilityArgs", "get_evaluator_reliability", "wilson"]

# the history is sorted by (source_id, adjudicated_at): one aggregate over a pruned range
RELIABILITY_SQL = """
    SELECT count(*) AS n,
           count(*) FILTER (WHERE agreed) AS agreed,
           count(*) FILTER (WHERE adjudicated_at >= ?) AS recent_n,
           count(*) FILTER (WHERE agreed AND adjudicated_at >= ?) AS recent_agreed,
           min(adjudicated_at) AS first_at,
           max(adjudicated_at) AS last_at
    FROM evaluator_history
    WHERE source_id = ? AND adjudicated_at < ?"""
LAST_SQL = "SELECT max(adjudicated_at) FROM evaluator_history WHERE source_id = ?"
RECENT = dt.timedelta(days=30)
RECENT_MIN_N = 8
Z95 = 1.96


def wilson(agreed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95 % by default); (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    p = agreed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


class GetEvaluatorReliabilityArgs(ToolArgs):
    """Track record of a reviewer or automated judge: how many of its past evaluations
    (adjudicated before `at`) agreed with adjudication, the Beta posterior mean and Wilson
    95% interval of its agreement rate, and last-30-days vs earlier rates. Flags
    evaluator.unreliable and evaluator.degrading. Use it before trusting an evaluation:
    an unreliable evaluator's claim should not become training signal."""

    source_id: str = Field(description="reviewer or judge id (the evaluation's source_id)")
    at: UtcTimestamp | None = Field(
        default=None,
        description="only count adjudications before this ISO-8601 UTC time "
        "(the evaluation's created_at); all history when omitted",
    )


def _rate(agreed: int, n: int) -> dict[str, Any]:
    low, high = wilson(agreed, n)
    return {"n": n, "agreed": agreed, "rate": agreed / n if n else None, "wilson": [low, high]}


def _flags(source: str, overall: dict[str, Any], recent: dict[str, Any], earlier: dict[str, Any]):
    flags = []
    n, agreed = overall["n"], overall["agreed"]
    mean = (1 + agreed) / (2 + n)
    if overall["wilson"][1] < 0.7 or mean < 0.75:
        severity: Severity = "major" if overall["wilson"][1] < 0.7 else "minor"
        flags.append(
            Flag(
                node=None,
                signal=signals.EVALUATOR_UNRELIABLE,
                severity=severity,
                detail=f"{source}: agreed {agreed}/{n} (posterior mean {mean:.2f}, "
                f"Wilson upper {overall['wilson'][1]:.2f})",
            )
        )
    if recent["n"] >= RECENT_MIN_N and earlier["n"] and recent["wilson"][1] < earlier["wilson"][0]:
        flags.append(
            Flag(
                node=None,
                signal=signals.EVALUATOR_DEGRADING,
                severity="major",
                detail=f"{source}: last 30 days agreed {recent['agreed']}/{recent['n']}, "
                f"earlier {earlier['agreed']}/{earlier['n']}",
            )
        )
    return flags


def get_evaluator_reliability(
    con: duckdb.DuckDBPyConnection, args: GetEvaluatorReliabilityArgs
) -> ToolResult:
    tool = "get_evaluator_reliability"
    until = args.at
    if until is None:
        last = con.execute(LAST_SQL, [args.source_id]).fetchone()
        # with no cut-off, "recent" means the 30 days up to the latest adjudication
        until = from_db(last[0]) + dt.timedelta(microseconds=1) if last and last[0] else None
    if until is None:
        return ToolResult.no_data(tool, f"no adjudicated history for source_id '{args.source_id}'")
    cut = to_db(until - RECENT)
    row = con.execute(RELIABILITY_SQL, [cut, cut, args.source_id, to_db(until)]).fetchone()
    n, agreed, recent_n, recent_agreed, first_at, last_at = row or (0, 0, 0, 0, None, None)
    if n == 0:
        return ToolResult.no_data(
            tool,
            f"no adjudicated history for source_id '{args.source_id}' before {jsonable(until)}",
        )
    overall = _rate(agreed, n)
    recent = _rate(recent_agreed, recent_n)
    earlier = _rate(agreed - recent_agreed, n - recent_n)
    data = {
        "source_id": args.source_id,
        "until": until,
        **overall,
        "disagreed": n - agreed,
        "posterior_mean": (1 + agreed) / (2 + n),
        "recent_30d": recent,
        "earlier": earlier,
        "first_adjudicated_at": first_at,
        "last_adjudicated_at": last_at,
    }
    return ToolResult.ok(tool, data, flags=_flags(args.source_id, overall, recent, earlier))
