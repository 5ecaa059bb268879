"""SQL for the big time series: device health, input features and logs.

Health is a per-device grid with bounded hash noise plus the cases' effects (joined as
ranges). Input features use a golden-ratio sequence per device, so any few-hour window
matches the baseline closely (PSI stays near zero) unless a case moves it.
"""

from __future__ import annotations

import duckdb

from evals.worlds.pipeline import _u

HEALTH_BASE = {
    "focus_score": "d.focus * (1 + 0.06 * ({u} - 0.5))",
    "exposure": "d.exposure * (1 + 0.08 * ({u} - 0.5))",
    "fps": "15.0 * (1 - 0.02 * {u})",
    "dropped_frames": "floor({u} * 3)",
    "resolution_h": "1080.0",
    "bitrate_kbps": "d.bitrate * (1 + 0.08 * ({u} - 0.5))",
}
DOOR_BASE = {"battery_pct": "96 - 0.4 * {day} + 2 * {u}", "rssi_dbm": "-61 + 4 * ({u} - 0.5)"}


def _case(exprs: dict[str, str], **values: str) -> str:
    whens = " ".join(f"WHEN '{k}' THEN {v.format(**values)}" for k, v in exprs.items())
    return f"CASE m.metric {whens} END"


def insert_health(
    con: duckdb.DuckDBPyConnection, seed: int, start: str, end: str, step_s: int
) -> None:
    # Effects are joined as ranges; the planner guarantees they never overlap per metric.
    con.execute(
        f"""
        INSERT INTO device_health
        WITH base AS (
            SELECT d.device_id, g.ts, m.metric,
                   {_case(HEALTH_BASE, u=_u(seed, "d.i", "epoch_ms(g.ts)", "m.k"))} AS v,
                   {_u(seed, "d.i", "epoch_ms(g.ts)", "17")} AS w
            FROM s_dev d
            CROSS JOIN range(TIMESTAMP '{start}', TIMESTAMP '{end}', INTERVAL {step_s} SECOND)
                 g(ts)
            CROSS JOIN (SELECT unnest(?::VARCHAR[]) AS metric,
                               generate_subscripts(?::VARCHAR[], 1) AS k) m
        )
        SELECT b.device_id, b.ts, b.metric, round(CASE e.mode
                WHEN 'mul' THEN b.v * e.x
                WHEN 'set' THEN e.x * (1 + 0.1 * (b.w - 0.5))
                WHEN 'ramp' THEN b.v * (1 - (1 - e.x)
                                  * least(1.0, epoch(b.ts - e.t0) / e.ramp_s))
                ELSE b.v END, 3)
        FROM base b
        LEFT JOIN s_hfx e ON e.device_id = b.device_id AND e.metric = b.metric
             AND b.ts >= e.t0 AND b.ts < e.t1
        UNION ALL
        SELECT s.door_id, g.ts, m.metric, round({_door(seed, start)}, 2)
        FROM (SELECT DISTINCT door_id, i FROM s_door) s
        CROSS JOIN range(TIMESTAMP '{start}', TIMESTAMP '{end}', INTERVAL 10 MINUTE) g(ts)
        CROSS JOIN (SELECT unnest(['battery_pct', 'rssi_dbm']) AS metric,
                           generate_subscripts(['battery_pct', 'rssi_dbm'], 1) AS mk) m
        ORDER BY 1, 2, 3
    """,
        [list(HEALTH_BASE), list(HEALTH_BASE)],
    )


def _door(seed: int, start: str) -> str:
    day = f"(epoch(g.ts - TIMESTAMP '{start}') / 86400)"
    return _case(DOOR_BASE, u=_u(seed, "s.i", "epoch_ms(g.ts)", "m.mk"), day=day)


def insert_features(
    con: duckdb.DuckDBPyConnection, seed: int, start: str, end: str, step_s: int
) -> None:
    """Sampled monitoring frames per camera plus every output's own model input."""
    con.execute(f"""
        INSERT INTO input_features
        WITH samples AS (
            SELECT 'frm-' || d.device_id || '-' || strftime(g.ts, '%Y%m%d%H%M%S') AS output_id,
                   d.device_id, g.ts, f.feature,
                   ((epoch(g.ts) / {step_s}) * 0.6180339887498949 + d.i * 0.1234567
                     + f.k * 0.377) % 1 AS u
            FROM s_dev d
            CROSS JOIN range(TIMESTAMP '{start}', TIMESTAMP '{end}', INTERVAL {step_s} SECOND)
                 g(ts)
            CROSS JOIN (SELECT DISTINCT feature, k FROM s_bins) f
        ), own AS (
            SELECT 'out-' || o.hex AS output_id, o.device_id, o.captured_at AS ts, f.feature,
                   0.01 + 0.98 * ((o.n * 0.7548776662466927 + f.k * 0.5698402909980532) % 1) AS u,
                   v.value AS fixed
            FROM s_out o CROSS JOIN (SELECT DISTINCT feature, k FROM s_bins) f
            LEFT JOIN s_fov v ON v.n = o.n AND v.feature = f.feature
        ), drawn AS (
            SELECT output_id, device_id, ts, feature, u, NULL::DOUBLE AS fixed FROM samples
            UNION ALL SELECT * FROM own
        )
        SELECT x.output_id, x.device_id, x.ts, x.feature,
               round(coalesce(x.fixed, b.lo + (x.u - b.c0) / (b.c1 - b.c0) * (b.hi - b.lo)), 4)
        FROM drawn x JOIN s_bins b ON b.feature = x.feature AND x.u >= b.c0 AND x.u < b.c1
        ORDER BY 2, 3, 1, 4
    """)


