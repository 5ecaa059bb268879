"""The incident store contract: the DuckDB tables users load their data into.

All timestamps are ``TIMESTAMP`` values in UTC (naive in DuckDB, made timezone-aware at the
Python edge). JSON columns hold objects. Every table is written sorted by the key its
lookups use (see ``SORT_KEYS``) so DuckDB's per-row-group min/max zone maps prune scans
for id and time-range lookups at scale.

Lineage vocabulary
------------------
A *run* is one execution of one component for one output. Its ``component_id`` is the
**node id** a verdict names (``failing_node``, ``causal_path``): the closed set of nodes a
verdict may use for an output is the set of ``component_id`` values of that output's runs.
For a sensor/camera node the component id is the device id, so health data joins on it.
``lineage_edges`` link runs of the same output, parent (upstream) -> child (downstream).

Config precedence
-----------------
A config key may be set at four scopes. For an output, the value in force at time ``t``
is resolved most-specific first: ``device`` (scope_id = the output's device_id) >
``site`` (scope_id = site_id) > ``tenant`` (scope_id = tenant_id) > ``global``
(scope_id = ``'*'``). Within one scope the version with ``valid_from <= t`` and
(``valid_to`` is NULL or ``t < valid_to``) applies; if several do, the latest
``valid_from`` wins. The winning version *shadows* every applicable version at a less
specific scope.
"""

from __future__ import annotations

from typing import Final

COMPONENT_KINDS: Final = (
    "sensor",
    "capture",
    "transform",
    "model",
    "tracker",
    "fusion",
    "threshold",
    "policy",
    "sink",
)
CONFIG_SCOPES: Final = ("device", "site", "tenant", "global")  # most specific first
CLAIMS: Final = ("false_positive", "false_negative", "wrong_class", "bad_localization", "other")
SOURCE_KINDS: Final = ("human", "automated")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARN", "ERROR")

