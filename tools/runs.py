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
import math
import statistics
import threading
from collections import Counter
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

# the runs asked about, with the decision their output got (what a baseline is conditioned
# on; taken out of the run before it is reported)
RUNS_BY_ID_SQL = """
    SELECT r.*, o.decision AS _served FROM runs r LEFT JOIN outputs o USING (output_id)
    WHERE list_contains(?::VARCHAR[], r.run_id)"""
# Each run's baseline: its component's runs in the 24 h before it, newest first, at most
# BASELINE_SAMPLE of them (bounded so the lookup stays cheap on a large store). SAMPLE_ONE
# finds one run's (a filtered scan); SAMPLE_MANY any number's in one scan of runs.
BASELINE_SAMPLE = 500  # ample for a median/MAD
SAMPLE_ONE = """
    SELECT 0 AS i, r.metrics FROM runs r LEFT JOIN outputs o USING (output_id)
    WHERE r.component_id = ? AND r.started_at >= ? AND r.started_at <= ?
      AND (?::VARCHAR IS NULL OR o.decision = ?::VARCHAR) AND r.metrics IS NOT NULL
    ORDER BY r.started_at DESC, r.run_id LIMIT ?"""
SAMPLE_MANY = """
    WITH wanted AS (
        SELECT unnest(?::INTEGER[]) AS i, unnest(?::VARCHAR[]) AS component_id,
               unnest(?::TIMESTAMP[]) AS lo, unnest(?::TIMESTAMP[]) AS hi,
               unnest(?::VARCHAR[]) AS decision
    )
    SELECT w.i, r.started_at, r.run_id, r.metrics
    FROM runs r JOIN wanted w
      ON r.component_id = w.component_id AND r.started_at >= w.lo AND r.started_at <= w.hi
    LEFT JOIN outputs o ON o.output_id = r.output_id
    WHERE r.metrics IS NOT NULL AND (w.decision IS NULL OR o.decision = w.decision)
    QUALIFY row_number() OVER (PARTITION BY w.i ORDER BY r.started_at DESC, r.run_id) <= ?"""
# Per run asked about: its sample's size (key NULL), and each metric's numeric values (JSON
# numbers only, as _numeric keeps in Python: no booleans, strings or nulls). Extracting
# them here rather than with json.loads frees ~18 ms of GIL per investigation's sweep.
BASELINES_SQL = f"""
    WITH sample AS MATERIALIZED ({SAMPLE_MANY})
    SELECT i, NULL AS key, count(*) AS n, NULL::DOUBLE[] AS vals FROM sample GROUP BY i
    UNION ALL
    SELECT s.i, e.key, NULL,
           list(TRY_CAST(e.value AS DOUBLE) ORDER BY s.started_at, s.run_id DESC)
    FROM sample s, json_each(s.metrics) e
    WHERE json_type(s.metrics) = 'OBJECT' AND e.type IN ('BIGINT', 'UBIGINT', 'DOUBLE')
    GROUP BY s.i, e.key"""
BASELINE_MIN_RUNS = 5
# A component's whole series in the order that makes every baseline window a contiguous
# slice whose last BASELINE_SAMPLE rows are SAMPLE_ONE's (started_at DESC, run_id ASC).
SERIES_SQL = """
    SELECT r.started_at, r.metrics, o.decision FROM runs r LEFT JOIN outputs o USING (output_id)
    WHERE r.component_id = ? AND r.metrics IS NOT NULL
    ORDER BY r.started_at, r.run_id DESC"""
# A run's baseline is conditioned on what it served: runs whose output got the same
# decision (a rare alert's scores are not a regression against mostly quiet frames). With
# fewer than CONDITIONED_MIN such runs the baseline is the component's runs, pooled.
CONDITIONED_MIN = 10
# A value that the older half of the reference already shows in at least this share of
# runs is ordinary for the component (zero-inflated counters, bimodal scores), however far
# it lies from the median. Only the older half counts: a fault that began inside the
# window fills its newer end with the faulty values.
ORDINARY_SHARE = 0.02
FINGERPRINT_SQL = "SELECT count(*), max(started_at), min(started_at) FROM runs"
SIZES_SQL = "SELECT component_id, count(*) FROM runs WHERE metrics IS NOT NULL GROUP BY ALL"
MAX_CACHED_RUNS = 5_000_000  # ~1 GB of decoded series at most
# A component released (its version changed) in the RELEASE_WINDOW before a run is compared
# with what came before: its reference ends at the last run of another version (the known
# change point), so a regression the release brought is not absorbed by its own runs.
RELEASE_WINDOW = dt.timedelta(hours=72)
RELEASES_SQL = """
    WITH wanted AS (
        SELECT unnest(?::INTEGER[]) AS i, unnest(?::VARCHAR[]) AS component_id,
               unnest(?::TIMESTAMP[]) AS lo, unnest(?::TIMESTAMP[]) AS hi,
               unnest(?::VARCHAR[]) AS version
    )
    SELECT w.i, max(r.started_at)
    FROM runs r JOIN wanted w
      ON r.component_id = w.component_id AND r.started_at >= w.lo AND r.started_at < w.hi
    WHERE r.version IS DISTINCT FROM w.version AND r.metrics IS NOT NULL
    GROUP BY w.i"""
