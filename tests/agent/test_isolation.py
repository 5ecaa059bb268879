"""Tests cannot read the developer's shell or reach the network (``_isolated`` in conftest)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("isolation_probe.py")
ROOT = Path(__file__).resolve().parents[2]  # the rootdir: pyproject.toml's [tool.pytest]
BLOCKED = "network access is blocked in tests"
TEST_NET = ("192.0.2.1", 80)  # RFC 5737 TEST-NET-1: never routed, never reached
# captured at import (collection), before any per-test guard is installed
GETADDRINFO = socket.getaddrinfo


def test_llm_and_slack_settings_in_the_shell_do_not_reach_tests() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env |= {
        "OPENAI_API_KEY": "sk-fake",
        "FOREST_LLM_BASE_URL": "http://192.0.2.1/v1",
        "SLACK_BOT_TOKEN": "xoxb-fake",
        "SLACK_SIGNING_SECRET": "fake",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PROBE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout, done.stdout


def test_a_connection_beyond_loopback_raises_before_anything_is_sent() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        with pytest.raises(RuntimeError, match=BLOCKED) as blocked:
            sock.connect(TEST_NET)
        assert type(blocked.value).__name__ == "NetworkBlockedError"
        with pytest.raises(RuntimeError, match=BLOCKED):
            sock.connect_ex(TEST_NET)
        assert time.monotonic() - started < 1  # refused here, no SYN waiting for a timeout
        with pytest.raises(OSError):
            sock.getpeername()  # never connected
    with pytest.raises(RuntimeError, match=BLOCKED):
        socket.create_connection(("example.com", 443), timeout=5)  # the name lookup is refused
    with pytest.raises(RuntimeError, match=BLOCKED):
        socket.socket(socket.AF_INET6).connect(("2001:db8::1", 80))


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(16))

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_loopback_and_unix_sockets_stay_open(tmp_path: Path) -> None:
    server, port = _echo_server()
    with server, socket.create_connection(("localhost", port), timeout=5) as client:
        client.sendall(b"ping")
        assert client.recv(16) == b"ping"
    assert socket.getaddrinfo("127.0.0.1", port) and socket.getaddrinfo("localhost", port)
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as listener, socket.socket(socket.AF_UNIX) as client:
        listener.bind(path)
        listener.listen()
        client.connect(path)


@pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
def test_the_guard_coexists_with_pytest_recordings_block_network() -> None:
    server, port = _echo_server()
    with server, socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"ping")
        assert client.recv(16) == b"ping"
    with pytest.raises(RuntimeError), socket.socket() as sock:
        sock.connect(TEST_NET)


@pytest.mark.network
def test_the_network_marker_lifts_the_guard() -> None:
    assert socket.getaddrinfo is GETADDRINFO  # nothing is reached: only the guard is checked
