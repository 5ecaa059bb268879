"""Human overrides of verdicts: those in the store, plus any the service has journaled
but not yet flushed into it (``forest overrides``).

The core does not read the service's journal itself: the caller passes a
``PendingOverrides`` reader (the CLI wires ``agent.service.journal.journaled_overrides``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.schemas import Override
from tools.store.connection import fetch_dicts, open_readonly
from tools.store.timestamps import from_db

__all__ = ["PendingOverrides", "list_overrides"]

# (store, evaluation_id or None for all) -> overrides journaled but not yet in the store
PendingOverrides = Callable[[Path, str | None], list[Override]]

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


def list_overrides(
    store: str | Path,
    evaluation_id: str | None = None,
    pending: PendingOverrides | None = None,
) -> list[dict[str, Any]]:
    """Every override (of one evaluation, if given), oldest first, each with its ``source``:
    ``store``, or ``journal`` for those ``pending`` returns (journaled by `forest serve` but
    not flushed into the store yet). Without ``pending`` only the store's are listed."""
    store = Path(store)
    flushed = _from_store(store, evaluation_id)
    seen = {o.override_id for o in flushed}
    journaled = pending(store, evaluation_id) if pending is not None else []
    unflushed = [o for o in journaled if o.override_id not in seen]
    return [
        *({**o.model_dump(mode="json"), "source": "store"} for o in flushed),
        *({**o.model_dump(mode="json"), "source": "journal"} for o in unflushed),
    ]
