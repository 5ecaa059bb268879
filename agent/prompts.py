"""Rendering the Jinja templates in ``prompts/`` (StrictUndefined; clock injected by callers)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["PROMPT_FILES", "data_block", "prompt_hash", "render"]

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
PROMPT_FILES = (
    "system.md.j2",
    "investigate.md.j2",
    "repair.md.j2",
    "budget.md.j2",
    "_evidence_rules.md.j2",
)


def data_block(value: Any, source: str) -> str:
    """Wrap untrusted content in a delimited block it cannot close or spoof."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = text.replace("<data", "<\u200bdata").replace("</data", "<\u200b/data")
    return f'<data source="{source}">\n{text}\n</data>'


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPTS_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["data"] = data_block
    env.filters["tojson_compact"] = lambda v: json.dumps(v, sort_keys=True, default=str)
    return env


def render(name: str, **context: Any) -> str:
    """Render ``prompts/<name>.md.j2``; a missing variable is an error, not an empty string."""
    return _env().get_template(f"{name}.md.j2").render(**context)


@cache
def prompt_hash() -> str:
    """Hash of every template's source: changes when any prompt text changes."""
    digest = hashlib.sha256()
    for name in PROMPT_FILES:
        digest.update(name.encode())
        digest.update((PROMPTS_DIR / name).read_bytes())
    return digest.hexdigest()[:16]
