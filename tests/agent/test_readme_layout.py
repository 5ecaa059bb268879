"""The README's Layout section names every module of the house, and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED = ["agent", "agent/llm", "agent/service", "tools", "tools/store", "evals"]


def _layout() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout\n", 1)[1]
    return section.split("```")[1]


def test_every_module_is_in_the_layout() -> None:
    block = _layout()
    words = set(re.findall(r"[A-Za-z_]+", block))
    missing = []
    for folder in CHECKED:
        for path in sorted((REPO / folder).glob("*.py")):
            if path.name in ("__init__.py", "_version.py"):
                continue
            if path.name not in block and not (folder == "tools" and path.stem in words):
                missing.append(f"{folder}/{path.name}")
    assert missing == []


def test_every_file_and_folder_the_layout_names_exists() -> None:
    block = _layout()
    existing = {p.name for p in REPO.rglob("*") if ".venv" not in p.parts}
    named = set(re.findall(r"[\w.]+\.(?:py|sh|yaml)\b", block))
    folders = set(re.findall(r"([\w]+)/", block))
    assert named - existing == set()
    assert {f for f in folders if not any(p.is_dir() for p in REPO.rglob(f))} == set()
