"""The ``llm`` reasoner: the model reads the sweep, may call tools within budget, then answers.

Capability modes (settings) because servers differ:

- structured output: ``json_schema`` (OpenAI, vLLM), ``json_object`` with a ``schema``
  (llama.cpp's server rejects ``json_schema``), or ``text`` (JSON parsed out of prose);
- tool choice: ``auto`` (the model picks), ``forced`` (code picks the most useful next
  tool and the model fills its arguments — small local models never call tools under
  ``auto``), or ``none``.

Whatever the server claims, the answer is validated by pydantic. An invalid answer gets
a bounded repair turn carrying the validation error (tenacity); an answer still invalid
after that, or an endpoint failure, ends as an ``inconclusive`` draft with the error.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import ValidationError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from agent.dag import Lineage
from agent.evidence import PlannedCall, run_calls
from agent.llm import ChatModel, ChatResult, ToolCallRequest
from agent.prompts import data_block, render
from agent.schemas import ActionKind, ActionPlan, Category, VerdictDraft
from agent.settings import Settings
from tools.errors import LLMError
from tools.registry import TOOLS, openai_tools

__all__ = ["AnswerInvalid", "LLMUsage", "answer_format", "parse_answer", "validation_text"]

_FORCED_ORDER = ("search_logs", "get_config_history", "get_component_changes", "get_run")


class AnswerInvalid(Exception):
    """The model's answer is not a valid verdict (the message is fed back to it)."""


@dataclass(frozen=True)
class LLMUsage:
    purpose: str
    prompt_tokens: int
    completion_tokens: int


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


class LLMSession:
    """Budgets and bookkeeping of one LLM investigation (lives in the graph context)."""

    def __init__(self, model: ChatModel, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        self.started = time.monotonic()
        self.usage: list[LLMUsage] = []
        self.tool_rounds = 0
        self.tool_calls = 0
        self.repairs = 0

    def budget_left(self) -> str | None:
        """None while tools may still be called, else the reason the budget is spent."""
        s = self.settings
        if s.llm_tool_choice == "none":
            return "tool calling disabled"
        if len(self.usage) >= s.llm_max_calls - 1:
            return f"{s.llm_max_calls} LLM calls"
        if self.tool_calls >= s.llm_max_tool_calls:
            return f"{s.llm_max_tool_calls} tool calls"
        if s.llm_tool_choice == "forced" and self.tool_rounds >= s.llm_forced_tool_rounds:
            return f"{s.llm_forced_tool_rounds} forced tool rounds"
        if sum(u.prompt_tokens for u in self.usage) >= s.llm_max_prompt_tokens:
            return f"{s.llm_max_prompt_tokens} prompt tokens"
        if time.monotonic() - self.started >= s.llm_wall_time_s:
            return f"{s.llm_wall_time_s:g}s wall time"
        return None

    def call(self, purpose: str, messages: list[dict[str, Any]], **kwargs: Any) -> ChatResult:
        try:
            result = self.model.chat(messages, **kwargs)
        except LLMError:
            self.usage.append(LLMUsage(f"{purpose} (failed)", 0, 0))  # attempts count too
            raise
        self.usage.append(LLMUsage(purpose, result.prompt_tokens, result.completion_tokens))
        return result

    def tool_turn(self, messages: list[dict[str, Any]], focus: str | None) -> ChatResult:
        if self.settings.llm_tool_choice == "forced":
            name = _FORCED_ORDER[self.tool_rounds % len(_FORCED_ORDER)]
            hint = f"Call {name} now" + (f" about node {focus}." if focus else ".")
            result = self.call(
                "tool",
                [*messages, {"role": "user", "content": hint}],
                tools=[TOOLS[name].openai_schema()],
                tool_choice={"type": "function", "function": {"name": name}},
            )
        else:
            result = self.call("tool", messages, tools=openai_tools(), tool_choice="auto")
        self.tool_rounds += 1
        return result

    def answer(self, messages: list[dict[str, Any]], schema: dict[str, Any]) -> ChatResult:
        result = self.call("answer", messages, response_format=answer_format(self.settings, schema))
        if result.finish_reason == "length":
            raise LLMError(
                f"the answer was cut off at {self.settings.llm_max_tokens} tokens "
                "(raise FOREST_LLM_MAX_TOKENS)"
            )
        return result

    def answer_with_repair(
        self,
        messages: list[dict[str, Any]],
        lineage: Lineage,
        evidence_ids: list[str],
        first: ChatResult | None,
    ) -> VerdictDraft:
        """Parse the answer; on failure feed the error back, at most ``llm_max_repairs`` times."""
        schema = answer_schema(
            lineage, evidence_ids, lean=self.settings.llm_structured_output == "json_object"
        )
        convo = list(messages)
        pending = first
        for attempt in Retrying(
            stop=stop_after_attempt(self.settings.llm_max_repairs + 1),
            retry=retry_if_exception_type(AnswerInvalid),
            reraise=True,
        ):
            with attempt:
                result = pending or self.answer(convo, schema)
                pending = None
                try:
                    return parse_answer(result.content)
                except AnswerInvalid as exc:
                    convo += [
                        {"role": "assistant", "content": result.content or ""},
                        {
                            "role": "user",
                            "content": render(
                                "repair",
                                error=str(exc),
                                nodes=lineage.order,
                                evidence_ids=evidence_ids,
                                categories=get_args(Category),
                                actions=get_args(ActionKind),
                            ),
                        },
                    ]
                    if attempt.retry_state.attempt_number <= self.settings.llm_max_repairs:
                        self.repairs += 1
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last error")


def assistant_message(result: ChatResult) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.content or ""}
    if result.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in result.tool_calls
        ]
    return message


