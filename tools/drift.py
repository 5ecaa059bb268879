"""Whether an output's model input, and the device's recent inputs, match the model's baseline."""

from __future__ import annotations

import bisect
import datetime as dt
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
OWN_SLACK = dt.timedelta(minutes=1)
PSI_EPSILON = 1e-4
PSI_MIN_SAMPLES = 20
OOD_TAIL = 0.01


class GetInputDriftArgs(ToolArgs):
    """Compare an output's model input features with the baseline of the model version
    that scored it: per feature the output's own value, its baseline bin and that bin's
    share, and the tail share (baseline mass at or beyond it on its side), plus the
    population stability index (PSI) of the same device's inputs in the window before
    capture. Flags input.out_of_distribution (tail < 1%) and input.drift (PSI > 0.1
    minor, > 0.25 major). Use it to tell edge cases and distribution shift from faults."""

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


def _feature(
    base: dict[str, Any], own: float | None, window: list[float]
) -> tuple[dict[str, Any], float | None]:
    edges, expected = list(base["bin_edges"]), list(base["expected"])
    entry: dict[str, Any] = {"feature": base["feature"], "value": own, "window_n": len(window)}
    if own is not None:
        index = bisect.bisect_right(edges, own)
        entry |= {"bin": index, "bin_share": expected[index], "tail_share": _tail(expected, index)}
    score = None
    if len(window) >= PSI_MIN_SAMPLES:
        counts = [0] * len(expected)
        for value in window:
            counts[bisect.bisect_right(edges, value)] += 1
        score = psi([c / len(window) for c in counts], expected)
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
    node = _model_node(load_runs(con, args.output_id), load_model(con, output))
    features, flags = [], []
    for base in baselines:
        entry, score = _feature(base, own.get(base["feature"]), window.get(base["feature"], []))
        features.append(entry)
        flags += _flags(node, entry, score, capture, since)
    data = {"output_id": args.output_id, "model_id": model_id, "model_version": version,
            "window_start": since, "captured_at": capture, "features": features}  # fmt: skip
    return ToolResult.ok(tool, data, flags=flags)


def _flags(
    node: str | None,
    entry: dict[str, Any],
    score: float | None,
    capture: dt.datetime,
    since: dt.datetime,
) -> list[Flag]:
    flags = []
    name = entry["feature"]
    if entry.get("tail_share") is not None and entry["tail_share"] < OOD_TAIL:
        flags.append(
            Flag(
                node=node,
                signal=signals.INPUT_OOD,
                severity="major",
                at=jsonable(capture),
                relative="before_capture",
                detail=f"{name}={entry['value']:g} lies where the baseline has "
                f"{entry['tail_share']:.2%} of inputs at or beyond it",
            )
        )
    if score is not None and score > 0.1:
        flags.append(
            Flag(
                node=node,
                signal=signals.INPUT_DRIFT,
                severity="major" if score > 0.25 else "minor",
                at=jsonable(since),
                relative="before_capture",
                detail=f"{name}: PSI {score:.3f} over {entry['window_n']} inputs of the device "
                "in the window vs the model baseline",
            )
        )
    return flags
