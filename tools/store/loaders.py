"""The rows every evidence tool starts from (an output, its runs, its model version) and a
per-investigation memo so the tools that share them query each once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import duckdb

from tools.store.connection import fetch_dicts
from tools.store.timestamps import from_db

__all__ = ["decision_time", "load_model", "load_output", "load_runs", "memo", "memoized"]

T = TypeVar("T")
_MEMO: ContextVar[dict[Hashable, Any] | None] = ContextVar("forest_tool_memo", default=None)


@contextmanager
def memoized() -> Iterator[None]:
    """Within the block (one investigation), ``memo`` loads each key once: the loaders many
    tools share (an output, its runs, its model) stop repeating their queries. Sound
    because a store cannot change while a read-only connection to it is open."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def memo(key: Hashable, load: Callable[[], T]) -> T:
    """``load()``, or inside ``memoized()`` a private copy of its first result for ``key``."""
    cache = _MEMO.get()
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    return _fresh(cache[key])


def _fresh(value: Any) -> Any:
    """A copy of nested dicts and lists (the loaders' rows); leaves are immutable values.
    ~10x cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


OUTPUT_SQL = "SELECT * FROM outputs WHERE output_id = ?"
RUNS_SQL = "SELECT * FROM runs WHERE output_id = ? ORDER BY started_at, run_id"
MODEL_SQL = """
    SELECT model_id, version, component_id, released_at, recommended_threshold
    FROM models WHERE model_id = ? AND version = ? ORDER BY released_at LIMIT 1"""


def load_output(con: duckdb.DuckDBPyConnection, output_id: str) -> dict[str, Any] | None:
    """The output row with ``captured_at`` as an aware UTC datetime, or None."""
    return memo(("output", output_id), lambda: _load_output(con, output_id))


def _load_output(con: duckdb.DuckDBPyConnection, output_id: str) -> dict[str, Any] | None:
    rows = fetch_dicts(con, OUTPUT_SQL, [output_id])
    if not rows:
        return None
    row = rows[0]
    row["captured_at"] = from_db(row["captured_at"])
    return row


def load_runs(con: duckdb.DuckDBPyConnection, output_id: str) -> list[dict[str, Any]]:
    """The output's runs, params and metrics decoded, timestamps aware UTC."""
    return memo(("runs", output_id), lambda: _load_runs(con, output_id))


def _load_runs(con: duckdb.DuckDBPyConnection, output_id: str) -> list[dict[str, Any]]:
    runs = fetch_dicts(con, RUNS_SQL, [output_id], json_columns=("params", "metrics"))
    for run in runs:
        run["started_at"] = from_db(run["started_at"])
        run["ended_at"] = from_db(run["ended_at"]) if run["ended_at"] else None
    return runs


def load_model(con: duckdb.DuckDBPyConnection, output: dict[str, Any]) -> dict[str, Any] | None:
    """The registry row of the model version that produced ``output`` (released_at aware)."""
    if not output.get("model_id") or not output.get("model_version"):
        return None
    key = (output["model_id"], output["model_version"])
    return memo(("model", *key), lambda: _load_model(con, *key))


def _load_model(
    con: duckdb.DuckDBPyConnection, model_id: str, version: str
) -> dict[str, Any] | None:
    rows = fetch_dicts(con, MODEL_SQL, [model_id, version])
    if not rows:
        return None
    rows[0]["released_at"] = from_db(rows[0]["released_at"])
    return rows[0]


def decision_time(runs: list[dict[str, Any]], capture: dt.datetime) -> dt.datetime:
    """When the output's pipeline finished; its own runs and their logs happen up to here.

    Evidence from the runs that produced the output counts as ``before_capture`` even
    though those runs start a few milliseconds after the frame was captured.
    """
    ends = [r["ended_at"] or r["started_at"] for r in runs]
    return max([capture, *ends])
