"""Writing Forest's own rows into the store: verdicts and human overrides (append-only).

Every verdict reaches the store through :func:`write_verdict_rows`: the library and the
demo via :func:`append_verdicts` (rows from the model, :func:`row_of`), the gate's flush
from the JSON its journal already holds (:func:`verdict_row`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from agent.schemas import Evaluation, Override, Verdict
from tools.errors import StoreError
from tools.store.connection import open_writable
from tools.store.timestamps import to_db

__all__ = [
    "append_verdicts",
    "row_of",
    "verdict_row",
    "write_evaluations",
    "write_overrides",
    "write_verdict_rows",
    "write_verdicts",
]

_VERDICT_COLUMNS = {
    "verdict_id": "VARCHAR",
    "evaluation_id": "VARCHAR",
    "output_id": "VARCHAR",
    "created_at": "TIMESTAMP",
    "category": "VARCHAR",
    "failing_node": "VARCHAR",
    "action": "VARCHAR",
    "route_to_training": "BOOLEAN",
    "gate": "VARCHAR",
    "confidence": "DOUBLE",
    "reasoner": "VARCHAR",
    "verdict": "JSON",
}
_OVERRIDE_COLUMNS = {
    "override_id": "VARCHAR",
    "verdict_id": "VARCHAR",
    "evaluation_id": "VARCHAR",
    "created_at": "TIMESTAMP",
    "author": "VARCHAR",
    "category": "VARCHAR",
    "failing_node": "VARCHAR",
    "action": "VARCHAR",
    "reason": "VARCHAR",
}
_EVALUATION_COLUMNS = {
    "evaluation_id": "VARCHAR",
    "output_id": "VARCHAR",
    "source_kind": "VARCHAR",
    "source_id": "VARCHAR",
    "claim": "VARCHAR",
    "comment": "VARCHAR",
    "created_at": "TIMESTAMP",
}


def _insert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: dict[str, str],
    rows: list[tuple[Any, ...]],
    *,
    or_ignore: bool = False,
) -> int:
    """Insert ``rows`` in one statement (column lists unnested; ``executemany`` runs one
    statement per row, ~2 ms each)."""
    if not rows:
        return 0
    values = [list(column) for column in zip(*rows, strict=True)]
    select = ", ".join(f"unnest(?::{kind}[])" for kind in columns.values())
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    con.execute(f"{verb} INTO {table} ({', '.join(columns)}) SELECT {select}", values)
    return len(rows)


def verdict_row(body: str) -> tuple[Any, ...]:
    """The ``verdicts`` table row of a verdict serialized by ``Verdict.model_dump_json``.

    Reads the few columns with ``json.loads`` instead of validating the whole verdict
    again (~10x cheaper for a 30 KB verdict; the gate's flush copies hundreds a second).
    StoreError if ``body`` is not such a verdict.
    """
    try:
        v = json.loads(body)
        provenance = v["provenance"]
        return (
            v["verdict_id"],
            v["evaluation_id"],
            v["output_id"],
            to_db(dt.datetime.fromisoformat(provenance["started_at"])),
            v["category"],
            v["failing_node"],
            v["action"]["kind"],
            v["route_to_training"],
            v["gate"],
            v["confidence"],
            provenance["reasoner"],
            body,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"not a serialized verdict: {type(exc).__name__}: {exc}") from exc


def write_verdict_rows(con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> int:
    """Insert rows made by :func:`verdict_row` on ``con`` (the caller owns the transaction)."""
    return _insert(con, "verdicts", _VERDICT_COLUMNS, rows)


def row_of(verdict: Verdict) -> tuple[Any, ...]:
    """The ``verdicts`` table row of ``verdict`` (serialized once, never parsed back)."""
    return (
        verdict.verdict_id,
        verdict.evaluation_id,
        verdict.output_id,
        to_db(verdict.provenance.started_at),
        verdict.category,
        verdict.failing_node,
        verdict.action.kind,
        verdict.route_to_training,
        verdict.gate,
        verdict.confidence,
        verdict.provenance.reasoner,
        verdict.model_dump_json(),
    )


def write_verdicts(con: duckdb.DuckDBPyConnection, verdicts: Iterable[Verdict]) -> int:
    """Insert ``verdicts`` on ``con`` (the caller owns the transaction)."""
    return write_verdict_rows(con, [row_of(v) for v in verdicts])


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
    return _insert(con, "overrides", _OVERRIDE_COLUMNS, rows, or_ignore=True)


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
    return _insert(con, "evaluations", _EVALUATION_COLUMNS, rows, or_ignore=True)


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
