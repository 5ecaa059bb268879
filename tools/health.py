"""Device (camera/sensor) health around a moment, against the device's own history.

The reference of a metric is, in order: the device's nominal spec (fps, resolution), the
same time of day on previous days (a seasonal reference: an outdoor camera's ordinary
day/night swing is not a fault), or, when fewer than two previous days have samples at
that time of day, the median of the trailing 24 h (against which a value the device
already showed in the older half of those 24 h is ordinary). A deviation shared at the
same moment by the site's other devices of the same kind whose usual level of the metric
is like this device's (weather, dusk, a site-wide setting) is reported as ``minor``: it is
the site's, not this device's.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import duckdb
from pydantic import Field

from tools import signals
from tools.base import Flag, ToolArgs, ToolResult, jsonable, relative_to
from tools.store.connection import fetch_dicts
from tools.store.timestamps import UtcTimestamp, from_db, to_db

__all__ = ["GetDeviceHealthArgs", "get_device_health"]

FACTS_SQL = "SELECT * FROM device_facts WHERE device_id = ?"
# per (device, metric): the median and sample count in [lo, hi), for the device or its peers
BASELINE_SQL = """
    SELECT device_id, metric, median(value) AS baseline, count(*) AS n FROM device_health
    WHERE list_contains(?::VARCHAR[], device_id) AND ts >= ? AND ts < ? GROUP BY ALL"""
WINDOW_SQL = """
    SELECT metric, ts, value FROM device_health
    WHERE device_id = ? AND ts >= ? AND ts <= ? ORDER BY metric, ts LIMIT ?"""
MAX_WINDOW_SAMPLES = 50_000
BASELINE_SPAN = dt.timedelta(hours=24)
# The seasonal reference: per previous day d (1..SEASON_DAYS), the median of the samples
# within SEASON_HALF of the same time of day; the reference is the median of those daily
# medians and a value within SEASON_K scaled MADs of them is ordinary for that hour.
SEASON_DAYS = 7
SEASON_HALF = dt.timedelta(minutes=30)
SEASON_MIN_DAYS = 2
SEASON_K = 3.0
SEASONAL_SQL = """
    SELECT device_id, metric,
           CAST(floor((epoch(?::TIMESTAMP) - epoch(ts) + ?) / 86400) AS INTEGER) AS day,
           median(value) AS m
    FROM device_health
    WHERE list_contains(?::VARCHAR[], device_id) AND ts >= ? AND ts < ?
      AND CAST(floor(epoch(?::TIMESTAMP) - epoch(ts) + ?) AS BIGINT) % 86400 <= ?
    GROUP BY ALL"""
# Peers: the site's other devices of the same kind, their value just before the moment.
MAX_PEERS = 8
# a peer is in the device's regime for a metric when its usual level lies within this share
# of the device's own (an indoor camera's 8 ms exposure is not an outdoor one's 40 ms)
PEER_ALIKE = 0.5
# Without a seasonal reference, a value the device itself showed in the older half of the
# trailing 24 h (at least ORDINARY_SHARE of its samples there at or beyond it) is ordinary,
# as for run metrics: with under two days of history a daily cycle cannot be told from a
# fault that way, and a fault that began inside the last 12 h still fills only the newer half.
ORDINARY_SHARE = 0.02
SHARE_SQL = """
    SELECT count(*), count(*) FILTER (WHERE value >= ?), count(*) FILTER (WHERE value <= ?)
    FROM device_health WHERE device_id = ? AND metric = ? AND ts >= ? AND ts < ?"""
PEERS_SQL = """
    SELECT * FROM device_facts WHERE site_id = ? AND kind IS NOT DISTINCT FROM ?
      AND device_id <> ? ORDER BY device_id LIMIT ?"""
PEERS_NOW_SQL = """
    SELECT device_id, metric, median(value) AS m FROM device_health
    WHERE list_contains(?::VARCHAR[], device_id) AND ts >= ? AND ts <= ? GROUP BY ALL"""
PRE_CAPTURE = dt.timedelta(minutes=15)
SERIES_POINTS = 12
# normal samples tolerated inside an anomalous stretch when walking back to its onset
ONSET_GAP = 2
# metrics the contract does not name are judged by their relative change from reference
OTHER_MAJOR = 0.5
OTHER_MINOR = 0.25

Direction = Literal["low", "high"]
Severity = Literal["minor", "major"]


class GetDeviceHealthArgs(ToolArgs):
    """Health metrics of one camera or sensor around a moment (usually the output's
    capture time): focus_score, exposure, fps, dropped_frames, resolution_h, bitrate_kbps
    and any other metric the device reports (battery, heartbeat, signal strength: out of
    line beyond a 50% change), each against the device's nominal spec, else the same time
    of day on up to 7 previous days, else its median over the preceding 24 h. Flags
    health.<metric>.low/high with the onset time and whether it began before or after the
    capture; a deviation the site's other devices of the same kind share at that moment is
    minor. Use it for every camera/sensor node of a lineage."""

    device_id: str = Field(description="camera or sensor id (its lineage node id)")
    at: UtcTimestamp = Field(description="moment to examine, ISO-8601 UTC (the capture time)")
    window_minutes: int = Field(
        default=60, ge=5, le=360, description="minutes either side of `at` to examine"
    )


@dataclass(frozen=True)
class _Reference:
    value: float
    source: str  # nominal | seasonal | baseline
    tolerance: float = 0.0  # |value - reference| within it is ordinary (seasonal only)
    days: int = 0


def _reference(
    metric: str, baseline: float | None, facts: dict[str, Any], daily: dict[int, float]
) -> _Reference | None:
    nominal = {"fps": "nominal_fps", "resolution_h": "nominal_resolution_h"}.get(metric)
    if nominal and facts.get(nominal):
        return _Reference(float(facts[nominal]), "nominal")
    if len(daily) >= SEASON_MIN_DAYS:
        values = list(daily.values())
        centre = statistics.median(values)
        mad = statistics.median(abs(v - centre) for v in values)
        return _Reference(centre, "seasonal", SEASON_K * 1.4826 * mad, len(values))
    return _Reference(baseline, "baseline") if baseline is not None else None


def _daily_medians(
    con: duckdb.DuckDBPyConnection, devices: list[str], at: dt.datetime
) -> dict[tuple[str, str], dict[int, float]]:
    """(device, metric) -> {days back: median within SEASON_HALF of the same time of day}."""
    half = SEASON_HALF.total_seconds()
    lo, hi = (
        at - dt.timedelta(days=SEASON_DAYS) - SEASON_HALF,
        at - dt.timedelta(days=1) + SEASON_HALF,
    )
    rows = con.execute(
        SEASONAL_SQL,
        [to_db(at), half, devices, to_db(lo), to_db(hi), to_db(at), half, 2 * half],
    ).fetchall()
    out: dict[tuple[str, str], dict[int, float]] = {}
    for device, metric, day, median in rows:
        if 1 <= day <= SEASON_DAYS:
            out.setdefault((device, metric), {})[day] = float(median)
    return out


def _alike(peer: _Reference, own: _Reference | None) -> bool:
    """Whether a peer's usual level of a metric is like the device's: within both
    references' tolerances or PEER_ALIKE of the device's own level."""
    if own is None:
        return False
    band = max(own.tolerance, peer.tolerance, PEER_ALIKE * abs(own.value))
    return abs(peer.value - own.value) <= band


def _judge(metric: str, value: float, ref: _Reference) -> tuple[Direction, Severity] | None:
    """``_classify`` against a reference, ordinary within the reference's tolerance."""
    if abs(value - ref.value) <= ref.tolerance:
        return None
    return _classify(metric, value, ref.value)


