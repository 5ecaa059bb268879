"""``get_run``: one component run with its metrics compared against the same component's
recent runs, and ``get_runs``, the same for many runs with one baseline scan.

A long-lived caller (the gate) can lend the tools a :class:`BaselineCache` with
:func:`baseline_cache`: each component's runs are then read and decoded once, and every
later baseline is a slice of that series instead of a scan that re-parses ~300 JSON blobs
per run (the largest single cost of a sweep). Results are identical either way.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import duckdb
from pydantic import Field

from tools import signals
from tools.base import Flag, Severity, ToolArgs, ToolResult, jsonable
from tools.store.connection import fetch_dicts
from tools.store.timestamps import from_db, to_db

__all__ = ["BaselineCache", "GetRunArgs", "baseline_cache", "get_run", "get_runs"]

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
# A component's whole series in the order that makes every baseline window a contiguous
# slice whose last BASELINE_SAMPLE rows are SAMPLE_ONE's (started_at DESC, run_id ASC).
SERIES_SQL = """
    SELECT started_at, metrics FROM runs WHERE component_id = ? AND metrics IS NOT NULL
    ORDER BY started_at, run_id DESC"""
FINGERPRINT_SQL = "SELECT count(*), max(started_at), min(started_at) FROM runs"
SIZES_SQL = "SELECT component_id, count(*) FROM runs WHERE metrics IS NOT NULL GROUP BY ALL"
MAX_CACHED_RUNS = 5_000_000  # ~1 GB of decoded series at most


class GetRunArgs(ToolArgs):
    """One component run: status, version, the params it actually used and its metrics,
    each numeric metric compared with the median/MAD of the same component's runs in the
    24 h before it (flags run.metric.<name> when it deviates, run.status when the run was
    not ok). Use it to check whether a lineage node behaved normally for this output."""

    run_id: str = Field(description="id of the run (the run_id of a lineage node)")


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Series:
    """One component's runs with metrics, oldest first: start times, and per metric the
    numeric values aligned with them (None where a run lacks a number for it)."""

    starts: list[dt.datetime]
    metrics: dict[str, list[float | None]]

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, component_id: str) -> _Series:
        rows = con.execute(SERIES_SQL, [component_id]).fetchall()
        metrics: dict[str, list[float | None]] = {}
        for i, (_, raw) in enumerate(rows):
            for name, value in _numbers(raw).items():
                column = metrics.get(name)
                if column is None:
                    column = metrics[name] = [None] * len(rows)
                column[i] = value
        return cls([r[0] for r in rows], metrics)

    def baseline(self, lo: dt.datetime, hi: dt.datetime) -> tuple[int, dict[str, list[float]]]:
        """SAMPLE_ONE's (row count, numeric values per metric) for the window [lo, hi]."""
        end = bisect.bisect_right(self.starts, hi)
        start = max(bisect.bisect_left(self.starts, lo), end - BASELINE_SAMPLE)
        if start >= end:
            return 0, {}
        samples = {
            name: [v for v in column[start:end] if v is not None]
            for name, column in self.metrics.items()
        }
        return end - start, {name: values for name, values in samples.items() if values}


