"""Shared fixtures. Every test runs with Forest's, OpenAI's and Slack's environment variables
cleared and with no network beyond loopback (see ``_isolated``).

``_isolated`` (autouse) removes every FOREST_*, OPENAI_* and SLACK_* variable (FOREST_RECORD_*
excepted, see below) so ``Settings()`` sees only what a test passes, and makes
``socket.connect``/``connect_ex`` to anything but loopback (127.0.0.0/8, ::1, localhost; unix
sockets pass) and ``getaddrinfo`` of any non-local name raise ``NetworkBlockedError``. Mark a
test ``@pytest.mark.network`` to lift the guard; vcr tests run with ``--record-mode`` other
than none (``make record``) are exempt, as pytest-recording's ``block_network`` is.
tests/agent/test_isolation.py proves both.

``small_store`` is the small deterministic store :mod:`stores` documents (every timestamp
relative to ``T0 = 2025-03-10T12:00:00Z``: three cameras, six featured outputs with planted
faults, background outputs for baselines); ``store_con`` a hardened read-only connection to
it; ``call(tool, **args)`` runs a tool on it through the registry.

The LLM is faked by :class:`fakes.ScriptedModel` alone (not a fixture: import it): ``enqueue``
ChatResult/str/dict/exception answers, a ``default`` once they run out, an optional
``threading.Event`` gate, and ``history`` of every call's arguments;
``fakes.sensor_model(gate)`` always answers ``fakes.SENSOR_DRAFT``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from stores import build_small_store

from tools.base import ToolResult
from tools.registry import get_tool
from tools.store.connection import open_readonly

# Variables Settings reads (FOREST_*, and the OPENAI_*/SLACK_* aliases) plus the SDKs' own
# (OPENAI_ORG_ID...). FOREST_RECORD_* are kept: they are not Settings fields (nothing in Forest
# reads them) but `make record` (evals/record_cassettes.sh) passes the real server's URL to
# tests/replay in FOREST_RECORD_BASE_URL. The replay modules read it at import time, before any
# fixture runs, so clearing it would not break today's recording, but a fixture or test that
# read it later would silently replay against the default URL instead of recording.
_CLEARED_PREFIXES = ("FOREST_", "OPENAI_", "SLACK_")
_KEPT_PREFIXES = ("FOREST_RECORD_",)


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a non-loopback host. Mark it ``@pytest.mark.network`` if it must."""


def _is_loopback(host: str | bytes) -> bool:
    name = (host.decode() if isinstance(host, bytes) else host).split("%", 1)[0].lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_ip_literal(host: str | bytes) -> bool:
    try:
        ipaddress.ip_address((host.decode() if isinstance(host, bytes) else host).split("%", 1)[0])
    except ValueError:
        return False
    return True


def _blocked(what: str, target: object) -> NetworkBlockedError:
    return NetworkBlockedError(
        f"network access is blocked in tests: {what} {target!r} is not loopback "
        "(127.0.0.0/8, ::1, localhost); mark the test @pytest.mark.network to allow it"
    )


def _guard_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
        # AF_UNIX (a path) and other families pass; only IP connections are checked. The
        # check runs before the real connect, so nothing is ever sent to a blocked address.
        ip = self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)
        if ip and not _is_loopback(address[0]):
            raise _blocked("connection to", address)
        return original(self, address, *args, **kwargs)

    return connect


def _guard_getaddrinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # IP literals need no DNS (connect decides about them); any other name but localhost
        # would be a lookup on the network
        if host and not _is_loopback(host) and not _is_ip_literal(host):
            raise _blocked("name lookup of", host)
        return original(host, *args, **kwargs)

    return getaddrinfo


def _recording(request: pytest.FixtureRequest) -> bool:
    """A vcr test run with ``--record-mode`` other than none (``make record``): it must reach
    the real server, as pytest-recording's own block_network allows while recording."""
    mode = request.config.getoption("--record-mode", default=None)
    return request.node.get_closest_marker("vcr") is not None and mode not in (None, "none")


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: no FOREST_*/OPENAI_*/SLACK_* variable from the developer's shell (so Settings
    sees only what the test passes: no LLM tier, no Slack), and no network beyond loopback
    unless the test is marked ``@pytest.mark.network`` (or records cassettes).

    Loopback stays open for the uvicorn servers and fakes tests run on 127.0.0.1; subprocesses
    inherit the cleared environment but not the socket guard. The guard wraps whatever
    ``socket.socket.connect`` is when it is installed, so it stacks with pytest-recording's
    ``block_network`` marker (stricter: it blocks loopback too) in either fixture order:
    monkeypatch restores exactly what it replaced.
    """
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES) and not name.startswith(_KEPT_PREFIXES):
            monkeypatch.delenv(name)
    if request.node.get_closest_marker("network") is not None or _recording(request):
        return
    monkeypatch.setattr(socket.socket, "connect", _guard_connect(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guard_connect(socket.socket.connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", _guard_getaddrinfo(socket.getaddrinfo))


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
