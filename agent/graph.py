"""The investigation graph: intake → sweep → reason ⇄ act → verdict → ground → route → persist.

No node retries: tools never raise (they return error results), LLM transport retries
belong to the SDK and answer repair to tenacity inside ``verdict``.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agent import __version__
from agent.dag import Lineage
from agent.evidence import PlannedCall, run_calls
from agent.grounding import evaluation_reliability, gate_for, ground, route
from agent.llm_reasoner import (
    AnswerInvalid,
    assistant_message,
    execute_tool_calls,
    fallback_draft,
)
from agent.prompts import prompt_hash, render
from agent.rules import reason_with_rules
from agent.schemas import Provenance, Verdict
from agent.state import (
    InvestigationContext,
    InvestigationInput,
    InvestigationOutput,
    InvestigationState,
)
from agent.sweep import plan_sweep
from tools.errors import LLMError
from tools.registry import TOOLSET_VERSION
from tools.store.redact import redact

__all__ = ["build_graph"]

Ctx = Runtime[InvestigationContext]


def intake(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    ctx, evaluation = runtime.context, state["evaluation"]
    args = {"output_id": evaluation.output_id}
    evidence = run_calls(
        ctx.con,
        [PlannedCall("get_output", args), PlannedCall("get_lineage", args)],
        first_index=1,
    )
    output_ev, lineage_ev = evidence
    update: dict[str, Any] = {"evidence": evidence, "intake_error": None}
    if output_ev.status != "ok":
        update["intake_error"] = f"output {evaluation.output_id!r}: {output_ev.finding}"
        return update
    output = output_ev.data.get("output", output_ev.data)
    lineage = Lineage.from_tool_data(lineage_ev.data or {}) if lineage_ev.status == "ok" else None
    if lineage is None or not lineage.nodes:
        update["intake_error"] = (
            f"output {evaluation.output_id!r} has no lineage ({lineage_ev.finding})"
        )
        return update
    return {**update, "output": output, "captured_at": output["captured_at"], "lineage": lineage}


def route_after_intake(state: InvestigationState) -> Literal["sweep", "verdict"]:
    return "verdict" if state.get("intake_error") else "sweep"


def sweep(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    calls = plan_sweep(state["evaluation"], state["captured_at"] or "", _lineage(state))
    evidence = run_calls(ctx.con, calls, first_index=len(state["evidence"]) + 1, pool=ctx.pool)
    return {"evidence": evidence}


def reason(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    lineage = _lineage(state)
    if ctx.session is None:
        draft = reason_with_rules(
            state["evaluation"],
            lineage,
            state["evidence"],
            abstain_margin=ctx.settings.abstain_margin,
        )
        return {"draft": draft}
    session = ctx.session
    new: list[dict[str, Any]] = []
    if not state.get("messages"):
        new = _initial_messages(state, ctx)
    messages = [*state.get("messages", []), *new]
    try:
        spent = session.budget_left()
        if spent is None:
            result = session.tool_turn(messages, _focus(state))
            if result.tool_calls:
                return {"messages": [*new, assistant_message(result)], "pending": result.tool_calls}
            return {"messages": new, "answer": result, "pending": []}
        if ctx.settings.llm_tool_choice == "none":  # the prompt already asked for the answer
            return {"messages": new, "answer": None, "pending": []}
        budget_msg = {"role": "user", "content": render("budget", reason=spent)}
        return {"messages": [*new, budget_msg], "answer": None, "pending": []}
    except LLMError as exc:
        return {"messages": new, "errors": [str(exc)], "pending": []}


def route_after_reason(state: InvestigationState) -> Literal["act", "verdict"]:
    return "act" if state.get("pending") else "verdict"


def act(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    session = ctx.session
    assert session is not None
    allowed = ctx.settings.llm_max_tool_calls - session.tool_calls
    evidence, messages = execute_tool_calls(
        ctx.con, state["pending"], first_index=len(state["evidence"]) + 1, allowed=allowed
    )
    session.tool_calls += len(evidence)
    return {"evidence": evidence, "messages": messages, "pending": []}


def verdict(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    evaluation_id = state["evaluation"].evaluation_id
    if state.get("intake_error"):
        return {"draft": fallback_draft(state["intake_error"] or "", evaluation_id, intake=True)}
    if ctx.session is None:
        return {}
    if state.get("errors"):
        return {"draft": fallback_draft(state["errors"][-1], evaluation_id)}
    try:
        draft = ctx.session.answer_with_repair(
            state["messages"],
            _lineage(state),
            [e.id for e in state["evidence"]],
            state.get("answer"),
        )
    except (AnswerInvalid, LLMError) as exc:
        error = (
            f"invalid answer after {ctx.session.repairs} repair(s): {exc}"
            if isinstance(exc, AnswerInvalid)
            else str(exc)
        )
        return {"draft": fallback_draft(error, evaluation_id), "errors": [error]}
    return {"draft": draft}


def ground_node(state: InvestigationState) -> dict[str, Any]:
    lineage = state.get("lineage")
    if lineage is None:
        return {}
    draft = state["draft"]
    assert draft is not None, "verdict always sets a draft"
    draft, notes = ground(draft, lineage, state["evidence"])
    return {"draft": draft, "notes": notes}


def route_node(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    evaluation, draft = state["evaluation"], state["draft"]
    assert draft is not None
    reliability = evaluation_reliability(evaluation, state["evidence"])
    action, to_training = route(
        draft, reliability, state["evidence"], train_confidence=ctx.settings.train_confidence
    )
    session = ctx.session
    provenance = Provenance(
        reasoner="llm" if session else "rules",
        model=session.model.model if session else None,
        prompt_hash=prompt_hash() if session else None,
        toolset_version=TOOLSET_VERSION,
        store_snapshot=ctx.store_snapshot,
        forest_version=__version__,
        prompt_tokens=sum(u.prompt_tokens for u in session.usage) if session else 0,
        completion_tokens=sum(u.completion_tokens for u in session.usage) if session else 0,
        llm_calls=len(session.usage) if session else 0,
        tool_calls=len(state["evidence"]),
        repairs=session.repairs if session else 0,
        duration_s=round((ctx.clock() - ctx.started_at).total_seconds(), 3),
        started_at=ctx.started_at,
        errors=[e for e in [state.get("intake_error"), *state.get("errors", [])] if e],
        grounding_notes=state.get("notes", []),
    )
    result = Verdict(
        verdict_id=f"vd-{uuid.uuid4().hex[:16]}",
        evaluation_id=evaluation.evaluation_id,
        output_id=evaluation.output_id,
        category=draft.category,
        failing_node=draft.failing_node,
        causal_path=draft.causal_path,
        components=draft.components,
        evidence=state["evidence"],
        hypotheses=draft.hypotheses,
        evaluation_reliability=reliability,
        action=action,
        route_to_training=to_training,
        gate=gate_for(draft.category, to_training),
        confidence=draft.confidence,
        summary=draft.summary,
        provenance=provenance,
    )
    return {"verdict": result}


def persist(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    sink = runtime.context.sink
    verdict = state.get("verdict")
    if sink is not None and verdict is not None and not state.get("intake_error"):
        sink(verdict)
    return {}


def _initial_messages(state: InvestigationState, ctx: InvestigationContext) -> list[dict[str, Any]]:
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


def _lineage(state: InvestigationState) -> Lineage:
    lineage = state.get("lineage")
    assert lineage is not None, "only reached after a successful intake"
    return lineage


def _focus(state: InvestigationState) -> str | None:
    """The node with the most major flags: where a forced tool call is pointed."""
    counts: dict[str, int] = {}
    for e in state["evidence"]:
        for f in e.flags:
            if f.severity == "major" and f.node and f.relative != "after_capture":
                counts[f.node] = counts.get(f.node, 0) + 1
    return max(counts, key=lambda n: counts[n]) if counts else None


@cache
def build_graph() -> Any:
    """Compile the investigation graph once per process."""
    graph = StateGraph(
        InvestigationState,
        context_schema=InvestigationContext,
        input_schema=InvestigationInput,
        output_schema=InvestigationOutput,
    )
    graph.add_node("intake", intake)
    graph.add_node("sweep", sweep)
    graph.add_node("reason", reason)
    graph.add_node("act", act)
    graph.add_node("verdict", verdict)
    graph.add_node("ground", ground_node)
    graph.add_node("route", route_node)
    graph.add_node("persist", persist)
    graph.add_edge(START, "intake")
    graph.add_conditional_edges("intake", route_after_intake)
    graph.add_edge("sweep", "reason")
    graph.add_conditional_edges("reason", route_after_reason)
    graph.add_edge("act", "reason")
    graph.add_edge("verdict", "ground")
    graph.add_edge("ground", "route")
    graph.add_edge("route", "persist")
    graph.add_edge("persist", END)
    return graph.compile()
