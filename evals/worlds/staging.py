"""Moving small Python-planned tables into DuckDB temp tables in one statement each."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import duckdb


def sql_ts(value: dt.datetime | None) -> str | None:
    """A naive-UTC timestamp literal, as the store keeps timestamps."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")


def out_hex(seed: int, n: int) -> str:
    """The opaque id stem of output ``n``; the SQL generator computes the same md5."""
    return hashlib.md5(f"{seed}:{n}".encode()).hexdigest()[:12]


def load(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: str,
    rows: list[dict[str, Any]],
) -> None:
    """Create temp table ``name`` with ``columns`` ("col TYPE, ...") holding ``rows``
    (datetimes made naive UTC)."""
    schema = dict(c.split() for c in columns.split(","))
    clean = [
        {k: sql_ts(v) if isinstance(v, dt.datetime) else v for k, v in row.items()} for row in rows
    ]
    structure = json.dumps([schema])
    cols = ", ".join(f"{c} {t}" for c, t in schema.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({cols})")
    if clean:
        con.execute(
            f"INSERT INTO {name} SELECT * FROM "
            "(SELECT unnest(from_json(?::JSON, ?), recursive := true))",
            [json.dumps(clean), structure],
        )


def count_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Row count of one of the contract's tables (``table`` is never user input)."""
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0