class BaselineCache:
    """Components' decoded run series, shared by every investigation over one store.

    Sound while the ``runs`` table is unchanged: :meth:`check` drops everything when a
    newly opened connection sees another row count or time span (the store only ever
    gains runs by ingest); it also learns each component's size there, so call it before
    use. Thread-safe; a component is loaded once, on first use.
    """

    def __init__(self, max_runs: int = MAX_CACHED_RUNS) -> None:
        self.max_runs = max_runs
        self._lock = threading.Lock()
        self._fingerprint: tuple[Any, ...] | None = None
        self._generation = 0  # bumped when the series are dropped
        self._series: dict[str, _Series] = {}
        self._sizes: dict[str, int] = {}  # each component's runs with metrics
        self._cached_runs = 0
        self._loading: dict[str, threading.Lock] = {}

    def check(self, con: duckdb.DuckDBPyConnection) -> None:
        """Forget every series if ``con`` sees a different ``runs`` table than before."""
        row = con.execute(FINGERPRINT_SQL).fetchone()
        fingerprint = tuple(row) if row else None
        with self._lock:
            if fingerprint == self._fingerprint:
                return
        sizes = dict(con.execute(SIZES_SQL).fetchall())
        with self._lock:
            self._series.clear()
            self._sizes = sizes
            self._cached_runs = 0
            self._fingerprint = fingerprint
            self._generation += 1

    def series(self, con: duckdb.DuckDBPyConnection, component_id: str) -> _Series | None:
        """The component's series, loaded on first use; None (ask the store) when holding
        it would take the cache past ``max_runs`` runs."""
        with self._lock:
            found = self._series.get(component_id)
            loading = self._loading.setdefault(component_id, threading.Lock())
        if found is not None:
            return found
        with loading:  # one thread loads a component; the others wait, then find it
            with self._lock:
                found = self._series.get(component_id)
                size = self._sizes.get(component_id, 0)
                if found is not None or self._cached_runs + size > self.max_runs:
                    return found
                self._cached_runs += size
                generation = self._generation
            try:
                found = _Series.load(con, component_id)
            except BaseException:
                with self._lock:
                    self._cached_runs -= size if generation == self._generation else 0
                raise
            with self._lock:
                if generation == self._generation:  # not dropped meanwhile
                    self._series[component_id] = found
            return found


_CACHE: ContextVar[BaselineCache | None] = ContextVar("forest_baseline_cache", default=None)


@contextmanager
def baseline_cache(cache: BaselineCache | None) -> Iterator[None]:
    """Within the block, baselines come from ``cache`` (None: from the store each time)."""
    token = _CACHE.set(cache)
    try:
        yield
    finally:
        _CACHE.reset(token)


def _metric_baselines(
    con: duckdb.DuckDBPyConnection, runs: list[dict[str, Any]]
) -> list[tuple[int, dict[str, list[float]]]]:
    """For each run, (sample size, numeric metric values) of its component's recent runs:
    from the baseline cache when one is lent and holds the component, else from the store
    (one scan serves every run asked about: the sweep asks for a whole lineage)."""
    windows = [
        (
            r["component_id"],
            to_db(r["started_at"] - dt.timedelta(hours=24)),
            to_db(r["started_at"] - dt.timedelta(hours=1)),
        )
        for r in runs
    ]
    out: list[tuple[int, dict[str, list[float]]] | None] = [None] * len(runs)
    cache = _CACHE.get()
    if cache is not None:
        for i, (component, lo, hi) in enumerate(windows):
            series = cache.series(con, component)
            if series is not None:
                out[i] = series.baseline(lo, hi)
    todo = [i for i, found in enumerate(out) if found is None]
    for i, found in zip(todo, _scan_baselines(con, [windows[i] for i in todo]), strict=True):
        out[i] = found
    return [found for found in out if found is not None]


def _scan_baselines(
    con: duckdb.DuckDBPyConnection, windows: list[tuple[str, dt.datetime, dt.datetime]]
) -> list[tuple[int, dict[str, list[float]]]]:
    """``_metric_baselines`` from the store, for (component, lo, hi) windows."""
    if not windows:
        return []
    counts = [0] * len(windows)
    samples: list[dict[str, list[float]]] = [{} for _ in windows]
    if len(windows) == 1:  # decoding one sample in Python beats json_each
        rows = con.execute(SAMPLE_ONE, [*windows[0], BASELINE_SAMPLE]).fetchall()
        for _, metrics in rows:
            for name, value in _numbers(metrics).items():
                samples[0].setdefault(name, []).append(value)
        counts[0] = len(rows)
    else:  # many: DuckDB extracts the numbers, off the GIL
        components, starts, ends = (list(column) for column in zip(*windows, strict=True))
        params = [list(range(len(windows))), components, starts, ends, BASELINE_SAMPLE]
        for i, key, n, values in con.execute(BASELINES_SQL, params).fetchall():
            if key is None:
                counts[i] = n
            else:
                samples[i][key] = values
    return list(zip(counts, samples, strict=True))


def _numbers(metrics: Any) -> dict[str, float]:
    """The JSON numbers of a metrics object (no booleans, strings, nulls or non-objects)."""
    return {k: float(v) for k, v in _json_object(metrics).items() if _numeric(v)}


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
