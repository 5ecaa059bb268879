"""The gate's success bodies, as documented in ``/openapi.json`` (the routes build them
as dicts; these models only describe them). Extra keys are allowed, so a new one in an
answer does not make the document lie."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agent.schemas import Gate

__all__ = ["EvaluationStatus", "GateAnswer", "Health"]


class GateAnswer(BaseModel):
    """``POST /v1/evaluations``: the gate's decision on the evaluation."""

    evaluation_id: str
    decision: Gate = Field(description="train | hold | discard")
    verdict_id: str
    category: str = Field(description="the rules verdict's category")
    confidence: float
    reason: str = Field(description="the verdict's summary, at most 500 characters")
    llm_investigation: str = Field(description="queued | none")
    verdict_url: str = Field(description="where GET /v1/verdicts/{evaluation_id} answers")


class EvaluationStatus(BaseModel):
    """``GET /v1/evaluations/{evaluation_id}/status``."""

    evaluation_id: str
    status: str = Field(description="pending | decided | recorded")
    decision: Gate | None = Field(description="null until decided")
    llm_investigation: str = Field(description="none | queued | done | failed")
    verdicts: int = Field(description="verdicts journaled for it")


class Health(BaseModel):
    """``GET /healthz``."""

    status: str
    queue_depth: int
    queue_capacity: int
    flush: str = Field(description="ok | failing (the last flush into the store failed)")
    flush_failed_rows: int = Field(description="journal rows set aside: the store refused them")