# The params the same component's latest runs before each run used (param.changed).
PARAMS_SAMPLE = 50
PARAMS_MIN_RUNS = 5
PARAMS_USUAL = 0.8  # share of recent runs that must agree for a value to be "the usual"
PARAMS_MANY = """
    WITH wanted AS (
        SELECT unnest(?::INTEGER[]) AS i, unnest(?::VARCHAR[]) AS component_id,
               unnest(?::TIMESTAMP[]) AS lo, unnest(?::TIMESTAMP[]) AS hi
    )
    SELECT w.i, r.params
    FROM runs r JOIN wanted w
      ON r.component_id = w.component_id AND r.started_at >= w.lo AND r.started_at < w.hi
    WHERE r.params IS NOT NULL AND json_type(r.params) = 'OBJECT'
    QUALIFY row_number() OVER (PARTITION BY w.i ORDER BY r.started_at DESC, r.run_id) <= ?"""


class GetRunArgs(ToolArgs):
    """One component run: status, version, the params it actually used and its metrics,
    each numeric metric compared with the median/MAD of the same component's runs in the
    24 h before it, or, when the component was released in the 72 h before, the 24 h up to
    its last run of the previous version (counters as counts; a value that 2% of the
    older half of those runs reach is ordinary, not a change), and its params with those
    of the component's latest runs (flags run.metric.<name> when a metric deviates,
    param.changed when a param differs from the usual value or is new or gone, run.status
    when the run was not ok). Use it to check whether a lineage node behaved normally for
    this output."""

    run_id: str = Field(description="id of the run (the run_id of a lineage node)")


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Series:
    """One component's runs with metrics, oldest first: start times, and per metric the
    numeric values aligned with them (None where a run lacks a number for it)."""

    starts: list[dt.datetime]
    metrics: dict[str, list[float | None]]
    decisions: list[str | None]

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, component_id: str) -> _Series:
        rows = con.execute(SERIES_SQL, [component_id]).fetchall()
        metrics: dict[str, list[float | None]] = {}
        for i, (_, raw, _) in enumerate(rows):
            for name, value in _numbers(raw).items():
                column = metrics.get(name)
                if column is None:
                    column = metrics[name] = [None] * len(rows)
                column[i] = value
        return cls([r[0] for r in rows], metrics, [r[2] for r in rows])

    def baseline(
        self, lo: dt.datetime, hi: dt.datetime, decision: str | None = None
    ) -> tuple[int, dict[str, list[float]]]:
        """SAMPLE_ONE's (row count, numeric values per metric, oldest first) for [lo, hi]
        (only runs whose output got ``decision``, when given)."""
        end = bisect.bisect_right(self.starts, hi)
        first = bisect.bisect_left(self.starts, lo)
        rows: list[int] | range
        if decision is None:
            rows = range(max(first, end - BASELINE_SAMPLE), end)
        else:
            rows = [j for j in range(first, end) if self.decisions[j] == decision]
            rows = rows[-BASELINE_SAMPLE:]
        if not rows:
            return 0, {}
        samples = {
            name: [v for v in (column[j] for j in rows) if v is not None]
            for name, column in self.metrics.items()
        }
        return len(rows), {name: values for name, values in samples.items() if values}


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
    con: duckdb.DuckDBPyConnection,
    runs: list[dict[str, Any]],
    releases: list[dt.datetime | None],
) -> list[tuple[int, dict[str, list[float]]]]:
    """For each run, (sample size, numeric metric values) of its component's recent runs
    that served the same decision (pooled when too few did): from the baseline cache when
    one is lent and holds the component, else from the store (one scan serves every run
    asked about: the sweep asks for a whole lineage)."""
    windows = []
    for r, released in zip(runs, releases, strict=True):
        # up to the run itself, or up to the last run before the component's release
        end = released or r["started_at"] - dt.timedelta(microseconds=1)
        windows.append(
            (r["component_id"], to_db(end - dt.timedelta(hours=24)), to_db(end), r["_served"])
        )
    found = _baselines(con, windows)
    pooled = [i for i, (n, _) in enumerate(found) if n < CONDITIONED_MIN and windows[i][3]]
    again = _baselines(con, [(*windows[i][:3], None) for i in pooled])
    for i, sample in zip(pooled, again, strict=True):
        found[i] = sample
    return found


