"""The investigation's nodes: intake, sweep, the rules tier, the LLM tier (its own
subgraph), ground and finalize. Each returns a partial update of the state.

No node retries: tools never raise (they return error results), LLM transport retries
belong to the SDK and answer repair to tenacity inside the LLM tier.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from langgraph.runtime import Runtime

from agent import grounding
from agent._version import __version__
from agent.dag import Lineage
from agent.evidence import PlannedCall, run_calls
from agent.fallback import fallback_draft
from agent.llm.graph import build_llm_graph
from agent.prompts import prompt_hash
from agent.rules import reason_with_rules
from agent.schemas import Provenance, Verdict
from agent.state import InvestigationContext, InvestigationState
from agent.sweep import plan_sweep
from tools.registry import TOOLSET_VERSION

__all__ = ["finalize", "ground", "intake", "llm", "rules", "sweep"]

Ctx = Runtime[InvestigationContext]


def intake(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    """The output and its lineage; an unknown output or one without lineage ends here."""
    evaluation = state["evaluation"]
    args = {"output_id": evaluation.output_id}
    evidence = run_calls(
        runtime.context.con,
        [PlannedCall("get_output", args), PlannedCall("get_lineage", args)],
        first_index=1,
    )
    output_ev, lineage_ev = evidence
    lineage = Lineage.from_tool_data(lineage_ev.data or {}) if lineage_ev.status == "ok" else None
    error = None
    if output_ev.status != "ok":
        error = f"output {evaluation.output_id!r}: {output_ev.finding}"
    elif lineage is None or not lineage.nodes:
        error = f"output {evaluation.output_id!r} has no lineage ({lineage_ev.finding})"
    if error is not None:
        draft = fallback_draft(error, evaluation.evaluation_id, intake=True)
        return {"evidence": evidence, "intake_error": error, "draft": draft}
    output = output_ev.data.get("output", output_ev.data)
    return {
        "evidence": evidence,
        "intake_error": None,
        "output": output,
        "captured_at": output["captured_at"],
        "lineage": lineage,
    }


def route_after_intake(state: InvestigationState) -> Literal["sweep", "finalize"]:
    return "finalize" if state.get("intake_error") else "sweep"


def sweep(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    """The deterministic, parallel evidence sweep over every lineage node."""
    ctx = runtime.context
    calls = plan_sweep(state["evaluation"], state["captured_at"] or "", _lineage(state))
    evidence = run_calls(ctx.con, calls, first_index=len(state["evidence"]) + 1, pool=ctx.pool)
    return {"evidence": evidence}


def route_after_sweep(state: InvestigationState) -> Literal["rules", "llm"]:
    return state["reasoner"]


def rules(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    """The deterministic evidence-scoring reasoner."""
    draft = reason_with_rules(
        state["evaluation"],
        _lineage(state),
        state["evidence"],
        abstain_margin=runtime.context.settings.abstain_margin,
    )
    return {"draft": draft}


def llm(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    """The LLM tier, a compiled graph of its own. Invoked from this node rather than added
    as one, so that only the evidence it found is added here (a subgraph node's output
    would add back, through the reducer, the evidence it was handed)."""
    ctx = runtime.context
    out = build_llm_graph().invoke(
        {
            "evaluation": state["evaluation"],
            "output": state["output"],
            "lineage": state["lineage"],
            "evidence": state["evidence"],
        },
        context=ctx,
        config={"recursion_limit": ctx.settings.recursion_limit},
    )
    return {
        "evidence": out["evidence"][len(state["evidence"]) :],
        "draft": out["draft"],
        "errors": out.get("errors", []),
        "llm_usage": out.get("llm_usage", []),
        "repairs": out.get("repairs", 0),
    }


def ground(state: InvestigationState) -> dict[str, Any]:
    """Code checks the draft against the lineage and the evidence (see agent.grounding)."""
    draft = state["draft"]
    assert draft is not None, "every reasoner sets a draft"
    draft, notes = grounding.ground(draft, _lineage(state), state["evidence"])
    return {"draft": draft, "notes": notes}


def finalize(state: InvestigationState, runtime: Ctx) -> dict[str, Any]:
    """Route the grounded draft (action, training, gate) and build the verdict."""
    ctx = runtime.context
    evaluation, draft = state["evaluation"], state["draft"]
    assert draft is not None, "intake or a reasoner always sets a draft"
    reliability = grounding.evaluation_reliability(evaluation, state["evidence"])
    action, to_training = grounding.route(
        draft,
        reliability,
        state["evidence"],
        train_confidence=ctx.settings.train_confidence,
        lineage=state.get("lineage"),
    )
    verdict = Verdict(
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
        gate=grounding.gate_for(draft.category, to_training),
        confidence=draft.confidence,
        summary=draft.summary,
        provenance=provenance(state, ctx),
    )
    return {"verdict": verdict}


def provenance(state: InvestigationState, ctx: InvestigationContext) -> Provenance:
    """Who reasoned, with what, over which store, at what cost: built here only."""
    by_llm = state["reasoner"] == "llm"
    usage = state.get("llm_usage", [])
    return Provenance(
        reasoner=state["reasoner"],
        model=ctx.model.model if by_llm and ctx.model is not None else None,
        prompt_hash=prompt_hash() if by_llm else None,
        toolset_version=TOOLSET_VERSION,
        store_snapshot=ctx.store_snapshot,
        forest_version=__version__,
        prompt_tokens=sum(u.prompt_tokens for u in usage),
        completion_tokens=sum(u.completion_tokens for u in usage),
        llm_calls=len(usage),
        tool_calls=len(state["evidence"]),
        repairs=state.get("repairs", 0),
        duration_s=round((ctx.clock() - ctx.started_at).total_seconds(), 3),
        started_at=ctx.started_at,
        errors=[e for e in [state.get("intake_error"), *state.get("errors", [])] if e],
        grounding_notes=state.get("notes", []),
    )


def _lineage(state: InvestigationState) -> Lineage:
    lineage = state.get("lineage")
    assert lineage is not None, "only reached after a successful intake"
    return lineage
