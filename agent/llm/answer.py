"""The LLM tier's answer: the schema it is asked for, parsing and validation of what it
says, and the error text a repair turn feeds back.

Whatever the server claims, the answer is validated by pydantic here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from agent.dag import Lineage
from agent.schemas import VerdictDraft
from agent.settings import Settings

__all__ = ["AnswerInvalid", "answer_format", "answer_schema", "parse_answer", "validation_text"]


class AnswerInvalid(Exception):
    """The model's answer is not a valid verdict (the message is fed back to it)."""


_GRAMMAR_HOSTILE = (
    "maxLength",
    "minLength",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "default",
    "title",
)


def _strip(node: Any) -> Any:
    """Drop bounds that grammar-constrained servers expand into huge grammars (llama.cpp
    turned ``maxLength: 2000`` into a grammar it could not parse and died); pydantic still
    enforces them on the answer."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in _GRAMMAR_HOSTILE}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def answer_schema(lineage: Lineage, evidence_ids: list[str], *, lean: bool) -> dict[str, Any]:
    """The VerdictDraft schema with this run's node and evidence ids as enums.

    ``lean`` (for grammar-constrained servers) keeps the core fields and bounds the arrays:
    with unbounded ``components``/``hypotheses`` a 270M model rambled to the token cap.
    """
    schema = _strip(VerdictDraft.model_json_schema())
    props = schema["properties"]
    nodes = list(lineage.order)
    props["failing_node"] = {"anyOf": [{"enum": nodes}, {"type": "null"}]}
    props["causal_path"] = {"type": "array", "items": {"enum": nodes}, "maxItems": len(nodes)}
    if evidence_ids:
        props["evidence_ids"] = {"type": "array", "items": {"enum": evidence_ids}, "maxItems": 6}
    if lean:
        for name in ("components", "hypotheses"):
            props.pop(name, None)
        action = schema["$defs"]["ActionPlan"]["properties"]
        action.pop("instructions", None)
        schema["required"] = [
            "category",
            "failing_node",
            "causal_path",
            "action",
            "confidence",
            "summary",
            "evidence_ids",
        ]
        schema["$defs"] = {"ActionPlan": schema["$defs"]["ActionPlan"]}
    return schema


def answer_format(settings: Settings, schema: dict[str, Any]) -> dict[str, Any] | None:
    mode = settings.llm_structured_output
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": schema, "strict": False},
        }
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    return None


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def parse_answer(text: str | None) -> VerdictDraft:
    """Parse and validate an answer; raise AnswerInvalid with a message fit to feed back."""
    if not text or not text.strip():
        raise AnswerInvalid("the answer was empty; a JSON object was expected")
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise AnswerInvalid("no JSON object found in the answer")
    try:
        raw = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise AnswerInvalid(f"invalid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(raw, dict):
        raise AnswerInvalid("the answer must be a JSON object")
    if isinstance(raw.get("action"), str):  # a common shape slip: action given as its kind
        raw["action"] = {"kind": raw["action"]}
    try:
        return VerdictDraft.model_validate(raw)
    except ValidationError as exc:
        raise AnswerInvalid(validation_text(exc)) from exc


def validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']} (got {str(e['input'])[:60]!r})"
        for e in exc.errors()[:8]
    )