# table name -> (DDL, {column: documentation})
TABLES: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "outputs": (
        """CREATE TABLE IF NOT EXISTS outputs (
            output_id VARCHAR PRIMARY KEY,
            tenant_id VARCHAR NOT NULL,
            site_id VARCHAR NOT NULL,
            device_id VARCHAR NOT NULL,
            captured_at TIMESTAMP NOT NULL,
            decision VARCHAR NOT NULL,
            label VARCHAR,
            score DOUBLE,
            model_id VARCHAR,
            model_version VARCHAR
        )""",
        {
            "output_id": "unique id of the system decision being evaluated",
            "tenant_id": "customer that owns the device",
            "site_id": "site (building, lot) within the tenant",
            "device_id": "camera or sensor that captured the input",
            "captured_at": "capture time of the input frame (UTC)",
            "decision": "what the system did, e.g. 'alert' or 'no_alert'",
            "label": "class the system assigned, e.g. 'person' (NULL when none)",
            "score": "final score the threshold compared, 0..1",
            "model_id": "model that produced the score",
            "model_version": "version of that model",
        },
    ),
    "runs": (
        """CREATE TABLE IF NOT EXISTS runs (
            run_id VARCHAR PRIMARY KEY,
            output_id VARCHAR NOT NULL,
            component_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            version VARCHAR,
            started_at TIMESTAMP NOT NULL,
            ended_at TIMESTAMP,
            status VARCHAR NOT NULL,
            params JSON,
            metrics JSON
        )""",
        {
            "run_id": "unique id of this execution",
            "output_id": "output this run contributed to",
            "component_id": "component that ran; the lineage node id verdicts name",
            "kind": "one of " + ", ".join(COMPONENT_KINDS),
            "version": "component version (software release or model version)",
            "started_at": "start time (UTC)",
            "ended_at": "end time (UTC), NULL if it never finished",
            "status": "'ok', 'degraded' or 'failed'",
            "params": "JSON object: parameters/config values the run actually used",
            "metrics": "JSON object of numeric measurements of this run",
        },
    ),
    "lineage_edges": (
        """CREATE TABLE IF NOT EXISTS lineage_edges (
            output_id VARCHAR NOT NULL,
            parent_run_id VARCHAR NOT NULL,
            child_run_id VARCHAR NOT NULL
        )""",
        {
            "output_id": "output whose lineage this edge belongs to",
            "parent_run_id": "upstream run (its output fed the child)",
            "child_run_id": "downstream run",
        },
    ),
    "logs": (
        """CREATE TABLE IF NOT EXISTS logs (
            ts TIMESTAMP NOT NULL,
            run_id VARCHAR,
            component_id VARCHAR NOT NULL,
            level VARCHAR NOT NULL,
            message VARCHAR NOT NULL,
            attributes JSON
        )""",
        {
            "ts": "time of the log line (UTC)",
            "run_id": "run that wrote it, NULL for component-level lines (deploys, restarts)",
            "component_id": "component that wrote it",
            "level": "one of " + ", ".join(LOG_LEVELS),
            "message": "free text; untrusted (may contain anything, secrets included)",
            "attributes": "JSON object of structured fields",
        },
    ),
    "config_versions": (
        """CREATE TABLE IF NOT EXISTS config_versions (
            config_id VARCHAR PRIMARY KEY,
            key VARCHAR NOT NULL,
            scope VARCHAR NOT NULL,
            scope_id VARCHAR NOT NULL,
            value JSON NOT NULL,
            valid_from TIMESTAMP NOT NULL,
            valid_to TIMESTAMP,
            author VARCHAR,
            change_note VARCHAR,
            component_id VARCHAR
        )""",
        {
            "config_id": "unique id of this version",
            "key": "config key, e.g. 'threshold.person' or 'policy.night_mode'",
            "scope": "one of device, site, tenant, global (precedence in that order)",
            "scope_id": "device_id, site_id or tenant_id the scope names; '*' for global",
            "value": "JSON value",
            "valid_from": "when this version took effect (UTC)",
            "valid_to": "when it was superseded (UTC), NULL while current",
            "author": "who or what changed it",
            "change_note": "free-text reason; untrusted",
            "component_id": "component that consumes the key (a lineage node id), if known",
        },
    ),
    "device_health": (
        """CREATE TABLE IF NOT EXISTS device_health (
            device_id VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,
            metric VARCHAR NOT NULL,
            value DOUBLE NOT NULL
        )""",
        {
            "device_id": "camera or sensor id",
            "ts": "sample time (UTC)",
            "metric": "focus_score, exposure, fps, dropped_frames, resolution_h, "
            "bitrate_kbps; any other metric (battery, heartbeat, signal) is judged by its "
            "relative change",
            "value": "sample value",
        },
    ),
    "device_facts": (
        """CREATE TABLE IF NOT EXISTS device_facts (
            device_id VARCHAR PRIMARY KEY,
            tenant_id VARCHAR,
            site_id VARCHAR,
            kind VARCHAR,
            model VARCHAR,
            firmware VARCHAR,
            install_date DATE,
            last_maintenance DATE,
            nominal_fps DOUBLE,
            nominal_resolution_h DOUBLE
        )""",
        {
            "device_id": "camera or sensor id",
            "tenant_id": "owner",
            "site_id": "site",
            "kind": "'camera', 'door_sensor', 'motion_sensor', ...",
            "model": "hardware model",
            "firmware": "firmware version",
            "install_date": "date installed",
            "last_maintenance": "date of last maintenance visit",
            "nominal_fps": "configured frame rate (the spec the fps flag compares to)",
            "nominal_resolution_h": "configured vertical resolution in pixels",
        },
    ),
    "evaluations": (
        """CREATE TABLE IF NOT EXISTS evaluations (
            evaluation_id VARCHAR PRIMARY KEY,
            output_id VARCHAR NOT NULL,
            source_kind VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL,
            claim VARCHAR NOT NULL,
            comment VARCHAR,
            created_at TIMESTAMP NOT NULL
        )""",
        {
            "evaluation_id": "unique id of the evaluation",
            "output_id": "output it judges",
            "source_kind": "'human' (a reviewer) or 'automated' (a judge model)",
            "source_id": "reviewer or judge id (judge ids may carry a version)",
            "claim": "one of " + ", ".join(CLAIMS),
            "comment": "free text; untrusted",
            "created_at": "time of the evaluation (UTC)",
        },
    ),
    "evaluator_history": (
        """CREATE TABLE IF NOT EXISTS evaluator_history (
            source_id VARCHAR NOT NULL,
            evaluation_id VARCHAR NOT NULL,
            agreed BOOLEAN NOT NULL,
            adjudicated_at TIMESTAMP NOT NULL,
            claim VARCHAR
        )""",
        {
            "source_id": "reviewer or judge",
            "evaluation_id": "a past evaluation of theirs that was adjudicated",
            "agreed": "whether adjudication agreed with the evaluation",
            "adjudicated_at": "when it was adjudicated (UTC)",
            "claim": "optional: the claim that evaluation made (one of the evaluations "
            "claims); when NULL, the claim of that evaluation_id in `evaluations`, if loaded",
        },
    ),
    "models": (
        """CREATE TABLE IF NOT EXISTS models (
            model_id VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            component_id VARCHAR,
            released_at TIMESTAMP NOT NULL,
            recommended_threshold DOUBLE,
            metrics JSON,
            notes VARCHAR
        )""",
        {
            "model_id": "model family",
            "version": "model version",
            "component_id": "lineage component that serves it",
            "released_at": "when the version went live (UTC)",
            "recommended_threshold": "operating threshold calibrated for this version",
            "metrics": "JSON object of offline metrics",
            "notes": "free text",
        },
    ),
    "feature_baselines": (
        """CREATE TABLE IF NOT EXISTS feature_baselines (
            model_id VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            feature VARCHAR NOT NULL,
            bin_edges DOUBLE[] NOT NULL,
            expected DOUBLE[] NOT NULL
        )""",
        {
            "model_id": "model family",
            "version": "model version the baseline was measured for",
            "feature": "input feature name, e.g. 'brightness'",
            "bin_edges": "ascending inner bin edges (n edges define n+1 bins)",
            "expected": "baseline share of inputs in each of the n+1 bins (sums to 1)",
        },
    ),
    "input_features": (
        """CREATE TABLE IF NOT EXISTS input_features (
            output_id VARCHAR NOT NULL,
            device_id VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,
            feature VARCHAR NOT NULL,
            value DOUBLE NOT NULL
        )""",
        {
            "output_id": "output whose model input this describes",
            "device_id": "device (denormalised for windowed drift queries)",
            "ts": "capture time (UTC, denormalised)",
            "feature": "feature name, matching feature_baselines.feature",
            "value": "feature value",
        },
    ),
    "verdicts": (
        """CREATE TABLE IF NOT EXISTS verdicts (
            verdict_id VARCHAR PRIMARY KEY,
            evaluation_id VARCHAR NOT NULL,
            output_id VARCHAR,
            created_at TIMESTAMP NOT NULL,
            category VARCHAR NOT NULL,
            failing_node VARCHAR,
            action VARCHAR NOT NULL,
            route_to_training BOOLEAN NOT NULL,
            gate VARCHAR NOT NULL,
            confidence DOUBLE NOT NULL,
            reasoner VARCHAR NOT NULL,
            verdict JSON NOT NULL
        )""",
        {
            "verdict_id": "unique id",
            "evaluation_id": "evaluation investigated",
            "output_id": "output it concerned",
            "created_at": "when the verdict was written (UTC)",
            "category": "verdict category",
            "failing_node": "lineage node found to fail, NULL when none",
            "action": "corrective action",
            "route_to_training": "whether the evaluation may become training signal",
            "gate": "'train', 'hold' or 'discard'",
            "confidence": "0..1",
            "reasoner": "'rules' or 'llm'",
            "verdict": "the full verdict JSON with provenance (append-only)",
        },
    ),
    "overrides": (
        """CREATE TABLE IF NOT EXISTS overrides (
            override_id VARCHAR PRIMARY KEY,
            verdict_id VARCHAR NOT NULL,
            evaluation_id VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            author VARCHAR NOT NULL,
            category VARCHAR NOT NULL,
            failing_node VARCHAR,
            action VARCHAR NOT NULL,
            reason VARCHAR
        )""",
        {
            "override_id": "unique id",
            "verdict_id": "verdict a human corrected",
            "evaluation_id": "its evaluation",
            "created_at": "when (UTC)",
            "author": "who overrode it",
            "category": "the human's category",
            "failing_node": "the human's failing node",
            "action": "the human's action",
            "reason": "free text",
        },
    ),
}

