"""The investigator's edges: the Evaluation that comes in and the Verdict that goes out.

Both reasoners (rules and LLM) produce a :class:`VerdictDraft`; code turns it into a
:class:`Verdict` by attaching the evidence it actually gathered, grounding every claim,
deriving the route and recording provenance. The LLM never authors evidence.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tools.base import Flag
from tools.store.contract import CLAIMS, SOURCE_KINDS

__all__ = [
    "ACTION_FOR_CATEGORY",
    "EARLIEST_CREATED_AT",
    "EVALUATION_ID_PATTERN",
    "MAX_CREATED_AHEAD",
    "RECORDED",
    "ActionKind",
    "ActionPlan",
    "Category",
    "ComponentAssessment",
    "Evaluation",
    "EvaluationReliability",
    "Evidence",
    "Gate",
    "GateDecision",
    "Hypothesis",
    "HypothesisStatus",
    "Override",
    "Provenance",
    "Role",
    "Verdict",
    "VerdictDraft",
]

Category = Literal[
    "model_error",
    "model_regression",
    "evaluation_unreliable",
    "sensor_fault",
    "data_pipeline_regression",
    "threshold_miscalibration",
    "policy_misresolution",
    "config_drift",
    "distribution_shift",
    "component_interaction",
    "inconclusive",
]
ActionKind = Literal[
    "train_model",
    "rollback_model",
    "revisit_policy",
    "recalibrate_threshold",
    "hardware_maintenance",
    "flag_pipeline_regression",
    "revert_config",
    "escalate_human",
    "discard_evaluation",
    "collect_edge_case",
]
Role = Literal["root_cause", "contributor", "propagated", "healthy", "not_examined"]
HypothesisStatus = Literal["supported", "refuted", "untested"]
Gate = Literal["train", "hold", "discard"]
Claim = Literal["false_positive", "false_negative", "wrong_class", "bad_localization", "other"]
SourceKind = Literal["human", "automated"]

assert set(CLAIMS) == set(get_args(Claim)) and set(SOURCE_KINDS) == set(get_args(SourceKind))

# The corrective action each category calls for; the route node enforces it.
ACTION_FOR_CATEGORY: dict[str, ActionKind] = {
    "model_error": "train_model",
    "model_regression": "rollback_model",
    "evaluation_unreliable": "discard_evaluation",
    "sensor_fault": "hardware_maintenance",
    "data_pipeline_regression": "flag_pipeline_regression",
    "threshold_miscalibration": "recalibrate_threshold",
    "policy_misresolution": "revisit_policy",
    "config_drift": "revert_config",
    "distribution_shift": "collect_edge_case",
    "component_interaction": "escalate_human",
    "inconclusive": "escalate_human",
}


# What the gate (and ``investigate``/``gate`` given a dict) lets in; see README "The
# ingestion gate". Ids are safe in a URL path segment as they are (never "." or "..").
EVALUATION_ID_PATTERN = r"^(?!\.+$)[A-Za-z0-9._:@-]{1,200}$"
_EVALUATION_ID = re.compile(EVALUATION_ID_PATTERN)
# created_at must lie in [EARLIEST_CREATED_AT, now + MAX_CREATED_AHEAD]
EARLIEST_CREATED_AT = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_CREATED_AHEAD = dt.timedelta(days=1)
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")
# Validation context for evaluations already accepted (the gate's journal, the store): the
# id and time-range rules above are skipped, so rows recorded before them stay readable.
RECORDED: dict[str, Any] = {"recorded": True}


def _recorded(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("recorded"))


class Evaluation(BaseModel):
    """A reviewer's or judge's claim that a system output was wrong."""

    model_config = ConfigDict(extra="forbid")

    evaluation_id: str = Field(
        min_length=1,
        max_length=200,
        description="unique id: 1-200 of the characters A-Z a-z 0-9 . _ : @ - (not only dots)",
        json_schema_extra={"pattern": EVALUATION_ID_PATTERN},
    )
    output_id: str = Field(
        min_length=1, max_length=200, description="output being judged (not blank)"
    )
    source_kind: SourceKind = Field(description="'human' reviewer or 'automated' judge")
    source_id: str = Field(
        min_length=1, max_length=200, description="reviewer or judge id (not blank)"
    )
    claim: Claim = Field(description="what the evaluator says was wrong")
    comment: str | None = Field(default=None, max_length=10_000, description="free text")
    created_at: dt.datetime = Field(
        description="when the evaluation was made: an ISO 8601 string (no offset means UTC), "
        "from 1970-01-01T00:00:00Z to at most one day after the gate's clock"
    )

    @field_validator("evaluation_id", "output_id", "source_id")
    @classmethod
    def _safe_id(cls, value: str, info: ValidationInfo) -> str:
        if _recorded(info):
            return value
        if not value.strip():
            raise ValueError("must not be blank")
        if info.field_name == "evaluation_id" and not _EVALUATION_ID.fullmatch(value):
            raise ValueError(f"must match {EVALUATION_ID_PATTERN}")
        return value

    @field_validator("created_at", mode="before")
    @classmethod
    def _not_a_number(cls, value: Any) -> Any:
        # pydantic would read a number as Unix seconds (or ms): a client's bug, not a time
        if isinstance(value, int | float) or (
            isinstance(value, str) and _NUMBER.fullmatch(value.strip())
        ):
            raise ValueError("must be an ISO 8601 date-time string, not a number")
        return value

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: dt.datetime, info: ValidationInfo) -> dt.datetime:
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if _recorded(info):
            return value
        if value < EARLIEST_CREATED_AT:
            raise ValueError(f"must not be before {EARLIEST_CREATED_AT.isoformat()}")
        if value > dt.datetime.now(dt.UTC) + MAX_CREATED_AHEAD:
            raise ValueError("must not be more than a day in the future")
        return value


class Evidence(BaseModel):
    """One tool call made during this investigation and what it found."""

    id: str = Field(description="stable id within the investigation: E1, E2, ...")
    tool: str = Field(description="tool name")
    arguments: dict[str, Any] = Field(description="arguments the tool was called with")
    status: Literal["ok", "no_data", "error"]
    node: str | None = Field(default=None, description="lineage node this evidence is about")
    finding: str = Field(description="one-line summary written by code")
    flags: list[Flag] = Field(default_factory=list, description="anomalies computed by code")
    data: Any = Field(default=None, description="the tool's (bounded, redacted) result data")


class ComponentAssessment(BaseModel):
    """The verdict's view of one lineage node."""

    node: str = Field(description="lineage node id")
    role: Role = Field(description="part this node played in the failure")
    evidence_ids: list[str] = Field(default_factory=list, description="evidence supporting it")
    rationale: str = Field(default="", max_length=400, description="one line")


