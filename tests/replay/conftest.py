"""The real-HTTP path: cassettes recorded from a real server, replayed with the network
blocked. Cassettes live in ``cassettes/<test module>/<test>.yaml`` beside these tests."""

from __future__ import annotations

from typing import Any

import pytest
from cassettes import ReadableYaml


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """Cassettes are stored as readable YAML (see tests/replay/cassettes.py)."""
    vcr.register_serializer("yaml", ReadableYaml())
