"""Grounding and routing: code checks every claim of a draft against this run's evidence.

``ground`` never invents a cause: it drops what cites nothing, refuses nodes outside the
lineage, rebuilds a causal path only from the lineage's own edges, and caps confidence
when nothing decisive is left. ``route`` derives the action and the training gate.
"""

from __future__ import annotations

import re

from agent.dag import Lineage
from agent.schemas import (
    ACTION_FOR_CATEGORY,
    ActionPlan,
    ComponentAssessment,
    Evaluation,
    EvaluationReliability,
    Evidence,
    Gate,
    VerdictDraft,
)

__all__ = [
    "UNGROUNDED_CONFIDENCE_CAP",
    "evaluation_reliability",
    "gate_for",
    "ground",
    "out_of_spec_before_capture",
    "route",
]

UNGROUNDED_CONFIDENCE_CAP = 0.4
_NEEDS_NODE = set(ACTION_FOR_CATEGORY) - {"evaluation_unreliable", "inconclusive"}
# The component kinds (tools/store/contract.py) a category may blame; others may name any node.
_KINDS_FOR_CATEGORY = {
    "model_error": {"model"},
    "model_regression": {"model"},
    "distribution_shift": {"model"},
    "sensor_fault": {"sensor", "capture"},
    "threshold_miscalibration": {"threshold"},
    "policy_misresolution": {"policy"},
    "data_pipeline_regression": {"capture", "transform", "model", "tracker", "fusion", "sink"},
}
_CITATION = re.compile(r"\bE\d+\b")


def ground(
    draft: VerdictDraft, lineage: Lineage, evidence: list[Evidence]
) -> tuple[VerdictDraft, list[str]]:
    """Return the grounded draft and notes saying what was changed and why."""
    known = {e.id for e in evidence}
    notes: list[str] = []

    def keep(ids: list[str], where: str) -> list[str]:
        unknown = [i for i in ids if i not in known]
        if unknown:
            notes.append(f"{where}: dropped unknown evidence ids {unknown}")
        return [i for i in dict.fromkeys(ids) if i in known]

    decisive = keep(draft.evidence_ids, "decisive evidence")
    category, node, confidence = draft.category, draft.failing_node, draft.confidence

    if node is not None and node not in lineage.nodes:
        notes.append(f"failing node {node!r} is not in this output's lineage")
        node = None
    if category in _NEEDS_NODE and node is None:
        notes.append(f"{category} names no lineage node: verdict made inconclusive")
        category, confidence = "inconclusive", min(confidence, 0.3)
    allowed = _KINDS_FOR_CATEGORY.get(category)
    if node is not None and allowed is not None and lineage.kind(node) not in allowed:
        notes.append(
            f"{category} cannot be located at {node!r}, a {lineage.kind(node) or 'untyped'} "
            "node: verdict made inconclusive"
        )
        category, confidence = "inconclusive", min(confidence, 0.3)
    if category in ("evaluation_unreliable", "inconclusive"):
        node = None

    path = [n for n in draft.causal_path]
    if node is None:
        path = []
    elif not _valid_path(path, node, lineage):
        if path:
            notes.append(
                "causal path did not follow lineage edges from the failing node: "
                "rebuilt from the lineage"
            )
        path = lineage.path_to_sink(node)

    components = _ground_components(draft.components, lineage, keep, notes)
    hypotheses = []
    for h in draft.hypotheses:
        ids = keep(h.evidence_ids, f"hypothesis {h.category}")
        if h.node is not None and h.node not in lineage.nodes:
            notes.append(f"hypothesis {h.category} names unknown node {h.node!r}: dropped")
            continue
        status = h.status if ids or h.status == "untested" else "untested"
        hypotheses.append(h.model_copy(update={"evidence_ids": ids, "status": status}))

    if category != "inconclusive" and not decisive:
        if confidence > UNGROUNDED_CONFIDENCE_CAP:
            notes.append("no decisive evidence cited: confidence capped")
        confidence = min(confidence, UNGROUNDED_CONFIDENCE_CAP)

    summary = _CITATION.sub(lambda m: m.group(0) if m.group(0) in known else "[?]", draft.summary)
    grounded = draft.model_copy(
        update={
            "category": category,
            "failing_node": node,
            "causal_path": path,
            "components": components,
            "hypotheses": hypotheses,
            "confidence": confidence,
            "evidence_ids": decisive,
            "summary": summary,
        }
    )
    return grounded, notes


