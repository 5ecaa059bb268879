"""Which versions each lineage component ran in the days before an output, and what changed."""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from typing import Any

import duckdb
from pydantic import Field

from tools import signals
from tools.base import Flag, ToolArgs, ToolResult, jsonable, relative_to
from tools.store.connection import fetch_dicts
from tools.store.loaders import decision_time, load_model, load_output, load_runs
from tools.store.timestamps import from_db, to_db

__all__ = ["GetComponentChangesArgs", "get_component_changes"]

# Only runs for outputs of the same device count: a canary of another version on another
# camera is not a change in what this output's pipeline ran (it raised false flags).
VERSIONS_SQL = """
    SELECT r.component_id, r.version, count(*) AS runs,
           min(r.started_at) AS first_seen, max(r.started_at) AS last_seen
    FROM runs r JOIN outputs o ON o.output_id = r.output_id
    WHERE r.started_at >= ? AND r.started_at <= ? AND o.device_id = ?
      AND o.captured_at >= ? AND o.captured_at <= ?
      AND list_contains(?::VARCHAR[], r.component_id)
    GROUP BY r.component_id, r.version
    ORDER BY r.component_id, first_seen"""


_SLACK = dt.timedelta(hours=1)  # runs start shortly after their output's capture

# The runs of a released component on either side of its release, for the before/after
# comparison of what it measures (every device: a release changes the component fleet-wide).
RELEASE_RUNS_SQL = """
    (SELECT version, started_at, metrics FROM runs
     WHERE component_id = ? AND version = ? AND started_at >= ? AND started_at <= ?
     ORDER BY started_at DESC LIMIT 2000)
    UNION ALL
    (SELECT version, started_at, metrics FROM runs
     WHERE component_id = ? AND version = ? AND started_at >= ? AND started_at < ?
     ORDER BY started_at DESC LIMIT 2000)"""
# whether the device's outputs ran the version in force before the version it replaced
# (in the 30 days before that one was first seen): a return to an earlier version
RAN_BEFORE_SQL = """
    SELECT count(*) > 0 FROM runs r JOIN outputs o ON o.output_id = r.output_id
    WHERE r.component_id = ? AND r.version = ? AND o.device_id = ?
      AND r.started_at >= ? AND r.started_at < ?"""
ROLLBACK_LOOKBACK = dt.timedelta(days=30)
RELEASE_LOOKBACK = dt.timedelta(hours=72)  # how far before the release its runs are read
RELEASE_MIN_RUNS = 20  # runs on each side, at matching hours of the day
RELEASE_Z = 5.0  # rank-sum z beyond which the release changed a metric's distribution
RELEASE_SHIFT = 0.1  # ... and moved its median by at least this fraction


class GetComponentChangesArgs(ToolArgs):
    """Software/model versions of every lineage component of an output in the window
    before its capture: the version this output used, the versions seen in runs for
    outputs of the same device in the window (first/last seen, run counts), the model
    registry release time of the model version. Flags version.changed when the version
    in force changed inside the window. Use it to connect a failure to a deploy or model release."""

    output_id: str = Field(description="id of the output")
    window_hours: int = Field(
        default=72, ge=1, le=24 * 30, description="how far before capture to look, in hours"
    )


def _component(
    run: dict[str, Any],
    seen: list[dict[str, Any]],
    model: dict[str, Any] | None,
    since: dt.datetime,
) -> dict[str, Any]:
    current = run["version"]
    mine = next((v for v in seen if v["version"] == current), None)
    first_current = mine["first_seen"] if mine else run["started_at"]
    earlier = [v for v in seen if v["version"] != current and v["first_seen"] < first_current]
    previous = max(earlier, key=lambda v: v["last_seen"]) if earlier else None
    changed_at = first_current if previous else None
    if model is not None and since <= model["released_at"] <= run["started_at"]:
        # the registry knows the release time better than the first run we happen to see
        changed_at = model["released_at"]
    return {
        "node_id": run["component_id"],
        "kind": run["kind"],
        "version": current,
        "changed": changed_at is not None,
        "changed_at": changed_at,
        "previous_version": previous["version"] if previous else None,
        "versions": [
            {k: v[k] for k in ("version", "runs", "first_seen", "last_seen")} for v in seen
        ],
        **({"model": model} if model is not None else {}),
    }


