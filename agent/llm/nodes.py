"""The LLM tier's nodes: ask the model (tools or answer), run the tools it asked for, take
its answer with bounded repair turns.

Capability modes (settings) because servers differ:

- structured output: ``json_schema`` (OpenAI, vLLM), ``json_object`` with a ``schema``
  (llama.cpp's server rejects ``json_schema``), or ``text`` (JSON parsed out of prose);
- tool choice: ``auto`` (the model picks), ``forced`` (code picks the most useful next
  tool and the model fills its arguments — small local models never call tools under
  ``auto``), or ``none``.

Every node returns what it spent (``llm_usage``, ``llm_tool_calls``, ``tool_rounds``,
``repairs``) as a partial update; the budget is :func:`agent.llm.budget.budget_spent` of
those. Transport retries belong to the SDK, answer repair to tenacity (``answer``); an
answer still invalid after the repairs, or an endpoint failure, ends as an
``inconclusive`` draft with the error.
"""

from __future__ import annotations

import json
from typing import Any, get_args

from langgraph.runtime import Runtime
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from agent.chat import ChatModel, ChatResult, LLMUsage, ToolCallRequest
from agent.dag import Lineage
from agent.evidence import PlannedCall, run_calls
from agent.fallback import fallback_draft
from agent.llm.answer import AnswerInvalid, answer_format, answer_schema, parse_answer
from agent.llm.budget import budget_spent
from agent.llm.state import LLMState
from agent.prompts import data_block, render
from agent.schemas import ActionKind, Category, Evidence
from agent.settings import Settings
from agent.state import InvestigationContext
from tools.errors import LLMError
from tools.registry import TOOLS, openai_tools
from tools.store.redact import redact

__all__ = ["answer", "call_model", "call_tools"]

Ctx = Runtime[InvestigationContext]

_FORCED_ORDER = ("search_logs", "get_config_history", "get_component_changes", "get_run")


def call_model(state: LLMState, runtime: Ctx) -> dict[str, Any]:
    """One tool turn while the budget lasts; once it is spent, ask for the answer."""
    ctx = runtime.context
    settings = ctx.settings
    new = [] if state.get("messages") else _initial_messages(state, ctx)
    messages = [*state.get("messages", []), *new]
    usage = state.get("llm_usage", [])
    spent = budget_spent(
        settings,
        usage,
        tool_calls=state.get("llm_tool_calls", 0),
        tool_rounds=state.get("tool_rounds", 0),
        elapsed_s=(ctx.clock() - ctx.started_at).total_seconds(),
    )
    if spent is not None:
        if settings.llm_tool_choice == "none":  # the prompt already asked for the answer
            return {"messages": new, "answer": None, "pending": []}
        budget_msg = {"role": "user", "content": render("budget", reason=spent)}
        return {"messages": [*new, budget_msg], "answer": None, "pending": []}
    spending: list[LLMUsage] = []
    try:
        result = _tool_turn(
            _model(ctx), settings, messages, _focus(state), state.get("tool_rounds", 0), spending
        )
    except LLMError as exc:
        return {"messages": new, "errors": [str(exc)], "pending": [], "llm_usage": spending}
    update: dict[str, Any] = {"llm_usage": spending, "tool_rounds": 1}
    if result.tool_calls:
        return {
            **update,
            "messages": [*new, _assistant_message(result)],
            "pending": result.tool_calls,
        }
    return {**update, "messages": new, "answer": result, "pending": []}


def call_tools(state: LLMState, runtime: Ctx) -> dict[str, Any]:
    """Run the model's tool calls (no more than the tool budget has left)."""
    ctx = runtime.context
    allowed = ctx.settings.llm_max_tool_calls - state.get("llm_tool_calls", 0)
    evidence, messages = _execute_tool_calls(
        ctx.con, state["pending"], first_index=len(state["evidence"]) + 1, allowed=allowed
    )
    return {
        "evidence": evidence,
        "messages": messages,
        "pending": [],
        "llm_tool_calls": len(evidence),
    }


def answer(state: LLMState, runtime: Ctx) -> dict[str, Any]:
    """The verdict draft: parsed, validated, repaired at most ``llm_max_repairs`` times."""
    ctx = runtime.context
    evaluation_id = state["evaluation"].evaluation_id
    if state.get("errors"):
        return {"draft": fallback_draft(state["errors"][-1], evaluation_id)}
    spending: list[LLMUsage] = []
    repairs: list[int] = []
    try:
        draft = _answer_with_repair(
            _model(ctx),
            ctx.settings,
            state["messages"],
            _lineage(state),
            [e.id for e in state["evidence"]],
            state.get("answer"),
            spending,
            repairs,
        )
    except (AnswerInvalid, LLMError) as exc:
        error = (
            f"invalid answer after {len(repairs)} repair(s): {exc}"
            if isinstance(exc, AnswerInvalid)
            else str(exc)
        )
        return {
            "draft": fallback_draft(error, evaluation_id),
            "errors": [error],
            "llm_usage": spending,
            "repairs": len(repairs),
        }
    return {"draft": draft, "llm_usage": spending, "repairs": len(repairs)}


