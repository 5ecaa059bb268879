"""SQL that writes outputs, runs and lineage edges for every output, background and case alike.

Background outputs come from ``range()``; case outputs are appended from the plan. Every run's
params hold the precedence-resolved config of the keys its component consumes (merged with
static params and a case's patch), and metrics are base x bounded noise x a case's factor, so
healthy runs stay within +-5 % of their component's median and baselines are stable.
Noise is ``hash(seed, ...)``: deterministic for a seed.
"""

from __future__ import annotations

import duckdb

from evals.worlds.world import DEFAULT_MODEL, MODEL_ID, NODES, RUN_METRICS, STATIC_PARAMS

COUNTS = (
    "frames_received",
    "candidate_boxes",
    "resolution_h",
    "output_height",
    "bytes",
    "rules_evaluated",
    "events",
)
PER_DEVICE = {"focus": "d.focus", "exposure": "d.exposure"}


def _u(seed: int, *parts: str) -> str:
    """A deterministic uniform [0, 1) from the seed and row identity."""
    return f"((hash({seed}, {', '.join(parts)}) % 1000003)::DOUBLE / 1000003)"


def _metrics_sql(seed: int) -> str:
    cases = []
    for idx, metrics in RUN_METRICS.items():
        fields = []
        for k, (name, (base, span)) in enumerate(metrics.items()):
            base_sql = PER_DEVICE[name] if base is None else repr(base)
            factor = (
                f"coalesce(TRY_CAST(json_extract_string(p.factors, '$.{name}') AS DOUBLE), 1.0)"
            )
            value = f"{base_sql} * (1 + {span} * ({_u(seed, 'o.n', str(idx), str(k))} - 0.5))"
            digits = 0 if name in COUNTS else 3
            fields.append(f"'{name}', round({value} * {factor}, {digits})")
        cases.append(f"WHEN {idx} THEN json_object({', '.join(fields)})")
    return "CASE n.idx " + " ".join(cases) + " END"


def build_outputs(
    con: duckdb.DuckDBPyConnection, seed: int, n_bg: int, start: str, span_ms: int
) -> None:
    """s_out: one row per output (background from range(), cases from s_case_out)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE s_out AS
        WITH bg AS (
            SELECT r.g AS n, d.device_id,
                   TIMESTAMP '{start}'
                       + to_milliseconds((hash({seed}, r.g, 1) % {span_ms})::BIGINT)
                       AS captured_at,
                   NULL::VARCHAR AS case_decision,
                   round(0.03 + 0.96 * {_u(seed, "r.g", "2")}, 4) AS score, false AS is_case
            FROM range({n_bg}) r(g)
            JOIN s_dev d ON d.i = hash({seed}, r.g, 0) % (SELECT count(*) FROM s_dev)
        ), allout AS (
            SELECT * FROM bg
            UNION ALL
            SELECT n, device_id, captured_at, decision, score, true FROM s_case_out
        )
        SELECT a.n, substr(md5('{seed}:' || a.n::VARCHAR), 1, 12) AS hex,
               d.tenant_id, d.site_id, a.device_id, d.door_id, a.captured_at,
               a.case_decision, a.score, a.is_case,
               coalesce(e.version, '{DEFAULT_MODEL}') AS model_version
        FROM allout a JOIN s_dev d USING (device_id)
        LEFT JOIN s_ep e ON e.device_id = a.device_id AND e.node = 4
             AND a.captured_at >= e.t0 AND a.captured_at < e.t1
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE s_res AS
        WITH chain AS (
            SELECT n, captured_at, 'device' AS scope, device_id AS scope_id FROM s_out
            UNION ALL SELECT n, captured_at, 'site', site_id FROM s_out
            UNION ALL SELECT n, captured_at, 'tenant', tenant_id FROM s_out
            UNION ALL SELECT n, captured_at, 'global', '*' FROM s_out
        )
        SELECT n, key, value, node FROM (
            SELECT c.n, v.key, v.value, v.node,
                   row_number() OVER (PARTITION BY c.n, v.key
                                      ORDER BY v.rank, v.valid_from DESC, v.config_id DESC) AS rk
            FROM chain c JOIN s_cfg v ON v.scope = c.scope AND v.scope_id = c.scope_id
            WHERE v.valid_from <= c.captured_at
              AND (v.valid_to IS NULL OR c.captured_at < v.valid_to)
        ) WHERE rk = 1
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE s_par AS
        SELECT n, node,
               ('{' || string_agg(to_json(key) || ':' || value, ',' ORDER BY key) || '}')::JSON
                   AS params
        FROM s_res GROUP BY n, node
    """)