def _rank_z(before: list[float], after: list[float]) -> float:
    """Mann-Whitney rank-sum z of ``after`` against ``before`` (ties averaged, normal
    approximation with the tie correction); positive when ``after`` is larger."""
    pooled = sorted([(v, 0) for v in before] + [(v, 1) for v in after])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    n0, n1 = len(before), len(after)
    n = n0 + n1
    u = sum(r for r, (_, side) in zip(ranks, pooled, strict=True) if side) - n1 * (n1 + 1) / 2
    var = n0 * n1 / 12 * ((n + 1) - ties / (n * (n - 1)))
    return 0.0 if var <= 0 else (u - n0 * n1 / 2) / math.sqrt(var)


def _release_effect(
    con: duckdb.DuckDBPyConnection, entry: dict[str, Any], horizon: dt.datetime
) -> list[dict[str, Any]]:
    """How the runs of the new version differ from the previous version's, metric by
    metric, at the same hours of the day and on the same kind of day (weekday or weekend,
    UTC), so a release at dawn is not compared with the night before it: median before and
    after and the rank-sum z."""
    changed_at = entry["changed_at"]
    node = entry["node_id"]
    rows = con.execute(
        RELEASE_RUNS_SQL,
        [
            *(node, entry["version"], to_db(changed_at), to_db(horizon)),
            *(node, entry["previous_version"], to_db(changed_at - RELEASE_LOOKBACK)),
            to_db(changed_at),
        ],
    ).fetchall()
    # at most 2000 runs a side, the latest; metrics decoded once
    new = [(from_db(at), _numbers(m)) for v, at, m in rows if v == entry["version"]]
    old = [(from_db(at), _numbers(m)) for v, at, m in rows if v != entry["version"]]
    # the same hour of the day and the same kind of day: a release on a Friday night is
    # not compared with the busier weekdays before it
    new_slots = {_slot(at) for at, _ in new}
    old = [(at, m) for at, m in old if _slot(at) in new_slots]
    old_slots = {_slot(at) for at, _ in old}
    new = [(at, m) for at, m in new if _slot(at) in old_slots]
    effects = []
    for name in sorted({k for _, m in new for k in m}):
        after = [m[name] for _, m in new if name in m]
        before = [m[name] for _, m in old if name in m]
        if min(len(after), len(before)) < RELEASE_MIN_RUNS:
            continue
        med0, med1 = statistics.median(before), statistics.median(after)
        effects.append(
            {
                "metric": name,
                "runs_before": len(before),
                "runs_after": len(after),
                "median_before": med0,
                "median_after": med1,
                "z": round(_rank_z(before, after), 2),
            }
        )
    return effects


def _ran_before(con: duckdb.DuckDBPyConnection, entry: dict[str, Any], device: str) -> bool:
    """Whether the version in force is older than the one it replaced: for a model, by the
    registry's release times; else the device's outputs ran it before that one."""
    model = entry.get("model")
    if model is not None:
        row = con.execute(
            "SELECT released_at FROM models WHERE model_id = ? AND version = ?",
            [model["model_id"], entry["previous_version"]],
        ).fetchone()
        if row is not None and row[0] is not None:
            return bool(model["released_at"] < from_db(row[0]))
    first = min(
        (v["first_seen"] for v in entry["versions"] if v["version"] == entry["previous_version"]),
        default=None,
    )
    if first is None:
        return False
    row = con.execute(
        RAN_BEFORE_SQL,
        [
            entry["node_id"],
            entry["version"],
            device,
            to_db(first - ROLLBACK_LOOKBACK),
            to_db(first),
        ],
    ).fetchone()
    return bool(row and row[0])


def _release_check(returned: bool, moved: bool, entry: dict[str, Any]) -> str:
    """What the comparison found. A return to a version the device ran before restores
    behaviour known before (a rollback); otherwise the release changed what it measures,
    changed nothing on enough runs, or is too recent to measure."""
    if returned:
        return "rollback"
    if moved:
        return "changed"
    return "unchanged" if entry["release_effect"] else "unmeasured"


