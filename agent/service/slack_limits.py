"""Slack's Block Kit limits, as a checker: ``check_block_kit_limits(payload) -> [problems]``.

The tests run it on every message and modal the bot sends; the renderers in
:mod:`agent.service.slack_blocks` clip text so it finds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["check_block_kit_limits"]

FALLBACK_TEXT = 3000  # Slack allows 40,000 in a message's text; a notification shows far less
SECTION_TEXT = 3000
FIELD_TEXT = 2000
HEADER_TEXT = 150
MAX_OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150

_VIEW_TEXT = {"title": 24, "submit": 24, "close": 24}


def check_block_kit_limits(payload: Mapping[str, Any]) -> list[str]:
    """Where ``payload`` breaks Slack's Block Kit limits; empty when it keeps them.

    ``payload`` is a message (``text`` + ``blocks``) or a view (``"type": "modal"``). The
    message ``text`` is held to Forest's own 3000 chars (Slack's limit is 40,000).
    """
    out: list[str] = []
    blocks = payload.get("blocks") or []
    if payload.get("type") == "modal":
        for key, limit in _VIEW_TEXT.items():
            if key in payload:
                _text(out, key, payload[key], limit, plain=True)
        _length(out, "private_metadata", payload.get("private_metadata") or "", 3000)
        _length(out, "callback_id", payload.get("callback_id") or "", 255)
        _count(out, "blocks", blocks, 100)
    else:
        _length(out, "text", payload.get("text") or "", FALLBACK_TEXT)
        _count(out, "blocks", blocks, 50)
    for i, block in enumerate(blocks):
        _block(out, f"blocks[{i}]", block)
    return out


def _length(out: list[str], where: str, value: Any, limit: int) -> None:
    if not isinstance(value, str):
        out.append(f"{where}: not a string")
    elif len(value) > limit:
        out.append(f"{where}: {len(value)} chars > {limit}")


def _count(out: list[str], where: str, items: Any, limit: int) -> None:
    if not isinstance(items, list):
        out.append(f"{where}: not a list")
    elif len(items) > limit:
        out.append(f"{where}: {len(items)} items > {limit}")


def _text(out: list[str], where: str, obj: Any, limit: int, *, plain: bool = False) -> None:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("text"), str):
        out.append(f"{where}: not a text object")
        return
    if plain and obj.get("type") != "plain_text":
        out.append(f"{where}: must be plain_text")
    if not obj["text"]:
        out.append(f"{where}: empty text")
    _length(out, where, obj["text"], limit)


def _block(out: list[str], where: str, block: Mapping[str, Any]) -> None:
    _length(out, f"{where}.block_id", block.get("block_id", ""), 255)
    kind = block.get("type")
    elements = block.get("elements") or []
    if kind == "header":
        _text(out, f"{where}.text", block.get("text"), HEADER_TEXT, plain=True)
    elif kind == "section":
        fields = block.get("fields") or []
        if "text" in block or not fields:
            _text(out, f"{where}.text", block.get("text"), SECTION_TEXT)
        _count(out, f"{where}.fields", fields, 10)
        for j, field in enumerate(fields):
            _text(out, f"{where}.fields[{j}]", field, FIELD_TEXT)
        if "accessory" in block:
            _element(out, f"{where}.accessory", block["accessory"])
    elif kind == "context":
        _count(out, f"{where}.elements", elements, 10)
        for j, element in enumerate(elements):
            if element.get("type") in ("mrkdwn", "plain_text"):
                _text(out, f"{where}.elements[{j}]", element, SECTION_TEXT)
    elif kind == "actions":
        _count(out, f"{where}.elements", elements, 25)
        for j, element in enumerate(elements):
            _element(out, f"{where}.elements[{j}]", element)
    elif kind == "input":
        _text(out, f"{where}.label", block.get("label"), 2000, plain=True)
        _element(out, f"{where}.element", block.get("element") or {})
    elif kind != "divider":
        out.append(f"{where}: unchecked block type {kind!r}")


def _element(out: list[str], where: str, element: Mapping[str, Any]) -> None:
    _length(out, f"{where}.action_id", element.get("action_id", ""), 255)
    kind = element.get("type")
    if "placeholder" in element:
        _text(out, f"{where}.placeholder", element["placeholder"], 150, plain=True)
    if kind == "button":
        _text(out, f"{where}.text", element.get("text"), 75, plain=True)
        _length(out, f"{where}.value", element.get("value", ""), 2000)
        _length(out, f"{where}.url", element.get("url", ""), 3000)
    elif kind == "static_select":
        options = element.get("options") or []
        _count(out, f"{where}.options", options, MAX_OPTIONS)
        initial = [element["initial_option"]] if "initial_option" in element else []
        for j, option in enumerate([*options, *initial]):
            _text(out, f"{where}.options[{j}].text", option.get("text"), OPTION_TEXT, plain=True)
            _length(out, f"{where}.options[{j}].value", option.get("value"), OPTION_VALUE)
    elif kind == "plain_text_input":
        max_length = element.get("max_length", 3000)
        if not isinstance(max_length, int) or not 1 <= max_length <= 3000:
            out.append(f"{where}.max_length: {max_length!r} not in 1..3000")
        _length(out, f"{where}.initial_value", element.get("initial_value", ""), 3000)
    else:
        out.append(f"{where}: unchecked element type {kind!r}")