def execute_tool_calls(
    con: Any, calls: list[ToolCallRequest], *, first_index: int, allowed: int
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Run the model's tool calls (bounded), returning evidence and the tool messages."""
    planned: list[PlannedCall] = []
    messages: list[dict[str, Any]] = []
    for call in calls[: max(allowed, 0)]:
        try:
            args = json.loads(call.arguments or "{}")
        except json.JSONDecodeError:
            args = {"_unparseable_arguments": call.arguments[:200]}
        planned.append(PlannedCall(call.name, args if isinstance(args, dict) else {"_": args}))
    evidence = run_calls(con, planned, first_index=first_index)
    for call, ev in zip(calls, evidence, strict=False):
        body = {
            "evidence_id": ev.id,
            "status": ev.status,
            "finding": ev.finding,
            "flags": [f.model_dump() for f in ev.flags],
            "data": ev.data,
        }
        messages.append(
            {"role": "tool", "tool_call_id": call.id, "content": data_block(body, ev.id)[:12_000]}
        )
    for call in calls[max(allowed, 0) :]:
        messages.append(
            {"role": "tool", "tool_call_id": call.id, "content": "not run: tool-call budget spent"}
        )
    return evidence, messages


def fallback_draft(error: str, evaluation_id: str, *, intake: bool = False) -> VerdictDraft:
    """What an investigation ends as when no valid answer could be had: the LLM failed, or
    (``intake``) the evaluation's output or its lineage is not in the store."""
    if intake:
        instructions = (
            f"Forest could not investigate: {error}. Load the output and its lineage into "
            "the store (`forest ingest`), then investigate again."
        )
        summary = f"Not investigated: {error}"
    else:
        instructions = f"The LLM investigation failed: {error}"
        summary = f"No valid verdict could be obtained from the model: {error}"
    return VerdictDraft(
        category="inconclusive",
        failing_node=None,
        causal_path=[],
        action=ActionPlan(
            kind="escalate_human", target=evaluation_id, instructions=instructions[:1000]
        ),
        confidence=0.0,
        summary=summary[:2000],
    )