def _model(ctx: InvestigationContext) -> ChatModel:
    assert ctx.model is not None, "the LLM tier runs only with a model"
    return ctx.model


def _chat(
    model: ChatModel,
    purpose: str,
    messages: list[dict[str, Any]],
    spending: list[LLMUsage],
    **kwargs: Any,
) -> ChatResult:
    try:
        result = model.chat(messages, **kwargs)
    except LLMError:
        spending.append(LLMUsage(f"{purpose} (failed)", 0, 0))  # attempts count too
        raise
    spending.append(LLMUsage(purpose, result.prompt_tokens, result.completion_tokens))
    return result


def _tool_turn(
    model: ChatModel,
    settings: Settings,
    messages: list[dict[str, Any]],
    focus: str | None,
    rounds: int,
    spending: list[LLMUsage],
) -> ChatResult:
    if settings.llm_tool_choice == "forced":
        name = _FORCED_ORDER[rounds % len(_FORCED_ORDER)]
        hint = f"Call {name} now" + (f" about node {focus}." if focus else ".")
        return _chat(
            model,
            "tool",
            [*messages, {"role": "user", "content": hint}],
            spending,
            tools=[TOOLS[name].openai_schema()],
            tool_choice={"type": "function", "function": {"name": name}},
        )
    return _chat(model, "tool", messages, spending, tools=openai_tools(), tool_choice="auto")


def _answer_with_repair(
    model: ChatModel,
    settings: Settings,
    messages: list[dict[str, Any]],
    lineage: Lineage,
    evidence_ids: list[str],
    first: ChatResult | None,
    spending: list[LLMUsage],
    repairs: list[int],
) -> Any:
    schema = answer_schema(
        lineage, evidence_ids, lean=settings.llm_structured_output == "json_object"
    )
    convo = list(messages)
    pending = first
    for attempt in Retrying(
        stop=stop_after_attempt(settings.llm_max_repairs + 1),
        retry=retry_if_exception_type(AnswerInvalid),
        reraise=True,
    ):
        with attempt:
            result = pending or _ask_answer(model, settings, convo, schema, spending)
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
                if attempt.retry_state.attempt_number <= settings.llm_max_repairs:
                    repairs.append(attempt.retry_state.attempt_number)
                raise
    raise AssertionError("unreachable: tenacity re-raises the last error")


def _ask_answer(
    model: ChatModel,
    settings: Settings,
    messages: list[dict[str, Any]],
    schema: dict[str, Any],
    spending: list[LLMUsage],
) -> ChatResult:
    result = _chat(
        model, "answer", messages, spending, response_format=answer_format(settings, schema)
    )
    if result.finish_reason == "length":
        raise LLMError(
            f"the answer was cut off at {settings.llm_max_tokens} tokens "
            "(raise FOREST_LLM_MAX_TOKENS)"
        )
    return result


def _assistant_message(result: ChatResult) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.content or ""}
    if result.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in result.tool_calls
        ]
    return message


def _execute_tool_calls(
    con: Any, calls: list[ToolCallRequest], *, first_index: int, allowed: int
) -> tuple[list[Evidence], list[dict[str, Any]]]:
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


def _initial_messages(state: LLMState, ctx: InvestigationContext) -> list[dict[str, Any]]:
    lineage = _lineage(state)
    evidence = [
        {
            "id": e.id,
            "tool": e.tool,
            "arguments": e.arguments,
            "status": e.status,
            "finding": e.finding,
            "flags": [f.model_dump() for f in e.flags],
        }
        for e in state["evidence"]
    ]
    budget = ctx.settings.llm_max_tool_calls if ctx.settings.llm_tool_choice != "none" else 0
    return [
        {"role": "system", "content": render("system", now=ctx.started_at.isoformat())},
        {
            "role": "user",
            "content": render(
                "investigate",
                evaluation=redact(state["evaluation"].model_dump(mode="json")),
                output=state["output"],
                lineage={
                    "nodes": [{"node_id": n, "kind": lineage.kind(n)} for n in lineage.order],
                    "edges": [list(e) for e in lineage.edges],
                },
                evidence=evidence,
                tools_available=budget > 0,
                tool_budget=budget,
            ),
        },
    ]


def _lineage(state: LLMState) -> Lineage:
    lineage = state.get("lineage")
    assert lineage is not None, "the LLM tier runs only after a successful intake"
    return lineage


def _focus(state: LLMState) -> str | None:
    """The node with the most major flags: where a forced tool call is pointed."""
    counts: dict[str, int] = {}
    for e in state["evidence"]:
        for f in e.flags:
            if f.severity == "major" and f.node and f.relative != "after_capture":
                counts[f.node] = counts.get(f.node, 0) + 1
    return max(counts, key=lambda n: counts[n]) if counts else None