# Rows are written in this order so zone maps prune id and time-range lookups.
SORT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "outputs": ("output_id",),
    "runs": ("output_id", "started_at"),
    "lineage_edges": ("output_id",),
    "logs": ("ts",),
    "config_versions": ("key", "scope", "scope_id", "valid_from"),
    "device_health": ("device_id", "ts"),
    "device_facts": ("device_id",),
    "evaluations": ("evaluation_id",),
    "evaluator_history": ("source_id", "adjudicated_at"),
    "models": ("model_id", "released_at"),
    "feature_baselines": ("model_id", "version", "feature"),
    "input_features": ("device_id", "ts"),
    "verdicts": ("evaluation_id", "created_at"),
    "overrides": ("evaluation_id", "created_at"),
}

# Tables loaded from user data; verdicts and overrides are written by Forest itself.
DATA_TABLES: Final = tuple(t for t in TABLES if t not in ("verdicts", "overrides"))

INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS runs_component ON runs (component_id)",
    "CREATE INDEX IF NOT EXISTS evaluations_output ON evaluations (output_id)",
    # columns added since a store was first created (stores made before them stay loadable)
    "ALTER TABLE evaluator_history ADD COLUMN IF NOT EXISTS claim VARCHAR",
)


def ddl() -> str:
    """The whole contract as one SQL script."""
    return ";\n".join([*(sql for sql, _ in TABLES.values()), *INDEXES]) + ";\n"


def columns(table: str) -> list[str]:
    """Column names of ``table`` in contract order."""
    return list(TABLES[table][1])


def describe_markdown() -> str:
    """The contract as Markdown, field by field (used by the README)."""
    parts = []
    for name, (_, cols) in TABLES.items():
        parts.append(f"### `{name}`\n\n| column | meaning |\n|---|---|")
        parts.extend(f"| `{c}` | {doc} |" for c, doc in cols.items())
        parts.append("")
    return "\n".join(parts)
