"""Human overrides of verdicts: those in the store, plus any the service has journaled
but not yet flushed into it (``forest overrides``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from agent.schemas import Override
from agent.service.journal import journal_path
from tools.errors import StoreError
from tools.store.connection import fetch_dicts, open_readonly
from tools.store.timestamps import from_db

__all__ = ["list_overrides"]

_STORE_SQL = """
SELECT override_id, verdict_id, evaluation_id, created_at, author, category, failing_node,
       action, reason
FROM overrides {where} ORDER BY created_at, override_id
"""


def _from_store(store: Path, evaluation_id: str | None) -> list[Override]:
    con = open_readonly(store)
    try:
        where = "WHERE evaluation_id = ?" if evaluation_id else ""
        rows = fetch_dicts(con, _STORE_SQL.format(where=where), [evaluation_id] if where else [])
    finally:
        con.close()
    return [Override.model_validate({**r, "created_at": from_db(r["created_at"])}) for r in rows]


def _from_journal(store: Path, evaluation_id: str | None) -> list[Override]:
    path = journal_path(store)
    if not path.is_file():
        return []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT body FROM overrides WHERE flushed = 0 AND (? IS NULL OR evaluation_id = ?)"
                " ORDER BY seq",
                (evaluation_id, evaluation_id),
            ).fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the service journal {path}: {exc}") from exc
    return [Override.model_validate_json(r[0]) for r in rows]


def list_overrides(store: str | Path, evaluation_id: str | None = None) -> list[dict[str, Any]]:
    """Every override (of one evaluation, if given), oldest first, each with its ``source``:
    ``store``, or ``journal`` when `forest serve` has not flushed it into the store yet."""
    store = Path(store)
    flushed = _from_store(store, evaluation_id)
    seen = {o.override_id for o in flushed}
    pending = [o for o in _from_journal(store, evaluation_id) if o.override_id not in seen]
    return [
        *({**o.model_dump(mode="json"), "source": "store"} for o in flushed),
        *({**o.model_dump(mode="json"), "source": "journal"} for o in pending),
    ]
