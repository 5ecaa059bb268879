"""The draft an investigation ends as when it has no reasoned answer: the output or its
lineage is not in the store, or the LLM tier failed to give a valid verdict."""

from __future__ import annotations

from agent.schemas import ActionPlan, VerdictDraft

__all__ = ["fallback_draft"]


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