def _classify(metric: str, value: float, ref: float) -> tuple[Direction, Severity] | None:
    """The spec's thresholds for each health metric; None when the value is normal."""
    if metric == "focus_score":
        return _below(value, ref, 0.6, 0.85)
    if metric == "exposure":
        dev = (value - ref) / abs(ref) if ref else 0.0
        direction: Direction = "high" if dev > 0 else "low"
        if abs(dev) > 0.4:
            return direction, "major"
        return (direction, "minor") if abs(dev) > 0.2 else None
    if metric == "fps":
        return _below(value, ref, 0.7, 0.9)
    if metric == "dropped_frames":
        if value > max(5.0, 5 * ref):
            return "high", "major"
        return ("high", "minor") if value > max(2.0, 2 * ref) else None
    if metric == "resolution_h":
        return ("low", "major") if value < 0.9 * ref else None
    if metric == "bitrate_kbps":
        return _below(value, ref, 0.5, 0.75)
    # any other metric (a tag's battery, a sensor's heartbeat gap or signal strength): a
    # change of half its reference either way is out of line, a quarter unusual
    dev = (value - ref) / abs(ref) if ref else (1.0 if value else 0.0)
    direction = "high" if dev > 0 else "low"
    if abs(dev) > OTHER_MAJOR:
        return direction, "major"
    return (direction, "minor") if abs(dev) > OTHER_MINOR else None


def _below(
    value: float, ref: float, major: float, minor: float
) -> tuple[Direction, Severity] | None:
    if value < major * ref:
        return "low", "major"
    return ("low", "minor") if value < minor * ref else None


