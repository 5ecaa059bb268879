"""``get_run``: one component run with its metrics compared against the same component's
recent runs, and ``get_runs``, the same for many runs with one baseline scan."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from typing import Any

import duckdb
from pydantic import Field

from tools import signals
from tools.base import Flag, Severity, ToolArgs, ToolResult, fetch_dicts, jsonable
from tools.lineage import from_db, to_db

__all__ = ["GetRunArgs", "get_run", "get_runs"]

RUNS_BY_ID_SQL = "SELECT * FROM runs WHERE list_contains(?::VARCHAR[], run_id)"
# Each run's baseline: its component's runs 24 h to 1 h before it, newest first, at most
# BASELINE_SAMPLE of them (bounded so the lookup stays cheap on a large store). SAMPLE_ONE
# finds one run's (a filtered scan); SAMPLE_MANY any number's in one scan of runs.
BASELINE_SAMPLE = 500  # ample for a median/MAD
SAMPLE_ONE = """
    SELECT 0 AS i, metrics FROM runs
    WHERE component_id = ? AND started_at >= ? AND started_at <= ? AND metrics IS NOT NULL
    ORDER BY started_at DESC, run_id LIMIT ?"""
SAMPLE_MANY = """
    WITH wanted AS (
        SELECT unnest(?::INTEGER[]) AS i, unnest(?::VARCHAR[]) AS component_id,
               unnest(?::TIMESTAMP[]) AS lo, unnest(?::TIMESTAMP[]) AS hi
    )
    SELECT w.i, r.metrics
    FROM runs r JOIN wanted w
      ON r.component_id = w.component_id AND r.started_at >= w.lo AND r.started_at <= w.hi
    WHERE r.metrics IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY w.i ORDER BY r.started_at DESC, r.run_id) <= ?"""
# Per run asked about: its sample's size (key NULL), and each metric's numeric values (JSON
# numbers only, as _numeric keeps in Python: no booleans, strings or nulls). Extracting
# them here rather than with json.loads frees ~18 ms of GIL per investigation's sweep.
BASELINES_SQL = f"""
    WITH sample AS MATERIALIZED ({SAMPLE_MANY})
    SELECT i, NULL AS key, count(*) AS n, NULL::DOUBLE[] AS vals FROM sample GROUP BY i
    UNION ALL
    SELECT s.i, e.key, NULL, list(TRY_CAST(e.value AS DOUBLE))
    FROM sample s, json_each(s.metrics) e
    WHERE json_type(s.metrics) = 'OBJECT' AND e.type IN ('BIGINT', 'UBIGINT', 'DOUBLE')
    GROUP BY s.i, e.key"""
BASELINE_MIN_RUNS = 5


class GetRunArgs(ToolArgs):
    """One component run: status, version, the params it actually used and its metrics,
    each numeric metric compared with the median/MAD of the same component's runs in the
    24 h before it (flags run.metric.<name> when it deviates, run.status when the run was
    not ok). Use it to check whether a lineage node behaved normally for this output."""

    run_id: str = Field(description="id of the run (the run_id of a lineage node)")


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _metric_baselines(
    con: duckdb.DuckDBPyConnection, runs: list[dict[str, Any]]
) -> list[tuple[int, dict[str, list[float]]]]:
    """For each run, (sample size, numeric metric values) of its component's recent runs.

    One scan of ``runs`` serves every run asked about: the sweep asks for a whole lineage.
    """
    if not runs:
        return []
    components = [r["component_id"] for r in runs]
    starts = [to_db(r["started_at"] - dt.timedelta(hours=24)) for r in runs]
    ends = [to_db(r["started_at"] - dt.timedelta(hours=1)) for r in runs]
    counts = [0] * len(runs)
    samples: list[dict[str, list[float]]] = [{} for _ in runs]
    if len(runs) == 1:  # decoding one sample in Python beats json_each
        params = [components[0], starts[0], ends[0], BASELINE_SAMPLE]
        rows = con.execute(SAMPLE_ONE, params).fetchall()
        for _, metrics in rows:
            for name, value in _json_object(metrics).items():
                if _numeric(value):
                    samples[0].setdefault(name, []).append(float(value))
        counts[0] = len(rows)
    else:  # many: DuckDB extracts the numbers, off the GIL
        params = [list(range(len(runs))), components, starts, ends, BASELINE_SAMPLE]
        for i, key, n, values in con.execute(BASELINES_SQL, params).fetchall():
            if key is None:
                counts[i] = n
            else:
                samples[i][key] = values
    return list(zip(counts, samples, strict=True))


def _json_object(value: Any) -> dict[str, Any]:
    """A JSON object column as a dict (DuckDB returns JSON as text)."""
    if isinstance(value, str):
        decoded = json.loads(value)
        return decoded if isinstance(decoded, dict) else {}
    return value if isinstance(value, dict) else {}


def _metric_flag(
    name: str, value: float, sample: list[float], node: str, at: str
) -> tuple[dict[str, Any], Flag | None]:
    median = statistics.median(sample)
    mad = statistics.median(abs(x - median) for x in sample)
    deviation = abs(value - median)
    summary = {"value": value, "median": median, "mad": mad, "n": len(sample)}
    severity: Severity | None = None
    if deviation > max(4 * 1.4826 * mad, 0.25 * abs(median)):
        severity = "major"
    elif deviation > max(3 * 1.4826 * mad, 0.10 * abs(median)):
        severity = "minor"
    if severity is None:
        return summary, None
    detail = f"{name}={value:g} vs median {median:g} (MAD {mad:g}, n={len(sample)}) of recent runs"
    return summary, Flag(
        node=node,
        signal=signals.run_metric(name),
        severity=severity,
        at=at,
        relative="before_capture",
        detail=detail,
    )


def get_run(con: duckdb.DuckDBPyConnection, args: GetRunArgs) -> ToolResult:
    return get_runs(con, [args])[0]


def get_runs(con: duckdb.DuckDBPyConnection, many: list[GetRunArgs]) -> list[ToolResult]:
    """``get_run`` for many runs at once (same results, one baseline scan)."""
    ids = list(dict.fromkeys(a.run_id for a in many))
    rows = {
        r["run_id"]: {**r, "started_at": from_db(r["started_at"])}
        for r in fetch_dicts(con, RUNS_BY_ID_SQL, [ids], json_columns=("params", "metrics"))
    }
    found = [rows[i] for i in ids if i in rows]
    baselines = dict(zip((r["run_id"] for r in found), _metric_baselines(con, found), strict=True))
    return [
        _run_result(dict(rows[a.run_id]), *baselines[a.run_id])
        if a.run_id in rows
        else ToolResult.no_data("get_run", f"no run with run_id '{a.run_id}'")
        for a in many
    ]


def _run_result(run: dict[str, Any], n_runs: int, samples: dict[str, list[float]]) -> ToolResult:
    node, at = run["component_id"], jsonable(run["started_at"])
    flags: list[Flag] = []
    if run["status"] in ("failed", "degraded"):
        severity: Severity = "major" if run["status"] == "failed" else "minor"
        flags.append(
            Flag(
                node=node,
                signal=signals.RUN_STATUS,
                severity=severity,
                at=at,
                relative="before_capture",
                detail=f"run status '{run['status']}'",
            )
        )
    comparison: dict[str, Any] = {}
    for name, value in (run.get("metrics") or {}).items():
        sample = samples.get(name, [])
        if not _numeric(value) or len(sample) < BASELINE_MIN_RUNS:
            comparison[name] = {"value": value, "median": None, "n": len(sample)}
            continue
        comparison[name], flag = _metric_flag(name, float(value), sample, node, at)
        if flag:
            flags.append(flag)
    run["baseline"] = {
        "window": "same component's runs started 24h to 1h before this run",
        "runs": n_runs,
        "metrics": comparison,
    }
    return ToolResult.ok("get_run", run, flags=flags)
