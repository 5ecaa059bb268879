"""Writing Forest's own rows into the store: verdicts and human overrides (append-only)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb

from agent.schemas import Evaluation, Override, Verdict
from tools.lineage import to_db
from tools.store import open_writable

__all__ = ["append_verdicts", "write_evaluations", "write_overrides", "write_verdicts"]

_INSERT_VERDICT = """
INSERT INTO verdicts (verdict_id, evaluation_id, output_id, created_at, category, failing_node,
                      action, route_to_training, gate, confidence, reasoner, verdict)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_OVERRIDE = """
INSERT OR IGNORE INTO overrides (override_id, verdict_id, evaluation_id, created_at, author,
                                 category, failing_node, action, reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_EVALUATION = """
INSERT OR IGNORE INTO evaluations (evaluation_id, output_id, source_kind, source_id, claim,
                                   comment, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""


def write_verdicts(con: duckdb.DuckDBPyConnection, verdicts: Iterable[Verdict]) -> int:
    """Insert ``verdicts`` on ``con`` (the caller owns the transaction)."""
    rows = [
        (
            v.verdict_id,
            v.evaluation_id,
            v.output_id,
            to_db(v.provenance.started_at),
            v.category,
            v.failing_node,
            v.action.kind,
            v.route_to_training,
            v.gate,
            v.confidence,
            v.provenance.reasoner,
            v.model_dump_json(),
        )
        for v in verdicts
    ]
    if rows:
        con.executemany(_INSERT_VERDICT, rows)
    return len(rows)


def write_overrides(con: duckdb.DuckDBPyConnection, overrides: Iterable[Override]) -> int:
    """Insert ``overrides`` on ``con``, skipping ids already there."""
    rows = [
        (
            o.override_id,
            o.verdict_id,
            o.evaluation_id,
            to_db(o.created_at),
            o.author,
            o.category,
            o.failing_node,
            o.action,
            o.reason,
        )
        for o in overrides
    ]
    if rows:
        con.executemany(_INSERT_OVERRIDE, rows)
    return len(rows)


def write_evaluations(con: duckdb.DuckDBPyConnection, evaluations: Iterable[Evaluation]) -> int:
    """Insert ``evaluations`` on ``con``, skipping ids already there."""
    rows = [
        (
            e.evaluation_id,
            e.output_id,
            e.source_kind,
            e.source_id,
            e.claim,
            e.comment,
            to_db(e.created_at),
        )
        for e in evaluations
    ]
    if rows:
        con.executemany(_INSERT_EVALUATION, rows)
    return len(rows)


def append_verdicts(store: str | Path, verdicts: Iterable[Verdict]) -> int:
    """Write ``verdicts`` in one transaction; returns how many were written."""
    verdicts = list(verdicts)
    if not verdicts:
        return 0
    con = open_writable(store)
    try:
        con.execute("BEGIN")
        written = write_verdicts(con, verdicts)
        con.execute("COMMIT")
    finally:
        con.close()
    return written