def _onset(
    samples: list[tuple[dt.datetime, float]], anomalous: Callable[[float], bool]
) -> dt.datetime:
    """Start of the anomalous stretch that reaches the last sample, allowing short gaps."""
    onset, gap = samples[-1][0], 0
    for ts, value in reversed(samples):
        if anomalous(value):
            onset, gap = ts, 0
        else:
            gap += 1
            if gap > ONSET_GAP:
                break
    return onset


def _after_capture(
    samples: list[tuple[dt.datetime, float]], anomalous: Callable[[float], bool]
) -> list[tuple[dt.datetime, float]]:
    """The first stretch of at least two consecutive anomalous samples, if any."""
    stretch: list[tuple[dt.datetime, float]] = []
    for ts, value in samples:
        if anomalous(value):
            stretch.append((ts, value))
        elif len(stretch) >= 2:
            break
        else:
            stretch = []
    return stretch if len(stretch) >= 2 else []


def _series(
    samples: list[tuple[dt.datetime, float]], start: dt.datetime, bucket: dt.timedelta
) -> list[list[Any]]:
    """Median per bucket: a compact picture of the window for the reader."""
    buckets: dict[int, list[float]] = {}
    for ts, value in samples:
        buckets.setdefault(int((ts - start) / bucket), []).append(value)
    return [[start + i * bucket, statistics.median(v)] for i, v in sorted(buckets.items())]


def _evaluate(
    device: str,
    metric: str,
    samples: list[tuple[dt.datetime, float]],
    ref: _Reference,
    at: dt.datetime,
) -> tuple[float | None, Flag | None]:
    before = [s for s in samples if s[0] <= at]
    pre = [s for s in before if s[0] >= at - PRE_CAPTURE] or before[-3:]
    pre_value = statistics.median(v for _, v in pre) if pre else None
    found = _judge(metric, pre_value, ref) if pre_value is not None else None
    if found is not None and pre_value is not None:
        direction, severity, measured = found[0], found[1], pre_value
        onset = _onset(before, _predicate(metric, ref, direction))
    else:
        stretch = _after_capture([s for s in samples if s[0] > at], _predicate(metric, ref))
        if not stretch:
            return pre_value, None
        measured = statistics.median(v for _, v in stretch)
        found = _judge(metric, measured, ref) or _judge(metric, stretch[0][1], ref)
        if found is None:
            return pre_value, None
        direction, severity, onset = found[0], found[1], stretch[0][0]
    return pre_value, Flag(
        node=device,
        signal=signals.health(metric, direction),
        severity=severity,
        at=jsonable(onset),
        relative=relative_to(onset, at),
        detail=f"{metric} {measured:g} vs {ref.source} reference {ref.value:g} "
        f"(onset {jsonable(onset)})",
    )


def _predicate(
    metric: str, ref: _Reference, direction: str | None = None
) -> Callable[[float], bool]:
    """Whether a sample is anomalous (in ``direction`` when given)."""

    def anomalous(value: float) -> bool:
        found = _judge(metric, value, ref)
        return found is not None and direction in (None, found[0])

    return anomalous


def _seen_before(
    con: duckdb.DuckDBPyConnection,
    device: str,
    metric: str,
    flag: Flag,
    ref: _Reference,
    value: float,
    at: dt.datetime,
) -> dict[str, int] | None:
    """For a flag against the plain 24 h median: how many samples of the older half of
    that window are at or beyond ``value`` on the flag's side, when that is at least
    ``ORDINARY_SHARE`` of them (the value is then ordinary for this device); else None."""
    if ref.source != "baseline" or flag.relative != "before_capture":
        return None
    older = (at - BASELINE_SPAN, at - BASELINE_SPAN / 2)
    row = con.execute(
        SHARE_SQL, [value, value, device, metric, to_db(older[0]), to_db(older[1])]
    ).fetchone()
    n, high, low = row or (0, 0, 0)
    reached = high if flag.signal.endswith(".high") else low
    if not n or reached < ORDINARY_SHARE * n:
        return None
    return {"reached": reached, "of": n}


