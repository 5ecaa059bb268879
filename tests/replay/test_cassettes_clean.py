"""Recorded cassettes must carry no secrets and no identifying headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

CASSETTES = sorted((Path(__file__).parent / "cassettes").rglob("*.yaml"))
SECRET = re.compile(
    r"sk-[A-Za-z0-9_-]{16,}|Bearer\s+[A-Za-z0-9._~+/=-]{8,}|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|not-a-real-key|hunter2"
)
BANNED_HEADERS = (
    "authorization",
    "cookie",
    "set-cookie",
    "openai-organization",
    "openai-project",
    "api-key",
)


def test_there_are_cassettes_for_every_replay_test():
    names = {p.stem for p in CASSETTES if p.parent.name == "test_llm_replay"}
    source = (Path(__file__).parent / "test_llm_replay.py").read_text()
    tests = set(re.findall(r"^def (test_\w+)", source, re.M))
    assert tests and tests <= names, f"missing cassettes: {sorted(tests - names)}"


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: p.stem)
def test_cassette_has_no_secret_or_identifying_header(path: Path):
    text = path.read_text(encoding="utf-8")
    found = SECRET.findall(text)
    assert not found, f"{path.name}: secret-like text {found[:3]}"
    for item in yaml.safe_load(text)["interactions"]:
        for part in ("request", "response"):
            for header in item[part].get("headers", {}):
                low = header.lower()
                assert low not in BANNED_HEADERS and not low.startswith(("x-", "cf-")), (
                    f"{path.name}: {part} header {header!r} must be scrubbed"
                )
