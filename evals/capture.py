"""``forest record-incident``: cut the slice of a store one incident needs into a case folder.

The slice holds exactly the rows the evidence tools read for that evaluation — its output
and lineage, the baselines they compare against (the same components' runs in the 24 h
before, the same device's health and inputs at that time of day on previous days and
those of its peers at the site, the evaluator's history and its pool), the scope chain's
config versions and the model registry rows — so investigating the slice gives the verdict
the full store gave. Runs of other outputs keep only what baselines and version history
read (params only inside the baseline window; metrics inside it, and for a component
released in the window, on either side of its release for the release comparison). The
expectation comes from, in order: the latest human override (``from_override``), the
simulator's truth file beside a demo store, or the latest verdict in the store.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from agent.schemas import Evaluation
from evals.incident import (
    CASE_FILE,
    SLICE_DIR,
    Expected,
    Incident,
    IncidentProvenance,
    failure_classes,
    load_case,
)
from evals.truth import truth_path
from tools.changes import RELEASE_LOOKBACK
from tools.drift import HISTORY_DAYS
from tools.errors import InputError, NotFoundError, StoreError
from tools.health import SEASON_DAYS, SEASON_HALF
from tools.store.connection import open_readonly
from tools.store.contract import SORT_KEYS

__all__ = ["SLICE_QUERIES", "record_incident"]

# Windows the sweep's tools query (see tools/*.py); the slice covers each with its margin.
LOG_BEFORE, LOG_AFTER = dt.timedelta(hours=2), dt.timedelta(minutes=10)
RUN_BASELINE = dt.timedelta(hours=24)
CHANGES_WINDOW = dt.timedelta(hours=72 + 1)
HEALTH_BEFORE, HEALTH_AFTER = dt.timedelta(hours=24), dt.timedelta(minutes=60)
SEASON_BEFORE = dt.timedelta(days=SEASON_DAYS) + SEASON_HALF

DRIFT_WINDOW, DRIFT_SLACK = dt.timedelta(hours=6), dt.timedelta(minutes=1)

_PARQUET = "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 19)"
# lineage components that ran more than one version for the device's outputs in the window
RELEASED_SQL = """
    SELECT r.component_id FROM runs r JOIN outputs o ON o.output_id = r.output_id
    WHERE list_contains(?, r.component_id) AND o.device_id = ?
      AND r.started_at >= ? AND r.started_at <= ?
    GROUP BY r.component_id HAVING count(DISTINCT r.version) > 1 ORDER BY 1"""
_ORDER = {"runs": ("component_id", "started_at", "run_id")}  # similar metrics side by side
_SAME_DEVICE = """output_id IN (SELECT output_id FROM outputs WHERE device_id = $device
    AND captured_at >= $changes_since AND captured_at <= $horizon)"""

_PEER = """device_id IN (SELECT p.device_id FROM device_facts p JOIN device_facts d
    ON p.site_id = d.site_id AND p.kind IS NOT DISTINCT FROM d.kind
    WHERE list_contains($devices, d.device_id))"""

SLICE_QUERIES: dict[str, str] = {
    # the output, the same device's recent ones, and those the baseline runs served (the
    # run baselines are conditioned on the decision a run's output got)
    "outputs": f"""
        SELECT * FROM outputs WHERE output_id = $output OR {_SAME_DEVICE}
           OR output_id IN (SELECT output_id FROM runs
                            WHERE list_contains($components, component_id)
                              AND started_at >= $baseline_since
                              AND started_at <= $baseline_until)""",
    "runs": f"""
        SELECT run_id, output_id, component_id, kind, version, started_at, ended_at, status,
               CASE WHEN output_id = $output OR started_at >= $baseline_since
                    THEN params END AS params,
               CASE WHEN output_id = $output OR started_at >= $baseline_since
                         OR list_contains($released, component_id)
                    THEN metrics END AS metrics
        FROM runs
        WHERE output_id = $output
           OR (list_contains($components, component_id)
               AND ((started_at >= $baseline_since AND started_at <= $baseline_until)
                    OR (started_at >= $changes_since AND started_at <= $horizon
                        AND {_SAME_DEVICE})))
           -- a released component's runs on either side of its release, every device
           -- (the release comparison of get_component_changes reads them)
           OR (list_contains($released, component_id)
               AND started_at >= $release_from AND started_at <= $horizon)""",
    "lineage_edges": "SELECT * FROM lineage_edges WHERE output_id = $output",
    "logs": """
        SELECT * FROM logs WHERE ts >= $log_from AND ts <= $log_to
          AND (list_contains($run_ids, run_id)
               OR (run_id IS NULL AND list_contains($components, component_id)))""",
    "config_versions": """
        SELECT * FROM config_versions
        WHERE (scope = 'device' AND scope_id = $device) OR (scope = 'site' AND scope_id = $site)
           OR (scope = 'tenant' AND scope_id = $tenant) OR (scope = 'global' AND scope_id = '*')""",
    # the devices' own window and the same time of day on previous days, for them and
    # for their peers (the site's other devices, which the health tool compares with)
    "device_health": f"""
        SELECT * FROM device_health
        WHERE (list_contains($devices, device_id) AND ts >= $health_from AND ts <= $health_to)
           OR ((list_contains($devices, device_id) OR {_PEER})
               AND ts >= $season_from AND ts <= $health_to
               AND CAST(floor(epoch($capture::TIMESTAMP) - epoch(ts) + $season_half) AS BIGINT)
                   % 86400 <= 2 * $season_half)
           OR ({_PEER} AND ts >= $health_from AND ts <= $health_to)""",
    "device_facts": f"""
        SELECT * FROM device_facts WHERE list_contains($devices, device_id) OR {_PEER}""",
    "evaluations": """
        SELECT * FROM evaluations WHERE output_id = $output OR evaluation_id = $ev
           OR evaluation_id IN (SELECT evaluation_id FROM evaluator_history
                                WHERE adjudicated_at < $created)""",
    # the evaluator's record and the pool's (other evaluators' records before this one)
    "evaluator_history": """
        SELECT * FROM evaluator_history
        WHERE source_id = $source OR adjudicated_at < $created""",
    "models": "SELECT * FROM models WHERE model_id = $model",
    "feature_baselines": "SELECT * FROM feature_baselines WHERE model_id = $model",
    # the window before capture and the same hours on previous days (the device's own
    # reference for drift)
    "input_features": """
        SELECT * FROM input_features WHERE device_id = $device
          AND ((ts >= $drift_from AND ts <= $drift_to)
               OR (ts >= $history_from AND ts < $history_to
                   AND CAST(floor(epoch($capture::TIMESTAMP) - epoch(ts)) AS BIGINT) % 86400
                       <= $history_span))""",
}


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> dict[str, Any] | None:
    cur = con.execute(sql, params)
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None


def _all(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _parameters(con: duckdb.DuckDBPyConnection, evaluation: dict[str, Any]) -> dict[str, Any]:
    output = _one(con, "SELECT * FROM outputs WHERE output_id = ?", [evaluation["output_id"]])
    if output is None:
        raise NotFoundError(f"output {evaluation['output_id']!r} of the evaluation is not stored")
    runs = _all(con, "SELECT * FROM runs WHERE output_id = ?", [output["output_id"]])
    if not runs:
        raise NotFoundError(f"output {output['output_id']!r} has no lineage runs to record")
    capture = output["captured_at"]
    starts = [r["started_at"] for r in runs]
    ends = [r["ended_at"] or r["started_at"] for r in runs]
    horizon = max([capture, *ends])
    sensors = {r["component_id"] for r in runs if r["kind"] == "sensor"}
    components = sorted({r["component_id"] for r in runs})
    released = [
        row[0]
        for row in con.execute(
            RELEASED_SQL,
            [components, output["device_id"], capture - CHANGES_WINDOW, horizon],
        ).fetchall()
    ]
    return {
        "output": output["output_id"],
        "ev": evaluation["evaluation_id"],
        "source": evaluation["source_id"],
        "created": evaluation["created_at"],
        "device": output["device_id"],
        "site": output["site_id"],
        "tenant": output["tenant_id"],
        "model": output["model_id"],
        "devices": sorted(sensors | {output["device_id"]}),
        "components": components,
        "released": released,
        "release_from": capture - CHANGES_WINDOW - RELEASE_LOOKBACK,
        "run_ids": sorted(r["run_id"] for r in runs),
        "horizon": horizon,
        "changes_since": capture - CHANGES_WINDOW,
        "baseline_since": min(starts) - RUN_BASELINE,
        "baseline_until": max(starts),
        "log_from": min(capture - LOG_BEFORE, min(starts) - LOG_AFTER),
        "log_to": max(capture + LOG_AFTER, horizon + LOG_AFTER),
        "capture": capture,
        "season_from": capture - SEASON_BEFORE,
        "season_half": SEASON_HALF.total_seconds(),
        "health_from": capture - HEALTH_BEFORE,
        "health_to": capture + HEALTH_AFTER,
        "history_from": capture - DRIFT_WINDOW - dt.timedelta(days=HISTORY_DAYS),
        "history_to": capture - dt.timedelta(days=1),
        "history_span": DRIFT_WINDOW.total_seconds(),
        "drift_from": capture - DRIFT_WINDOW - DRIFT_SLACK,
        "drift_to": capture + DRIFT_SLACK,
    }


def _write_slice(con: duckdb.DuckDBPyConnection, params: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for table, sql in SLICE_QUERIES.items():
        names = set(re.findall(r"\$(\w+)", sql))
        order = ", ".join(_ORDER.get(table, SORT_KEYS[table]))
        query = f"SELECT * FROM ({sql}) ORDER BY {order}"
        values = {n: params[n] for n in names} | {"path": str(out / f"{table}.parquet")}
        con.execute(f"COPY ({query}) TO $path {_PARQUET}", values)


def _expected_from_truth(row: dict[str, Any]) -> tuple[Expected, list[str]]:
    tags = list(row.get("tags", []))
    expected = Expected(
        category=row["category"],
        failing_node=row["failing_node"],
        acceptable_causal_paths=[row["causal_path"]] if row.get("causal_path") else [],
        action=row["action"],
        route_to_training=row["route_to_training"],
        abstain_ok=row["category"] == "inconclusive" or bool({"hard", "multi_fault"} & set(tags)),
    )
    return expected, tags


def _expected_from_override(con: duckdb.DuckDBPyConnection, ev: str) -> tuple[Expected, list[str]]:
    row = _one(
        con, "SELECT * FROM overrides WHERE evaluation_id = ? ORDER BY created_at DESC", [ev]
    )
    if row is None:
        raise NotFoundError(f"evaluation {ev!r} has no override; record it without --from-override")
    verdict = _one(con, "SELECT verdict FROM verdicts WHERE verdict_id = ?", [row["verdict_id"]])
    paths: list[list[str]] = []
    if verdict is not None:
        old = json.loads(verdict["verdict"])
        if old.get("failing_node") == row["failing_node"] and old.get("causal_path"):
            paths = [old["causal_path"]]
    expected = Expected(
        category=row["category"],
        failing_node=row["failing_node"],
        acceptable_causal_paths=paths,
        action=row["action"],
        route_to_training=row["category"] == "model_error",
        abstain_ok=row["category"] == "inconclusive",
    )
    return expected, ["medium", row["category"], "from_override"]


def _expected_from_verdict(con: duckdb.DuckDBPyConnection, ev: str) -> tuple[Expected, list[str]]:
    sql = "SELECT * FROM verdicts WHERE evaluation_id = ? ORDER BY created_at DESC"
    row = _one(con, sql, [ev])
    if row is None:
        raise NotFoundError(
            f"evaluation {ev!r} has no verdict to take as the expectation; investigate it "
            "first (`forest investigate`) or record a human override with --from-override"
        )
    verdict = json.loads(row["verdict"])
    expected = Expected(
        category=row["category"],
        failing_node=row["failing_node"],
        acceptable_causal_paths=[verdict["causal_path"]] if verdict.get("causal_path") else [],
        action=row["action"],
        route_to_training=row["route_to_training"],
        abstain_ok=row["category"] == "inconclusive",
    )
    return expected, ["medium", row["category"]]


def record_incident(
    evaluation_id: str,
    store: str | Path,
    out_dir: str | Path,
    from_override: bool = False,
    *,
    source: str | None = None,
    today: dt.date | None = None,
) -> Path:
    """Write ``out_dir/case.json`` and ``out_dir/slice/`` for one evaluation; return out_dir."""
    store, out = Path(store), Path(out_dir)
    open_readonly(store).close()  # proves it is a Forest store before anything is written
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty; choose a new folder for the incident")
    con = duckdb.connect(str(store), read_only=True, config={"autoload_known_extensions": False})
    try:
        evaluation = _one(con, "SELECT * FROM evaluations WHERE evaluation_id = ?", [evaluation_id])
        if evaluation is None:
            raise NotFoundError(f"evaluation {evaluation_id!r} not found in {store}")
        params = _parameters(con, evaluation)
        truth = truth_path(store)
        if from_override:
            expected, tags = _expected_from_override(con, evaluation_id)
            origin = f"override in {store.name}"
        elif truth.is_file():
            expected, tags = _expected_from_truth(_truth_row(truth, evaluation_id))
            origin = f"demo world {store.name}"
        else:
            expected, tags = _expected_from_verdict(con, evaluation_id)
            origin = f"verdict in {store.name}"
        incident = Incident(
            evaluation=Evaluation.model_validate(evaluation),
            expected=expected,
            tags=tags,
            provenance=IncidentProvenance(
                source=source or origin, date=today or dt.datetime.now(dt.UTC).date()
            ),
        )
        try:
            _write_slice(con, params, out / SLICE_DIR)
        except duckdb.Error as exc:
            shutil.rmtree(out, ignore_errors=True)
            raise StoreError(f"cannot write the slice to {out}: {exc}") from exc
    finally:
        con.close()
    (out / CASE_FILE).write_text(incident.model_dump_json(indent=2) + "\n", encoding="utf-8")
    load_case(out)  # what was written must load
    return out


def _truth_row(path: Path, evaluation_id: str) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip() and (row := json.loads(line))["evaluation_id"] == evaluation_id:
                return row
    raise NotFoundError(f"evaluation {evaluation_id!r} has no row in {path}")


# The demo worlds the recorded suite is cut from, and cases per (world, failure class).
DEMO_WORLDS = ((7, "small", 2), (11, "small", 1), (23, "small", 1), (5, "medium", 1))
MULTI_FAULT_PER_WORLD = 2


def _pick(rows: list[dict[str, Any]], per_class: int) -> list[dict[str, Any]]:
    """Multi-fault cases first, then the first ``per_class`` cases of each failure class
    by evaluation id: a fixed rule, blind to how any reasoner does on them."""
    picked = [r for r in rows if "multi_fault" in r["tags"]][:MULTI_FAULT_PER_WORLD]
    taken: dict[str, int] = {}
    for row in rows:
        cls = failure_classes(row["tags"])[0]
        if taken.get(cls, 0) < per_class and row not in picked:
            picked.append(row)
            taken[cls] = taken.get(cls, 0) + 1
    return sorted(picked, key=lambda r: (failure_classes(r["tags"])[0], r["evaluation_id"]))


def record_demo_suite(out_root: Path, workdir: Path, *, first_number: int = 1) -> list[Path]:
    """Build each demo world in ``workdir`` and cut its picked incidents into ``out_root``."""
    from evals.worlds import build_demo

    written, number = [], first_number
    for seed, size, per_class in DEMO_WORLDS:
        store = workdir / f"demo-s{seed}-{size}.duckdb"
        build_demo(store, seed=seed, size=size)
        with truth_path(store).open(encoding="utf-8") as fh:
            rows = sorted(map(json.loads, filter(str.strip, fh)), key=lambda r: r["evaluation_id"])
        for row in _pick(rows, per_class):
            slug = failure_classes(row["tags"])[0]
            name = f"{number:03d}_{slug}_s{seed}{size[0]}_{row['evaluation_id'].split('-')[-1]}"
            source = f"demo world seed={seed} size={size} {row['evaluation_id']}"
            written.append(
                record_incident(row["evaluation_id"], store, out_root / name, source=source)
            )
            number += 1
    return written


if __name__ == "__main__":  # python -m evals.capture OUT_ROOT: re-cut the demo incidents
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        for path in record_demo_suite(Path(sys.argv[1]), Path(tmp)):
            print(path)
