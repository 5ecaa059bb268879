"""Which versions each lineage component ran in the days before an output, and what changed."""

from __future__ import annotations

import datetime as dt
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
    data = {
        "output_id": args.output_id,
        "since": since,
        "captured_at": capture,
        "components": components,
    }
    return ToolResult.ok(tool, data, flags=flags)