def _slot(at: dt.datetime) -> tuple[int, bool]:
    return at.hour, at.weekday() >= 5


def _numbers(metrics: Any) -> dict[str, float]:
    if isinstance(metrics, str):
        metrics = json.loads(metrics)
    if not isinstance(metrics, dict):
        return {}
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def _changed_behaviour(effect: dict[str, Any]) -> bool:
    med0, med1 = effect["median_before"], effect["median_after"]
    scale = max(abs(med0), abs(med1))
    shift = abs(med1 - med0) / scale if scale else 0.0
    return abs(effect["z"]) >= RELEASE_Z and shift >= RELEASE_SHIFT


def _serves(run: dict[str, Any], model: dict[str, Any] | None) -> bool:
    return (
        model is not None
        and run["kind"] == "model"
        and model["component_id"] in (None, run["component_id"])
    )


def get_component_changes(
    con: duckdb.DuckDBPyConnection, args: GetComponentChangesArgs
) -> ToolResult:
    tool = "get_component_changes"
    output = load_output(con, args.output_id)
    if output is None:
        return ToolResult.no_data(tool, f"no output with output_id '{args.output_id}'")
    runs = load_runs(con, args.output_id)
    if not runs:
        return ToolResult.no_data(tool, f"output '{args.output_id}' has no runs")
    capture = output["captured_at"]
    horizon = decision_time(runs, capture)
    since = capture - dt.timedelta(hours=args.window_hours)
    nodes = sorted({r["component_id"] for r in runs})
    seen: dict[str, list[dict[str, Any]]] = {}
    params = [
        to_db(since),
        to_db(horizon),
        output["device_id"],
        to_db(since - _SLACK),
        to_db(horizon),
        nodes,
    ]
    for row in fetch_dicts(con, VERSIONS_SQL, params):
        row["first_seen"], row["last_seen"] = from_db(row["first_seen"]), from_db(row["last_seen"])
        seen.setdefault(row["component_id"], []).append(row)
    model = load_model(con, output)
    components, flags = [], []
    first_runs: dict[str, dict[str, Any]] = {}
    for run in runs:
        first_runs.setdefault(run["component_id"], run)
    for node, run in first_runs.items():
        served = model if _serves(run, model) else None
        entry = _component(run, seen.get(node, []), served, since)
        components.append(entry)
        if entry["changed"]:
            flags.append(
                Flag(
                    node=entry["node_id"],
                    signal=signals.VERSION_CHANGED,
                    severity="minor",
                    at=jsonable(entry["changed_at"]),
                    relative=relative_to(entry["changed_at"], horizon),
                    detail=f"{entry['node_id']}: {entry['previous_version'] or 'new release'} -> "
                    f"{entry['version']} at {jsonable(entry['changed_at'])}",
                )
            )
        if entry["changed"] and entry["previous_version"]:
            entry["release_effect"] = _release_effect(con, entry, horizon)
            moved = [e for e in entry["release_effect"] if _changed_behaviour(e)]
            returned = _ran_before(con, entry, output["device_id"])
            entry["release_check"] = _release_check(returned, bool(moved), entry)
            if moved and not returned:
                flags.append(
                    Flag(
                        node=entry["node_id"],
                        signal=signals.RELEASE_BEHAVIOUR_CHANGED,
                        severity="major",
                        at=jsonable(entry["changed_at"]),
                        relative=relative_to(entry["changed_at"], horizon),
                        detail=f"{entry['node_id']} {entry['version']} vs "
                        f"{entry['previous_version']} at the same hours: "
                        + "; ".join(
                            f"{e['metric']} median {e['median_before']:g} -> "
                            f"{e['median_after']:g} (rank-sum z {e['z']:+.1f}, "
                            f"{e['runs_before']} vs {e['runs_after']} runs)"
                            for e in moved[:3]
                        ),
                    )
                )
    data = {
        "output_id": args.output_id,
        "since": since,
        "captured_at": capture,
        "components": components,
    }
    return ToolResult.ok(tool, data, flags=flags)