def _baselines(
    con: duckdb.DuckDBPyConnection, windows: list[tuple[str, dt.datetime, dt.datetime, str | None]]
) -> list[tuple[int, dict[str, list[float]]]]:
    out: list[tuple[int, dict[str, list[float]]] | None] = [None] * len(windows)
    cache = _CACHE.get()
    if cache is not None:
        for i, (component, lo, hi, decision) in enumerate(windows):
            series = cache.series(con, component)
            if series is not None:
                out[i] = series.baseline(lo, hi, decision)
    todo = [i for i, found in enumerate(out) if found is None]
    for i, found in zip(todo, _scan_baselines(con, [windows[i] for i in todo]), strict=True):
        out[i] = found
    return [found for found in out if found is not None]


def _scan_baselines(
    con: duckdb.DuckDBPyConnection,
    windows: list[tuple[str, dt.datetime, dt.datetime, str | None]],
) -> list[tuple[int, dict[str, list[float]]]]:
    """``_metric_baselines`` from the store, for (component, lo, hi, decision) windows."""
    if not windows:
        return []
    counts = [0] * len(windows)
    samples: list[dict[str, list[float]]] = [{} for _ in windows]
    if len(windows) == 1:  # decoding one sample in Python beats json_each
        component, lo, hi, decision = windows[0]
        rows = con.execute(
            SAMPLE_ONE, [component, lo, hi, decision, decision, BASELINE_SAMPLE]
        ).fetchall()
        for _, metrics in reversed(rows):  # oldest first
            for name, value in _numbers(metrics).items():
                samples[0].setdefault(name, []).append(value)
        counts[0] = len(rows)
    else:  # many: DuckDB extracts the numbers, off the GIL
        components, starts, ends, decisions = (
            list(column) for column in zip(*windows, strict=True)
        )
        params = [list(range(len(windows))), components, starts, ends, decisions, BASELINE_SAMPLE]
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


def _integral(values: list[float]) -> bool:
    return all(float(v).is_integer() for v in values)


