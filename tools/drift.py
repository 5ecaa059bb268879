"""Whether an output's model input, and the device's recent inputs, match the model's baseline.

A device whose scene always differs from the model's fleet-wide baseline is not drifting:
where the device has enough history at the same time of day on previous days, a window
(or a single input) counts as shifted only when it differs from the model's baseline *and*
from that history of its own.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from typing import Any

import duckdb
from pydantic import Field

from tools import signals
from tools.base import Flag, ToolArgs, ToolResult, jsonable
from tools.store.connection import fetch_dicts
from tools.store.loaders import load_model, load_output, load_runs
from tools.store.timestamps import to_db

__all__ = ["GetInputDriftArgs", "get_input_drift", "psi"]

BASELINES_SQL = """
    SELECT feature, bin_edges, expected FROM feature_baselines
    WHERE model_id = ? AND version = ? ORDER BY feature"""
# input_features is sorted by (device_id, ts): both lookups prune to one device's window
OWN_SQL = """
    SELECT feature, value FROM input_features
    WHERE device_id = ? AND ts >= ? AND ts <= ? AND output_id = ?"""
WINDOW_SQL = """
    SELECT feature, value FROM input_features
    WHERE device_id = ? AND ts >= ? AND ts <= ? LIMIT ?"""
MAX_WINDOW_ROWS = 100_000
# The device's own reference: its inputs in the same hours of the day on previous days.
HISTORY_DAYS = 7
HISTORY_MIN = 40
HISTORY_SQL = """
    SELECT feature, value FROM input_features
    WHERE device_id = ? AND ts >= ? AND ts < ?
      AND CAST(floor(epoch(?::TIMESTAMP) - epoch(ts)) AS BIGINT) % 86400 <= ? LIMIT ?"""
OWN_SLACK = dt.timedelta(minutes=1)
PSI_EPSILON = 1e-4
PSI_MIN_SAMPLES = 20
OOD_TAIL = 0.01
OOD_TAIL_EXTRAPOLATED = 0.001  # one-sided 0.1 %, as Z_CRIT: many features are tested
Z_CRIT = 3.09  # one-sided 0.1 %: many features are tested for every output


class GetInputDriftArgs(ToolArgs):
    """Compare an output's model input features with the baseline of the model version
    that scored it: per feature the output's own value, its baseline bin and that bin's
    share, and the tail share (baseline mass at or beyond it on its side), plus the
    population stability index (PSI) of the same device's inputs in the window before
    capture. Where the device has inputs at the same hours on previous days, both are also
    compared with that history of its own, and the smaller difference counts. A PSI counts
    only beyond the sampling noise its window size gives (a chi-square test at 0.1 % and
    the expected PSI subtracted). Flags input.out_of_distribution (tail < 1%) and
    input.drift (excess PSI > 0.1 minor, > 0.25 major when the device's own history
    differs too; without that history it stays minor).
    Use it to tell edge cases and distribution shift from faults."""

    output_id: str = Field(description="id of the output")
    window_hours: int = Field(
        default=6, ge=1, le=72, description="hours of the device's inputs before capture for PSI"
    )


def psi(actual: list[float], expected: list[float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two share vectors (shares clipped at ``epsilon``)."""
    total = 0.0
    for a, e in zip(actual, expected, strict=True):
        a, e = max(a, epsilon), max(e, epsilon)
        total += (a - e) * math.log(a / e)
    return total


def _tail(expected: list[float], index: int) -> float:
    below = sum(expected[:index])
    if below + expected[index] / 2 < 0.5:
        return below + expected[index]
    return sum(expected[index:])