class Hypothesis(BaseModel):
    """A candidate explanation and how the evidence bears on it."""

    category: Category
    node: str | None = Field(default=None, description="node the hypothesis blames")
    status: HypothesisStatus
    evidence_ids: list[str] = Field(default_factory=list)
    rationale: str = Field(default="", max_length=400)


class ActionPlan(BaseModel):
    """What to do about it."""

    kind: ActionKind
    target: str | None = Field(default=None, description="node, device, key or source to act on")
    instructions: str = Field(default="", max_length=1000)


class VerdictDraft(BaseModel):
    """What a reasoner answers; code grounds it and builds the Verdict."""

    category: Category = Field(description="what kind of failure this evaluation reveals")
    failing_node: str | None = Field(
        default=None, description="lineage node id that failed; null when none did"
    )
    causal_path: list[str] = Field(
        default_factory=list, description="node ids from cause to symptom along lineage edges"
    )
    components: list[ComponentAssessment] = Field(default_factory=list)
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    action: ActionPlan
    confidence: float = Field(ge=0.0, le=1.0, description="probability the category is right")
    summary: str = Field(max_length=2000, description="two or three sentences, citing E-ids")
    evidence_ids: list[str] = Field(
        default_factory=list, description="the decisive evidence ids for the category"
    )


class EvaluationReliability(BaseModel):
    """How far the evaluation itself can be trusted."""

    source_id: str
    source_kind: SourceKind
    score: float | None = Field(description="posterior agreement rate 0..1; null when unknown")
    reliable: bool | None = Field(description="null when there is no history to judge by")
    reason: str
    evidence_ids: list[str] = Field(default_factory=list)


class Provenance(BaseModel):
    """How the verdict was made, for audit and cost tracking."""

    reasoner: Literal["rules", "llm"]
    model: str | None = None
    prompt_hash: str | None = None
    toolset_version: str
    store_snapshot: str | None = None
    forest_version: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    repairs: int = 0
    duration_s: float = 0.0
    started_at: dt.datetime
    errors: list[str] = Field(default_factory=list)
    grounding_notes: list[str] = Field(default_factory=list)


class Verdict(BaseModel):
    """Forest's structured, evidence-backed answer about one evaluation."""

    verdict_id: str
    evaluation_id: str
    output_id: str
    category: Category
    failing_node: str | None
    causal_path: list[str]
    components: list[ComponentAssessment]
    evidence: list[Evidence]
    hypotheses: list[Hypothesis]
    evaluation_reliability: EvaluationReliability | None
    action: ActionPlan
    route_to_training: bool = Field(description="model_error, reliable, confident enough")
    gate: Gate = Field(description="train | hold | discard")
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str
    provenance: Provenance


class Override(BaseModel):
    """A human's correction of a verdict (from Slack or the API); feeds new regression cases."""

    model_config = ConfigDict(extra="forbid")

    override_id: str = Field(min_length=1, max_length=200)
    verdict_id: str = Field(min_length=1, max_length=200, description="verdict corrected")
    evaluation_id: str = Field(min_length=1, max_length=200)
    created_at: dt.datetime
    author: str = Field(min_length=1, max_length=200, description="who overrode it")
    category: Category
    failing_node: str | None = Field(default=None, max_length=200)
    action: ActionKind
    reason: str | None = Field(default=None, max_length=3000)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class GateDecision(BaseModel):
    """What an ingestion pipeline does with an evaluation."""

    evaluation_id: str
    decision: Gate
    verdict_id: str
    category: Category
    confidence: float
    reason: str
