"""Shared fixtures. Every test runs with Forest's, OpenAI's and Slack's environment variables
cleared and with no network beyond loopback (see ``_isolated``).

``small_store`` is the small deterministic store :mod:`stores` documents (every timestamp
relative to ``T0 = 2025-03-10T12:00:00Z``: three cameras, six featured outputs with planted
faults, background outputs for baselines); ``store_con`` a hardened read-only connection to
it; ``call(tool, **args)`` runs a tool on it through the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from stores import build_small_store

from tools.base import ToolResult
from tools.registry import get_tool
from tools.store.connection import open_readonly


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the small deterministic store (see the module docstring for its contents)."""
    return build_small_store(tmp_path_factory.mktemp("store") / "small.duckdb")


@pytest.fixture
def store_con(small_store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A hardened read-only connection to ``small_store``, closed after the test."""
    con = open_readonly(small_store)
    yield con
    con.close()


@pytest.fixture
def call(store_con: duckdb.DuckDBPyConnection) -> Callable[..., ToolResult]:
    """``call(tool_name, **arguments)`` through the registry, as the investigator calls tools."""

    def _call(name: str, **arguments: Any) -> ToolResult:
        return get_tool(name).call(store_con, arguments)

    return _call
