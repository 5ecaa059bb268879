"""Opening the incident store: hardened read-only for tools, writable for ingest and verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from tools.errors import StoreError
from tools.store.contract import TABLES, ddl

__all__ = ["HARDENED_CONFIG", "fetch_dicts", "open_readonly", "open_writable", "store_snapshot"]

# read_only protects the file only; these also close the file system, network and
# extensions, and the lock stops a query from switching them back on.
HARDENED_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "lock_configuration": True,
}


def _connect(path: Path, *, read_only: bool, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        raise StoreError(f"cannot open store {path}: {_first_line(exc)}") from exc
    except duckdb.Error as exc:
        raise StoreError(
            f"{path} is not a readable DuckDB store ({_first_line(exc)}); "
            "rebuild it with `forest demo` or `forest ingest`"
        ) from exc


def open_readonly(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open an existing store read-only, with external access, extensions and config locked."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(
            f"store {path} does not exist; build one with `forest demo` or `forest ingest`"
        )
    con = _connect(path, read_only=True, config=dict(HARDENED_CONFIG))
    missing = set(TABLES) - {
        r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    }
    if missing:
        con.close()
        raise StoreError(
            f"{path} is not a Forest store: missing tables {', '.join(sorted(missing))}"
        )
    return con


def open_writable(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) a store for writing and make sure the contract's tables exist."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(path, read_only=False, config={"autoload_known_extensions": False})
    try:
        con.execute(ddl())
    except duckdb.Error as exc:
        con.close()
        raise StoreError(f"{path}: cannot create the store tables: {_first_line(exc)}") from exc
    return con


def store_snapshot(con: duckdb.DuckDBPyConnection) -> str:
    """A short fingerprint of what the store holds (row counts), for provenance."""
    counts = []
    for table in ("outputs", "runs", "logs", "evaluations"):
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts.append(f"{table}={row[0] if row else 0}")
    return ",".join(counts)


def fetch_dicts(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list[Any] | None = None,
    *,
    json_columns: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Run parameterised ``sql`` and return rows as dicts, decoding the named JSON columns."""
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        for col in json_columns:
            if isinstance(row.get(col), str):
                row[col] = json.loads(row[col])
    return rows


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