def outer_tail(edges: list[float], expected: list[float], value: float) -> float | None:
    """Baseline mass beyond a value that lies past the outermost bin edge, extrapolated:
    the outer bin's share decays exponentially beyond its edge, with a scale of 1.5 times
    the median inner bin width (heavier than a normal tail: past the 10th percentile a
    normal tail reaches 0.1 % about 6 inner decile widths out, this one about 7).
    ``None`` inside the edges or without inner bins to measure a width from."""
    widths = sorted(b - a for a, b in itertools.pairwise(edges) if b > a)
    if not widths:
        return None
    scale = 1.5 * widths[len(widths) // 2]
    if value < edges[0]:
        return expected[0] * math.exp(-(edges[0] - value) / scale)
    if value > edges[-1]:
        return expected[-1] * math.exp(-(value - edges[-1]) / scale)
    return None


def chi2_quantile(dof: int, z: float = Z_CRIT) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile at normal deviate ``z``."""
    k = max(dof, 1)
    return float(k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3)


def drift_excess(score: float, bins: int, n: int, m: int | None) -> float:
    """PSI beyond what sampling alone gives, or 0 when the difference is not significant.

    For ``n`` window samples against a reference of ``m`` samples (None: the model's
    baseline, taken as exact), n_eff * PSI is roughly chi-square with bins - 1 degrees of
    freedom under no drift (n_eff = n m / (n + m)), and its expectation is
    (bins - 1) / n_eff: a PSI of 0.4 over 25 inputs in 10 bins is noise."""
    n_eff = n if m is None else n * m / (n + m)
    if n_eff * score <= chi2_quantile(bins - 1):
        return 0.0
    return max(0.0, score - (bins - 1) / n_eff)


def _shares(values: list[float], edges: list[float], bins: int) -> list[float]:
    counts = [0] * bins
    for value in values:
        counts[bisect.bisect_right(edges, value)] += 1
    return [c / len(values) for c in counts]


def _own_tail(history: list[float], value: float) -> float:
    at_or_below = sum(v <= value for v in history) / len(history)
    at_or_above = sum(v >= value for v in history) / len(history)
    return min(at_or_below, at_or_above)


def _feature(
    base: dict[str, Any], own: float | None, window: list[float], history: list[float]
) -> tuple[dict[str, Any], float | None]:
    edges, expected = list(base["bin_edges"]), list(base["expected"])
    entry: dict[str, Any] = {
        "feature": base["feature"],
        "value": own,
        "window_n": len(window),
        "history_n": len(history),
    }
    known = len(history) >= HISTORY_MIN
    if own is not None:
        index = bisect.bisect_right(edges, own)
        entry |= {"bin": index, "bin_share": expected[index], "tail_share": _tail(expected, index)}
        entry["history_tail_share"] = _own_tail(history, own) if known else None
    score = None
    if len(window) >= PSI_MIN_SAMPLES:
        bins, n = len(expected), len(window)
        shares = _shares(window, edges, bins)
        entry["psi_model"] = psi(shares, expected)
        score = entry["drift_model"] = drift_excess(entry["psi_model"], bins, n, None)
        if known:
            entry["psi_history"] = psi(shares, _shares(history, edges, bins))
            entry["drift_history"] = drift_excess(entry["psi_history"], bins, n, len(history))
            score = min(score, entry["drift_history"])
    entry["psi"] = score
    return entry, score


def _model_node(runs: list[dict[str, Any]], model: dict[str, Any] | None) -> str | None:
    if model and model.get("component_id"):
        return str(model["component_id"])
    return next((r["component_id"] for r in runs if r["kind"] == "model"), None)


def get_input_drift(con: duckdb.DuckDBPyConnection, args: GetInputDriftArgs) -> ToolResult:
    tool = "get_input_drift"
    output = load_output(con, args.output_id)
    if output is None:
        return ToolResult.no_data(tool, f"no output with output_id '{args.output_id}'")
    model_id, version = output.get("model_id"), output.get("model_version")
    baselines = fetch_dicts(con, BASELINES_SQL, [model_id, version])
    if not baselines:
        return ToolResult.no_data(
            tool, f"no feature baselines for model '{model_id}' version '{version}'"
        )
    capture, device = output["captured_at"], output["device_id"]
    own_rows = con.execute(
        OWN_SQL, [device, to_db(capture - OWN_SLACK), to_db(capture + OWN_SLACK), args.output_id]
    ).fetchall()
    own = {feature: float(value) for feature, value in own_rows}
    since = capture - dt.timedelta(hours=args.window_hours)
    window: dict[str, list[float]] = {}
    rows = con.execute(WINDOW_SQL, [device, to_db(since), to_db(capture), MAX_WINDOW_ROWS])
    for feature, value in rows.fetchall():
        window.setdefault(feature, []).append(float(value))
    history: dict[str, list[float]] = {}
    span = args.window_hours * 3600
    first = since - dt.timedelta(days=HISTORY_DAYS)
    last = capture - dt.timedelta(days=1)
    hist = [device, to_db(first), to_db(last), to_db(capture), span, MAX_WINDOW_ROWS]
    for feature, value in con.execute(HISTORY_SQL, hist).fetchall():
        history.setdefault(feature, []).append(float(value))
    node = _model_node(load_runs(con, args.output_id), load_model(con, output))
    features, flags = [], []
    for base in baselines:
        name = base["feature"]
        entry, score = _feature(base, own.get(name), window.get(name, []), history.get(name, []))
        features.append(entry)
        beyond = None
        if entry["value"] is not None:
            beyond = outer_tail(list(base["bin_edges"]), list(base["expected"]), entry["value"])
        flags += _flags(node, entry, score, capture, since, beyond)
    data = {"output_id": args.output_id, "model_id": model_id, "model_version": version,
            "window_start": since, "captured_at": capture, "features": features}  # fmt: skip
    return ToolResult.ok(tool, data, flags=flags)


def _flags(
    node: str | None,
    entry: dict[str, Any],
    score: float | None,
    capture: dt.datetime,
    since: dt.datetime,
    beyond: float | None = None,
) -> list[Flag]:
    flags = []
    name = entry["feature"]
    own_tail = entry.get("history_tail_share")
    tail = entry.get("tail_share")
    # past the outermost edge the outer bin's share overstates the tail: extrapolate it,
    # and since an extrapolation is a model of the tail, hold it to the strict 0.1 %
    extrapolated = (
        tail is not None
        and tail >= OOD_TAIL
        and beyond is not None
        and beyond < OOD_TAIL_EXTRAPOLATED
    )
    if extrapolated:
        tail = beyond
    if tail is not None and tail < OOD_TAIL and (own_tail is None or own_tail < OOD_TAIL):
        flags.append(
            Flag(
                node=node,
                signal=signals.INPUT_OOD,
                severity="major",
                at=jsonable(capture),
                relative="before_capture",
                detail=f"{name}={entry['value']:g} lies where the baseline has "
                f"{tail:.2%} of inputs at or beyond it"
                + (" (extrapolated past its outermost bin edge)" if extrapolated else ""),
            )
        )
    if score is not None and score > 0.1:
        flags.append(
            Flag(
                node=node,
                signal=signals.INPUT_DRIFT,
                # without the device's own history a window unlike the model's baseline
                # may be how this device always looks: unusual, not shown to be a shift
                severity="major" if score > 0.25 and "psi_history" in entry else "minor",
                at=jsonable(since),
                relative="before_capture",
                detail=f"{name}: PSI {entry['psi_model']:.3f} over {entry['window_n']} inputs of "
                f"the device in the window vs the model baseline ({score:.3f} beyond sampling "
                "noise"
                + (", also vs the device's own history)" if "psi_history" in entry else ")"),
            )
        )
    return flags
