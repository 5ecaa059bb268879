"""Appending verdicts to the store (append-only; the only write an investigation makes)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from agent.schemas import Verdict
from tools.lineage import to_db
from tools.store import open_writable

__all__ = ["append_verdicts"]

_INSERT = """
INSERT INTO verdicts (verdict_id, evaluation_id, output_id, created_at, category, failing_node,
                      action, route_to_training, gate, confidence, reasoner, verdict)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def append_verdicts(store: str | Path, verdicts: Iterable[Verdict]) -> int:
    """Write ``verdicts`` in one transaction; returns how many were written."""
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
    if not rows:
        return 0
    con = open_writable(store)
    try:
        con.execute("BEGIN")
        con.executemany(_INSERT, rows)
        con.execute("COMMIT")
    finally:
        con.close()
    return len(rows)
