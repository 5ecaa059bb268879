"""Staging the planned world into temp tables and writing every store table, sorted."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import duckdb

from evals.worlds import pipeline, reference, series
from evals.worlds.cases import Case, Ctx
from evals.worlds.config_plan import SCOPE_RANK
from evals.worlds.staging import load, sql_ts
from evals.worlds.world import CONFIG_KEYS, EDGES, FEATURES

DEV_COLUMNS = (
    "i INTEGER, device_id VARCHAR, tenant_id VARCHAR, site_id VARCHAR, door_id VARCHAR, "
    "focus DOUBLE, exposure DOUBLE, bitrate DOUBLE, firmware VARCHAR"
)
BINS_COLUMNS = "feature VARCHAR, k INTEGER, lo DOUBLE, hi DOUBLE, c0 DOUBLE, c1 DOUBLE"
CFG_COLUMNS = (
    "config_id VARCHAR, key VARCHAR, scope VARCHAR, scope_id VARCHAR, value JSON, "
    "valid_from TIMESTAMP, valid_to TIMESTAMP, author VARCHAR, change_note VARCHAR, "
    "component_id VARCHAR, node INTEGER, rank INTEGER"
)
EP_COLUMNS = "device_id VARCHAR, node INTEGER, t0 TIMESTAMP, t1 TIMESTAMP, version VARCHAR"
HFX_COLUMNS = (
    "device_id VARCHAR, metric VARCHAR, t0 TIMESTAMP, t1 TIMESTAMP, mode VARCHAR, x "
    "DOUBLE, ramp_s DOUBLE"
)
CASE_OUT_COLUMNS = (
    "n BIGINT, device_id VARCHAR, captured_at TIMESTAMP, decision VARCHAR, score DOUBLE"
)
PATCH_COLUMNS = "n BIGINT, node INTEGER, factors JSON, params JSON, status VARCHAR"
CLOG_COLUMNS = (
    "ts TIMESTAMP, n BIGINT, node INTEGER, component_id VARCHAR, level VARCHAR, message "
    "VARCHAR, attributes JSON"
)

SMALL_TABLES = {
    "config_versions": "SELECT config_id, key, scope, scope_id, value, valid_from, valid_to, "
    "author, change_note, component_id FROM s_cfg ORDER BY key, scope, scope_id, valid_from",
    "device_facts": "SELECT * FROM s_facts ORDER BY device_id",
    "models": "SELECT * FROM s_models ORDER BY model_id, released_at",
    "feature_baselines": "SELECT * FROM s_fb ORDER BY model_id, version, feature",
    "evaluations": "SELECT * FROM s_eval ORDER BY evaluation_id",
    "evaluator_history": "SELECT * FROM s_hist ORDER BY source_id, adjudicated_at, evaluation_id",
}


def stage(con: duckdb.DuckDBPyConnection, ctx: Ctx, cases: list[Case], seed: int) -> None:
    n0 = ctx.profile.outputs
    cams = ctx.fleet.cameras
    load(
        con,
        "s_dev",
        DEV_COLUMNS,
        [
            {
                "i": i,
                "device_id": c.device_id,
                "tenant_id": c.tenant_id,
                "site_id": c.site_id,
                "door_id": c.door_id,
                "focus": c.focus,
                "exposure": c.exposure,
                "bitrate": c.bitrate,
                "firmware": c.firmware,
            }
            for i, c in enumerate(cams)
        ],
    )
    load(
        con,
        "s_door",
        "door_id VARCHAR, i INTEGER",
        [{"door_id": d[0], "i": i} for i, d in enumerate(ctx.fleet.doors)],
    )
    _stage_configs(con, ctx)
    _stage_cases(con, cases, n0)
    load(con, "s_nodes", pipeline.NODE_SCHEMA, pipeline.node_rows())
    load(con, "s_edges", "p INTEGER, c INTEGER", [{"p": p, "c": c} for p, c in EDGES])
    load(
        con,
        "s_bins",
        BINS_COLUMNS,
        _bins(),
    )
    reference.stage_reference(con, ctx, cases, seed, n0)


def _stage_configs(con: duckdb.DuckDBPyConnection, ctx: Ctx) -> None:
    items = sorted(ctx.configs.items, key=lambda c: (c.valid_from, c.key, c.scope, c.scope_id))
    load(
        con,
        "s_cfg",
        CFG_COLUMNS,
        [
            {
                "config_id": f"cfg-{i + 1:05d}",
                "key": c.key,
                "scope": c.scope,
                "scope_id": c.scope_id,
                "value": c.value,
                "valid_from": c.valid_from,
                "valid_to": c.valid_to,
                "author": c.author,
                "change_note": c.note or None,
                "component_id": c.component_id,
                "node": CONFIG_KEYS[c.key][0],
                "rank": SCOPE_RANK[c.scope],
            }
            for i, c in enumerate(items)
        ],
    )


def _disjoint(items: list[Any], key: Callable[[Any], tuple[str, ...]]) -> list[Any]:
    """Intervals per key, checked not to overlap (the planner guarantees it; the SQL range
    joins would duplicate rows otherwise)."""
    ordered = sorted(items, key=lambda x: (key(x), x.t0))
    for prev, item in itertools.pairwise(ordered):
        if key(prev) == key(item) and item.t0 < prev.t1:
            raise RuntimeError(f"overlapping simulator intervals on {key(item)}")
    return ordered


def _stage_cases(con: duckdb.DuckDBPyConnection, cases: list[Case], n0: int) -> None:
    eps = _disjoint([e for c in cases for e in c.episodes], lambda e: (e.device_id, str(e.node)))
    load(
        con,
        "s_ep",
        EP_COLUMNS,
        [
            {
                "device_id": e.device_id,
                "node": e.node,
                "t0": e.t0,
                "t1": e.t1,
                "version": e.resolved_version,
            }
            for e in eps
        ],
    )
    fx = _disjoint([h for c in cases for h in c.health], lambda h: (h.device_id, h.metric))
    load(
        con,
        "s_hfx",
        HFX_COLUMNS,
        [
            {
                "device_id": h.device_id,
                "metric": h.metric,
                "t0": h.t0,
                "t1": h.t1,
                "mode": h.mode,
                "x": h.x,
                "ramp_s": h.ramp_s,
            }
            for h in fx
        ],
    )
    load(
        con,
        "s_case_out",
        CASE_OUT_COLUMNS,
        [
            {
                "n": n0 + i,
                "device_id": c.dev.device_id,
                "captured_at": c.capture,
                "decision": c.decision,
                "score": c.score,
            }
            for i, c in enumerate(cases)
        ],
    )
    load(
        con,
        "s_patch",
        PATCH_COLUMNS,
        [
            {
                "n": n0 + i,
                "node": node,
                "factors": {k: round(v, 4) for k, v in p.factors.items()},
                "params": p.params,
                "status": p.status,
            }
            for i, c in enumerate(cases)
            for node, p in sorted(c.patches.items())
        ],
    )
    load(
        con,
        "s_fov",
        "n BIGINT, feature VARCHAR, value DOUBLE",
        [
            {"n": n0 + i, "feature": f, "value": round(v, 4)}
            for i, c in enumerate(cases)
            for f, v in sorted(c.features.items())
        ],
    )
    load(
        con,
        "s_clog",
        CLOG_COLUMNS,
        [
            {
                "ts": line.ts,
                "n": n0 + i,
                "node": line.node,
                "component_id": line.component_id,
                "level": line.level,
                "message": line.text,
                "attributes": None,
            }
            for i, c in enumerate(cases)
            for line in c.logs
        ],
    )


def _bins() -> list[dict[str, Any]]:
    rows = []
    for k, (feature, (edges, shares)) in enumerate(sorted(FEATURES.items())):
        bounds = [0.0, *edges, 1.0]
        cum = 0.0
        for b, share in enumerate(shares):
            rows.append(
                {
                    "feature": feature,
                    "k": k,
                    "lo": bounds[b],
                    "hi": bounds[b + 1],
                    "c0": cum,
                    "c1": 1.0 if b == len(shares) - 1 else cum + share,
                }
            )
            cum += share
    return rows


def write(
    con: duckdb.DuckDBPyConnection, ctx: Ctx, seed: int, report: Callable[[str, float], None]
) -> None:
    p = ctx.profile
    start, end = sql_ts(p.start), sql_ts(ctx.end)
    assert start and end
    report("outputs and lineage", 0.05)
    pipeline.build_outputs(con, seed, p.outputs, start, p.days * 86_400_000)
    pipeline.insert_outputs(con)
    pipeline.insert_runs(con, seed)
    pipeline.insert_edges(con)
    report("logs", 0.3)
    series.insert_logs(con, seed, start, end, p.debug_lines_per_run)
    report("device health", 0.55)
    series.insert_health(con, seed, start, end, p.health_step_s)
    report("input features", 0.8)
    series.insert_features(con, seed, start, end, p.feature_step_s)
    report("configs, models, evaluations", 0.95)
    for table, sql in SMALL_TABLES.items():
        con.execute(f"INSERT INTO {table} BY NAME {sql}")  # optional columns stay NULL