RUN_LOG_TEMPLATES = {
    "sensor": ["frame %s captured", "trigger %s sampled", "sensor event %s emitted"],
    "capture": ["clip assembled for %s", "fetched input for %s", "capture step ok (%s)"],
    "transform": ["normalised frame for %s", "resize+gamma done (%s)", "preprocessed %s"],
    "model": ["inference complete for %s", "detector pass done: %s", "scored %s"],
    "tracker": ["tracks updated for %s", "association done (%s)", "tracker step %s"],
    "fusion": ["fused camera+door evidence for %s", "fusion window closed (%s)"],
    "threshold": ["threshold applied to %s", "score compared for %s"],
    "policy": ["policy evaluated for %s", "rules resolved for %s", "policy decision made (%s)"],
    "sink": ["decision recorded for %s", "alert pipeline finished %s", "sink ack for %s"],
}
BENIGN_WARN = {
    "tracker": ["track buffer above soft limit (%s)", "tracker queue depth high (%s)"],
    "fusion": ["late sensor event merged (%s)", "fusion window extended (%s)"],
    "sink": ["webhook retry 1/3 (%s)", "slow acknowledgement from receiver (%s)"],
    "capture": ["transient network jitter (%s)", "retrying fetch once (%s)"],
}
COMPONENTS = (
    "frame-capture",
    "snapshot-api",
    "preprocess",
    "detector",
    "tracker",
    "fusion",
    "threshold",
    "policy-engine",
    "alert-sink",
)
HEARTBEATS = [
    "heartbeat ok",
    "health check passed",
    "liveness probe ok, queue empty",
    "alive; %s workers idle",
]


def insert_logs(
    con: duckdb.DuckDBPyConnection, seed: int, start: str, end: str, debug_lines: int
) -> None:
    tpl = [
        {"kind": k, "info": v, "warn": BENIGN_WARN.get(k, [])} for k, v in RUN_LOG_TEMPLATES.items()
    ]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE s_tpl AS SELECT unnest(?::STRUCT("
        "kind VARCHAR, info VARCHAR[], warn VARCHAR[])[], recursive := true)",
        [tpl],
    )
    pick = "list_element({lst}, 1 + (hash({seed}, r.run_id, {k}) % len({lst}))::INTEGER)"
    info = pick.format(lst="t.info", seed=seed, k=1)
    warn = pick.format(lst="t.warn", seed=seed, k=2)
    con.execute(
        f"""
        INSERT INTO logs
        WITH per_run AS (
            SELECT r.started_at + to_milliseconds(2 + hash({seed}, r.run_id, 3) % 9) AS ts,
                   r.run_id, r.component_id, 'INFO' AS level,
                   printf({info}, r.output_id) AS message,
                   json_object('output_id', r.output_id) AS attributes
            FROM runs r JOIN s_tpl t ON t.kind = r.kind
            UNION ALL
            SELECT r.started_at + to_milliseconds(12), r.run_id, r.component_id, 'WARN',
                   printf({warn}, r.output_id), json_object('output_id', r.output_id)
            FROM runs r JOIN s_tpl t ON t.kind = r.kind
            WHERE len(t.warn) > 0 AND hash({seed}, r.run_id, 4) % 1000 < 12
              AND r.output_id NOT IN (SELECT 'out-' || hex FROM s_out WHERE is_case)
            UNION ALL
            SELECT r.started_at + to_milliseconds(3 + j), r.run_id, r.component_id, 'DEBUG',
                   printf('stage %d/%d for %s', j + 1, {debug_lines}, r.output_id),
                   NULL::JSON
            FROM runs r CROSS JOIN range({debug_lines}) s(j)
        ), beats AS (
            SELECT g.ts + to_seconds((hash({seed}, c.comp, g.ts) % 600)::BIGINT) AS ts,
                   NULL AS run_id, c.comp, 'INFO',
                   printf(list_element(?::VARCHAR[], 1 + (hash(c.comp, g.ts) % 4)::INTEGER),
                          (hash(c.comp, g.ts, 5) % 8)::VARCHAR),
                   NULL::JSON
            FROM (SELECT unnest(?::VARCHAR[]) AS comp
                  UNION ALL SELECT device_id FROM s_dev) c
            CROSS JOIN range(TIMESTAMP '{start}', TIMESTAMP '{end}', INTERVAL 30 MINUTE) g(ts)
        ), case_lines AS (
            SELECT l.ts,
                   CASE WHEN l.node IS NULL THEN NULL
                        ELSE 'run-' || o.hex || '-' || lpad(l.node::VARCHAR, 2, '0') END,
                   l.component_id, l.level, l.message, l.attributes
            FROM s_clog l LEFT JOIN s_out o ON o.n = l.n
        )
        SELECT * FROM per_run UNION ALL SELECT * FROM beats UNION ALL SELECT * FROM case_lines
        ORDER BY 1, 3, 5
    """,
        [HEARTBEATS, list(COMPONENTS)],
    )