def insert_outputs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"""
        INSERT INTO outputs
        SELECT 'out-' || o.hex, o.tenant_id, o.site_id, o.device_id, o.captured_at,
               coalesce(o.case_decision,
                        CASE WHEN o.score >= r.value::DOUBLE THEN 'alert' ELSE 'no_alert' END),
               NULL, o.score, '{MODEL_ID}', o.model_version
        FROM s_out o LEFT JOIN s_res r ON r.n = o.n AND r.key = 'threshold.person'
        ORDER BY 1
    """)
    con.execute("UPDATE outputs SET label = 'person' WHERE decision = 'alert'")


def insert_runs(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    con.execute(f"""
        INSERT INTO runs
        SELECT 'run-' || o.hex || '-' || lpad(n.idx::VARCHAR, 2, '0') AS run_id,
               'out-' || o.hex,
               CASE n.idx WHEN 0 THEN o.device_id WHEN 7 THEN o.door_id ELSE n.component_id END,
               n.kind,
               CASE n.idx WHEN 0 THEN d.firmware WHEN 4 THEN o.model_version
                    ELSE coalesce(e.version, n.version) END,
               o.captured_at + to_milliseconds(n.offset_ms) AS started_at,
               o.captured_at + to_milliseconds(n.offset_ms + (n.dur_ms
                   * (0.8 + 0.4 * {_u(seed, "o.n", "n.idx", "77")}))::BIGINT),
               coalesce(p.status,
                        CASE WHEN NOT o.is_case AND n.idx = 10
                                  AND hash({seed}, o.n, 99) % 400 = 0
                             THEN 'degraded' ELSE 'ok' END),
               json_merge_patch(json_merge_patch(n.static, coalesce(c.params, '{{}}')),
                                coalesce(p.params, '{{}}')),
               {_metrics_sql(seed)}
        FROM s_out o CROSS JOIN s_nodes n
        JOIN s_dev d ON d.device_id = o.device_id
        LEFT JOIN s_par c ON c.n = o.n AND c.node = n.idx
        LEFT JOIN s_patch p ON p.n = o.n AND p.node = n.idx
        LEFT JOIN s_ep e ON e.device_id = o.device_id AND e.node = n.idx AND n.idx <> 4
             AND o.captured_at >= e.t0 AND o.captured_at < e.t1
        ORDER BY 2, 6, 1
    """)


def insert_edges(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        INSERT INTO lineage_edges
        SELECT 'out-' || o.hex, 'run-' || o.hex || '-' || lpad(g.p::VARCHAR, 2, '0'),
               'run-' || o.hex || '-' || lpad(g.c::VARCHAR, 2, '0')
        FROM s_out o CROSS JOIN s_edges g
        ORDER BY 1, 2, 3
    """)


def node_rows() -> list[dict[str, object]]:
    static = {0: {"stream": "main"}, 7: {"debounce_ms": 500}, **STATIC_PARAMS}
    durations = {0: 8, 1: 40, 2: 110, 3: 20, 4: 35, 5: 6, 6: 4, 7: 15, 8: 1, 9: 3, 10: 300}
    return [
        {
            "idx": idx,
            "component_id": comp,
            "kind": kind,
            "version": ver,
            "offset_ms": off,
            "dur_ms": durations[idx],
            "static": static.get(idx, {}),
        }
        for idx, comp, kind, ver, off in NODES
    ]


NODE_SCHEMA = (
    "idx INTEGER, component_id VARCHAR, kind VARCHAR, version VARCHAR, offset_ms INTEGER, "
    "dur_ms INTEGER, static JSON"
)
