"""Writing the store: rows -> CSV parts -> DuckDB, in the contract's column and sort order."""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tools.store.connection import open_writable
from tools.store.contract import SORT_KEYS, columns

__all__ = ["write_store"]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


JSON_COLS = {
    ("runs", "params"),
    ("runs", "metrics"),
    ("logs", "attributes"),
    ("config_versions", "value"),
    ("models", "metrics"),
}


def _cell(table: str, col: str, value: Any) -> Any:
    if (table, col) in JSON_COLS:
        return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_store(path: Path, tables: dict[str, Iterable[dict[str, Any]]]) -> dict[str, int]:
    """Create the store at ``path`` (replacing it) and load every table; rows per table."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = open_writable(path)
    counts: dict[str, int] = {}
    try:
        con.execute("SET TimeZone = 'UTC'")
        with tempfile.TemporaryDirectory() as tmp:
            for table, rows in tables.items():
                cols = columns(table)
                if table == "feature_baselines":
                    data = [[r[c] for c in cols] for r in rows]
                    con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)", data)
                    counts[table] = len(data)
                    continue
                part = Path(tmp) / f"{table}.csv"
                n = 0
                with part.open("w", newline="", encoding="utf-8") as fh:
                    w = csv.writer(fh)
                    w.writerow(cols)
                    for r in rows:
                        if isinstance(r, dict):
                            w.writerow([_cell(table, c, r.get(c)) for c in cols])
                        else:  # already a row of cells in contract order
                            w.writerow(r)
                        n += 1
                types = {
                    name: typ
                    for name, typ in con.execute(
                        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?",
                        [table],
                    ).fetchall()
                }
                spec = {c: ("VARCHAR" if types[c] == "JSON" else types[c]) for c in cols}
                order = ", ".join(SORT_KEYS[table])
                con.execute(
                    f"INSERT INTO {table} SELECT * FROM read_csv(?, header = true, "
                    f"auto_detect = false, columns = {_struct(spec)}) ORDER BY {order}",
                    [str(part)],
                )
                counts[table] = n
    finally:
        con.close()
    return counts


def _struct(spec: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in spec.items()) + "}"


def write_truth(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in sorted(rows, key=lambda r: r["evaluation_id"]):
            fh.write(json.dumps(r, sort_keys=True) + "\n")