def _peer_shares(
    con: duckdb.DuckDBPyConnection,
    facts: dict[str, Any],
    at: dt.datetime,
    flags: dict[str, Flag],
    refs: dict[str, _Reference],
) -> dict[str, tuple[int, int]]:
    """For each flagged metric, (peers deviating the same way, peers with a reference) among
    the site's other devices of the same kind whose usual level of that metric is like the
    device's own (``refs``), just before ``at``. A peer in another regime — an indoor camera
    beside an outdoor one — does not see the daylight the device sees, so it says nothing
    about whether a change is the scene's or the device's."""
    if not flags or not facts.get("site_id"):
        return {}
    peers = fetch_dicts(
        con, PEERS_SQL, [facts["site_id"], facts.get("kind"), facts["device_id"], MAX_PEERS]
    )
    if not peers:
        return {}
    ids = [p["device_id"] for p in peers]
    now = con.execute(PEERS_NOW_SQL, [ids, to_db(at - PRE_CAPTURE), to_db(at)]).fetchall()
    daily = _daily_medians(con, ids, at)
    trailing = {
        (r["device_id"], r["metric"]): r["baseline"]
        for r in fetch_dicts(
            con,
            BASELINE_SQL,
            [ids, to_db(at - BASELINE_SPAN), to_db(at - PRE_CAPTURE)],
        )
    }
    peer_facts = {p["device_id"]: p for p in peers}
    out: dict[str, tuple[int, int]] = {}
    for device, metric, value in now:
        flag = flags.get(metric)
        if flag is None:
            continue
        ref = _reference(
            metric,
            trailing.get((device, metric)),
            peer_facts[device],
            daily.get((device, metric), {}),
        )
        if ref is None or not _alike(ref, refs.get(metric)):
            continue
        same, seen = out.get(metric, (0, 0))
        found = _judge(metric, float(value), ref)
        shared = found is not None and flag.signal == signals.health(metric, found[0])
        out[metric] = (same + int(shared), seen + 1)
    return out


def get_device_health(con: duckdb.DuckDBPyConnection, args: GetDeviceHealthArgs) -> ToolResult:
    tool, device = "get_device_health", args.device_id
    window = dt.timedelta(minutes=args.window_minutes)
    facts_rows = fetch_dicts(con, FACTS_SQL, [device])
    facts = facts_rows[0] if facts_rows else {}
    lo, hi = args.at - window, args.at + window
    rows = con.execute(WINDOW_SQL, [device, to_db(lo), to_db(hi), MAX_WINDOW_SAMPLES]).fetchall()
    if not rows:
        known = "" if facts else " (device unknown to device_facts)"
        return ToolResult.no_data(
            tool,
            f"no health samples for device '{device}' in {jsonable(lo)}..{jsonable(hi)}{known}",
            data={"device": facts or None},
        )
    baselines = {
        r["metric"]: r
        for r in fetch_dicts(
            con, BASELINE_SQL, [[device], to_db(args.at - BASELINE_SPAN), to_db(lo)]
        )
    }
    daily = _daily_medians(con, [device], args.at)
    by_metric: dict[str, list[tuple[dt.datetime, float]]] = {}
    for metric, ts, value in rows:
        by_metric.setdefault(metric, []).append((from_db(ts), float(value)))
    bucket = window * 2 / SERIES_POINTS
    metrics, flags, refs = [], {}, {}
    for metric, samples in by_metric.items():
        base = baselines.get(metric, {})
        ref = _reference(metric, base.get("baseline"), facts, daily.get((device, metric), {}))
        if ref is not None:
            refs[metric] = ref
        pre_value, flag, usual = None, None, None
        if ref is not None:
            pre_value, flag = _evaluate(device, metric, samples, ref, args.at)
        if flag is not None and ref is not None and pre_value is not None:
            usual = _seen_before(con, device, metric, flag, ref, pre_value, args.at)
            flag = None if usual else flag
        if flag is not None:
            flags[metric] = flag
        values = [v for _, v in samples]
        metrics.append(
            {
                "metric": metric,
                "baseline": base.get("baseline"),
                "baseline_n": base.get("n", 0),
                "reference": ref.value if ref else None,
                "reference_source": ref.source if ref else "none",
                "reference_tolerance": ref.tolerance if ref else None,
                "reference_days": ref.days if ref else 0,
                "pre_capture": pre_value,
                # out of line with the 24 h median but ordinary for this device: so many
                # samples 24-12 h before already reached it
                **({"seen_before": usual} if usual else {}),
                "window": {
                    "n": len(values),
                    "min": min(values),
                    "median": statistics.median(values),
                    "max": max(values),
                },
                "series": _series(samples, lo, bucket),
            }
        )
    shares = _peer_shares(con, {**facts, "device_id": device}, args.at, flags, refs)
    for metric, (same, seen) in shares.items():
        entry = next(m for m in metrics if m["metric"] == metric)
        shared = bool(seen and 2 * same >= seen and same >= min(seen, 2))
        entry["peers"] = {"deviating_alike": same, "compared": seen, "shared": shared}
        if shared:
            flag = flags[metric]
            flags[metric] = flag.model_copy(
                update={
                    "severity": "minor",
                    "detail": f"{flag.detail}; shared by {same} of {seen} peer devices at the "
                    "site at that moment",
                }
            )
    data = {
        "device": facts or None,
        "at": args.at,
        "window_minutes": args.window_minutes,
        "metrics": metrics,
    }
    return ToolResult.ok(tool, data, flags=list(flags.values()))