def _metric_flag(
    name: str, value: float, sample: list[float], node: str, at: str
) -> tuple[dict[str, Any], Flag | None]:
    median = statistics.median(sample)
    mad = statistics.median(abs(x - median) for x in sample)
    deviation = abs(value - median)
    counter = _integral([value, *sample])
    summary: dict[str, Any] = {"value": value, "median": median, "mad": mad, "n": len(sample)}
    # A counter (events seen, retries, id switches) is a count, not a measurement with
    # noise-free history: a constant history (MAD 0) still allows Poisson-sized changes.
    spread = max(1.4826 * mad, math.sqrt(max(abs(median), 1.0))) if counter else 1.4826 * mad
    severity: Severity | None = None
    if deviation > max(4 * spread, 0.25 * abs(median)):
        severity = "major"
    elif deviation > max(3 * spread, 0.10 * abs(median)):
        severity = "minor"
    if severity is not None:
        older = sample[: len(sample) // 2]
        beyond = [x for x in older if (x >= value if value > median else x <= value)]
        summary["ordinary_share"] = round(len(beyond) / len(older), 4) if older else None
        if older and len(beyond) >= ORDINARY_SHARE * len(older):
            severity = None  # the older runs show such values often enough: not a change
    if severity is None:
        return summary, None
    kind = "count " if counter else ""
    detail = (
        f"{name}={value:g} vs {kind}median {median:g} (MAD {mad:g}, n={len(sample)}) of recent runs"
    )
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
    changes = _releases(con, found)
    released = dict(zip((r["run_id"] for r in found), changes, strict=True))
    samples = _metric_baselines(con, found, changes)
    baselines = dict(zip((r["run_id"] for r in found), samples, strict=True))
    for run in found:
        del run["_served"]
    recent = dict(zip((r["run_id"] for r in found), _recent_params(con, found), strict=True))
    return [
        _run_result(dict(rows[a.run_id]), baselines[a.run_id], recent[a.run_id], released[a.run_id])
        if a.run_id in rows
        else ToolResult.no_data("get_run", f"no run with run_id '{a.run_id}'")
        for a in many
    ]


def _releases(
    con: duckdb.DuckDBPyConnection, runs: list[dict[str, Any]]
) -> list[dt.datetime | None]:
    """For each run, when its component's last run of another version started, if that
    was within RELEASE_WINDOW before it (None: no release in the window)."""
    out: list[dt.datetime | None] = [None] * len(runs)
    known = [(i, r) for i, r in enumerate(runs) if r.get("version") is not None]
    if not known:
        return out
    params = [
        [i for i, _ in known],
        [r["component_id"] for _, r in known],
        [to_db(r["started_at"] - RELEASE_WINDOW) for _, r in known],
        [to_db(r["started_at"]) for _, r in known],
        [r["version"] for _, r in known],
    ]
    for i, last in con.execute(RELEASES_SQL, params).fetchall():
        out[i] = from_db(last)
    return out


def _recent_params(
    con: duckdb.DuckDBPyConnection, runs: list[dict[str, Any]]
) -> list[list[dict[str, Any]]]:
    """For each run, the params of its component's latest runs in the 24 h before it."""
    out: list[list[dict[str, Any]]] = [[] for _ in runs]
    if not runs:
        return out
    params = [
        list(range(len(runs))),
        [r["component_id"] for r in runs],
        [to_db(r["started_at"] - dt.timedelta(hours=24)) for r in runs],
        [to_db(r["started_at"]) for r in runs],
        PARAMS_SAMPLE,
    ]
    for i, raw in con.execute(PARAMS_MANY, params).fetchall():
        out[i].append(_json_object(raw))
    return out


def _param_flags(
    node: str, at: str, used: dict[str, Any], recent: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[Flag]]:
    """The run's params against the usual values of the component's latest runs."""
    summary: dict[str, Any] = {"runs": len(recent), "differs": {}}
    if len(recent) < PARAMS_MIN_RUNS:
        return summary, []
    flags = []
    for key in sorted(set(used) | {k for p in recent for k in p}):
        seen = [json.dumps(p[key], sort_keys=True) for p in recent if key in p]
        usual, count = max(Counter(seen).items(), key=lambda t: (t[1], t[0]), default=("", 0))
        mine = json.dumps(used[key], sort_keys=True) if key in used else None
        if mine is not None and not seen:
            what = f"{key}={mine} is new (absent from {len(recent)} recent runs)"
        elif mine is None and len(seen) >= PARAMS_USUAL * len(recent):
            what = f"{key} is gone (usually {usual}, in {len(seen)} of {len(recent)} recent runs)"
        elif mine is not None and mine != usual and count >= PARAMS_USUAL * len(recent):
            what = f"{key}={mine} differs from the usual {usual} ({count} of {len(recent)} runs)"
        else:
            continue
        summary["differs"][key] = {
            "used": used.get(key),
            "usual": json.loads(usual) if seen else None,
        }
        flags.append(
            Flag(
                node=node,
                signal=signals.PARAM_CHANGED,
                severity="minor",
                at=at,
                relative="before_capture",
                detail=what,
            )
        )
    return summary, flags


def _run_result(
    run: dict[str, Any],
    baseline: tuple[int, dict[str, list[float]]],
    recent_params: list[dict[str, Any]],
    released: dt.datetime | None = None,
) -> ToolResult:
    (n_runs, samples), node = baseline, run["component_id"]
    at = jsonable(run["started_at"])
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
        "window": "same component's runs started in the 24h before this run"
        if released is None
        else "same component's runs in the 24h up to its last run of another version, at "
        f"{jsonable(released)} (released since)",
        "runs": n_runs,
        "metrics": comparison,
    }
    params = run.get("params")
    used: dict[str, Any] = params if isinstance(params, dict) else {}
    run["baseline"]["params"], param_flags = _param_flags(node, at, used, recent_params)
    flags += param_flags
    return ToolResult.ok("get_run", run, flags=flags)
