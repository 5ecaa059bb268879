"""Staging the reference tables: models and baselines, device facts, evaluations, histories."""

from __future__ import annotations

import datetime as dt

import duckdb

from evals.worlds.cases import Case, Ctx
from evals.worlds.reviewers import history_rows
from evals.worlds.staging import load, out_hex
from evals.worlds.world import FEATURES, MODEL_HISTORY, MODEL_ID, NOMINAL_FPS, NOMINAL_RES

MODELS_COLUMNS = (
    "model_id VARCHAR, version VARCHAR, component_id VARCHAR, released_at TIMESTAMP, "
    "recommended_threshold DOUBLE, metrics JSON, notes VARCHAR"
)
FB_COLUMNS = (
    "model_id VARCHAR, version VARCHAR, feature VARCHAR, bin_edges DOUBLE[], expected DOUBLE[]"
)
FACTS_COLUMNS = (
    "device_id VARCHAR, tenant_id VARCHAR, site_id VARCHAR, kind VARCHAR, model VARCHAR, "
    "firmware VARCHAR, install_date DATE, last_maintenance DATE, nominal_fps DOUBLE, "
    "nominal_resolution_h DOUBLE"
)
EVAL_COLUMNS = (
    "evaluation_id VARCHAR, output_id VARCHAR, source_kind VARCHAR, source_id VARCHAR, "
    "claim VARCHAR, comment VARCHAR, created_at TIMESTAMP"
)
HIST_COLUMNS = "source_id VARCHAR, evaluation_id VARCHAR, agreed BOOLEAN, adjudicated_at TIMESTAMP"


def stage_reference(
    con: duckdb.DuckDBPyConnection, ctx: Ctx, cases: list[Case], seed: int, n0: int
) -> None:
    rng = ctx.rng
    models = [(v, at, rec, notes) for v, at, rec, notes in MODEL_HISTORY]
    models += [(m.version, m.released_at, m.recommended, m.notes) for c in cases for m in c.models]
    load(
        con,
        "s_models",
        MODELS_COLUMNS,
        [
            {
                "model_id": MODEL_ID,
                "version": v,
                "component_id": "detector",
                "released_at": at,
                "recommended_threshold": rec,
                "metrics": {
                    "map50": round(rng.uniform(0.68, 0.74), 3),
                    "recall_at_op": round(rng.uniform(0.86, 0.92), 3),
                },
                "notes": notes,
            }
            for v, at, rec, notes in models
        ],
    )
    load(
        con,
        "s_fb",
        FB_COLUMNS,
        [
            {"model_id": MODEL_ID, "version": m[0], "feature": f, "bin_edges": e, "expected": s}
            for m in models
            for f, (e, s) in sorted(FEATURES.items())
        ],
    )
    facts = [
        {
            "device_id": c.device_id,
            "tenant_id": c.tenant_id,
            "site_id": c.site_id,
            "kind": "camera",
            "model": c.model,
            "firmware": c.firmware,
            "install_date": str(dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(600))),
            "last_maintenance": str(dt.date(2026, 3, 1) + dt.timedelta(days=rng.randrange(200))),
            "nominal_fps": NOMINAL_FPS,
            "nominal_resolution_h": NOMINAL_RES,
        }
        for c in ctx.fleet.cameras
    ]
    facts += [
        {
            "device_id": d,
            "tenant_id": t,
            "site_id": s,
            "kind": "door_sensor",
            "model": "DS-200",
            "firmware": "fw-1.1.4",
            "install_date": "2025-02-01",
            "last_maintenance": None,
            "nominal_fps": None,
            "nominal_resolution_h": None,
        }
        for d, t, s in ctx.fleet.doors
    ]
    load(
        con,
        "s_facts",
        FACTS_COLUMNS,
        facts,
    )
    load(
        con,
        "s_eval",
        EVAL_COLUMNS,
        [
            {
                "evaluation_id": f"ev-{i + 1:06d}",
                "output_id": "out-" + out_hex(seed, n0 + i),
                "source_kind": c.evaluator.kind if c.evaluator else "human",
                "source_id": c.evaluator.source_id if c.evaluator else "rev-ana",
                "claim": c.claim,
                "comment": c.comment,
                "created_at": c.created_at,
            }
            for i, c in enumerate(cases)
        ],
    )
    hist = sorted(
        history_rows(ctx.profile, rng), key=lambda r: (r["adjudicated_at"], r["source_id"])
    )
    load(
        con,
        "s_hist",
        HIST_COLUMNS,
        [{**r, "evaluation_id": f"ev-p{i + 1:06d}"} for i, r in enumerate(hist)],
    )