def _valid_path(path: list[str], node: str, lineage: Lineage) -> bool:
    """Follows edges and passes the failing node, starting there or at one of its ancestors
    (an interaction's path starts at the upstream partner)."""
    return (
        bool(path)
        and node in path
        and lineage.follows_edges(path)
        and (path[0] == node or node in lineage.descendants(path[0]))
    )


def _ground_components(
    components: list[ComponentAssessment], lineage: Lineage, keep, notes: list[str]
) -> list[ComponentAssessment]:
    by_node: dict[str, ComponentAssessment] = {}
    for c in components:
        if c.node not in lineage.nodes:
            notes.append(f"component {c.node!r} is not in the lineage: dropped")
            continue
        ids = keep(c.evidence_ids, f"component {c.node}")
        role = c.role
        if not ids and role in ("root_cause", "contributor"):
            notes.append(f"component {c.node} claimed {role} citing nothing: claim dropped")
            role = "not_examined"
        by_node.setdefault(c.node, c.model_copy(update={"evidence_ids": ids, "role": role}))
    return [
        by_node.get(n) or ComponentAssessment(node=n, role="not_examined") for n in lineage.order
    ]


def evaluation_reliability(
    evaluation: Evaluation, evidence: list[Evidence]
) -> EvaluationReliability:
    """Built by code from the reliability tool's result, whatever the reasoner said."""
    rel = next((e for e in evidence if e.tool == "get_evaluator_reliability"), None)
    source_id, kind = evaluation.source_id, evaluation.source_kind
    if rel is None or rel.status != "ok":
        reason = rel.finding if rel else "reliability was not checked"
        return EvaluationReliability(
            source_id=source_id,
            source_kind=kind,
            score=None,
            reliable=None,
            reason=reason,
            evidence_ids=[rel.id] if rel else [],
        )
    data = rel.data if isinstance(rel.data, dict) else {}
    score = data.get("posterior_mean")
    # any evaluator flag, even minor, keeps the evaluation out of training; an evaluator
    # with too little record is unknown (None), which never trains either
    signals_seen = {
        f.signal for f in rel.flags if f.signal.startswith(("evaluator.", "evaluation."))
    }
    reliable: bool | None = not signals_seen
    if signals_seen == {"evaluator.unknown"}:
        reliable = None
    return EvaluationReliability(
        source_id=source_id,
        source_kind=kind,
        score=score if isinstance(score, int | float) else None,
        reliable=reliable,
        reason=rel.finding,
        evidence_ids=[rel.id],
    )


# Config findings matter only through the component consuming the key: with no consumer
# (no node) they reached no stage, and at a sink (which delivers the decision the stages
# before it made) which value won cannot have made the output's decision. A change a
# component consumes, or a new release, stays a guard.
_UNCONSUMED = ("config.changed", "config.shadowed_recent_change", "config.precedence_mismatch")
_NOT_AT_SINK = ("config.shadowed_recent_change", "config.precedence_mismatch")


def out_of_spec_before_capture(
    evidence: list[Evidence], lineage: Lineage | None = None
) -> list[str]:
    """Major pipeline anomalies (computed by code) that began before the capture."""
    sinks = {n for n in lineage.nodes if lineage.kind(n) == "sink"} if lineage else set()
    return [
        f"{f.signal} on {f.node or e.node or '-'} ({e.id})"
        for e in evidence
        for f in e.flags
        if f.severity == "major"
        and f.relative != "after_capture"
        and not f.signal.startswith(("evaluator.", "evaluation."))
        and not (f.signal in _UNCONSUMED and f.node is None)
        and not (f.signal in _NOT_AT_SINK and f.node in sinks)
    ]


def route(
    draft: VerdictDraft,
    reliability: EvaluationReliability,
    evidence: list[Evidence],
    *,
    train_confidence: float,
    lineage: Lineage | None = None,
) -> tuple[ActionPlan, bool]:
    """The action follows the category. Only a confident model error, judged by a reliable
    evaluator, on a pipeline whose sweep shows nothing out of spec before capture, trains —
    whatever the reasoner claimed."""
    kind = ACTION_FOR_CATEGORY[draft.category]
    action = draft.action
    if action.kind != kind:
        action = ActionPlan(
            kind=kind,
            target=draft.failing_node or action.target,
            instructions=action.instructions,
        )
    to_training = (
        draft.category == "model_error"
        and reliability.reliable is True
        and draft.confidence >= train_confidence
        and not out_of_spec_before_capture(evidence, lineage)
    )
    return action, to_training


def gate_for(category: str, route_to_training: bool) -> Gate:
    if route_to_training:
        return "train"
    return "discard" if category == "evaluation_unreliable" else "hold"
