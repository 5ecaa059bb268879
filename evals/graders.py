"""Deterministic graders: each one looks at one verdict and the case's expected answer.

A grader is a small frozen dataclass whose ``grade`` returns a :class:`Grade` (``passed`` is
None when the grader does not apply to the case). Suite-level numbers — training precision
and recall, Brier score and ECE of ``confidence``, median costs — are aggregated from the
grades by :func:`summarise`.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agent.schemas import ACTION_FOR_CATEGORY, Verdict
from evals.incident import Expected
from tools.registry import TOOLS

__all__ = [
    "GRADERS",
    "LOWER_IS_BETTER",
    "METRICS",
    "AbstentionGrader",
    "ActionGrader",
    "CaseResult",
    "CategoryGrader",
    "CausalPathGrader",
    "Cost",
    "FailingNodeGrader",
    "Grade",
    "GroundingGrader",
    "Replay",
    "SchemaGrader",
    "TrainingGrader",
    "brier",
    "ece",
    "grade_verdict",
    "path_credit",
    "summarise",
]

Replay = Callable[[str, dict[str, Any]], tuple[str, str]]  # (tool, args) -> (status, finding)
_CITATION = re.compile(r"\bE\d+\b")


@dataclass(frozen=True)
class Grade:
    name: str
    passed: bool | None
    score: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class CategoryGrader:
    name: str = "category"

    def grade(self, v: Verdict, e: Expected, replay: Replay | None = None) -> Grade:
        ok = v.category == e.category
        return Grade(self.name, ok, float(ok), f"{v.category} (expected {e.category})")


@dataclass(frozen=True)
class FailingNodeGrader:
    name: str = "node"

    def grade(self, v: Verdict, e: Expected, replay: Replay | None = None) -> Grade:
        ok = v.failing_node == e.failing_node
        return Grade(self.name, ok, float(ok), f"{v.failing_node} (expected {e.failing_node})")


def path_credit(path: Sequence[str], acceptable: Sequence[str]) -> float:
    """Partial credit for a causal path: the longest common subsequence over the longer
    path's length, halved when the path does not start at the expected cause."""
    if not path and not acceptable:
        return 1.0
    if not path or not acceptable:
        return 0.0
    prev = [0] * (len(acceptable) + 1)
    for a in path:
        row = [0]
        for j, b in enumerate(acceptable):
            row.append(prev[j] + 1 if a == b else max(prev[j + 1], row[j]))
        prev = row
    credit = prev[-1] / max(len(path), len(acceptable))
    return credit if path[0] == acceptable[0] else credit / 2


@dataclass(frozen=True)
class CausalPathGrader:
    name: str = "path"

    def grade(self, v: Verdict, e: Expected, replay: Replay | None = None) -> Grade:
        options = e.acceptable_causal_paths or ([[]] if e.failing_node is None else [])
        if not options:
            return Grade(self.name, None, None, "no acceptable path recorded")
        score = max(path_credit(v.causal_path, p) for p in options)
        return Grade(self.name, score == 1.0, score, " -> ".join(v.causal_path) or "(none)")


@dataclass(frozen=True)
class ActionGrader:
    name: str = "action"

    def grade(self, v: Verdict, e: Expected, replay: Replay | None = None) -> Grade:
        ok = v.action.kind == e.action
        return Grade(self.name, ok, float(ok), f"{v.action.kind} (expected {e.action})")


@dataclass(frozen=True)
class TrainingGrader:
    """``detail`` is the confusion cell (tp, fp, fn, tn) that precision and recall sum."""

    name: str = "training"

    def grade(self, v: Verdict, e: Expected, replay: Replay | None = None) -> Grade:
        got, due = v.route_to_training, e.route_to_training
        cell = ("tp" if due else "fp") if got else ("fn" if due else "tn")
        return Grade(self.name, got == due, float(got == due), cell)


@dataclass(frozen=True)
class AbstentionGrader:
    """Right answer or rightly abstained passes; a needless abstention or a confident
    wrong answer where abstaining was acceptable fails."""

    name: str = "abstention"

    def grade(self, v: Verdict, e: Expected, replay: Replay | None = None) -> Grade:
        abstained = v.category == "inconclusive"
        right = v.category == e.category
        if abstained:
            outcome = "right_answer" if right else ("abstained_ok" if e.abstain_ok else "needless")
        else:
            outcome = "right_answer" if right else "confidently_wrong"
        ok = outcome in ("right_answer", "abstained_ok")
        return Grade(self.name, ok, float(ok), outcome)


def _cited(v: Verdict) -> set[str]:
    ids = {i for c in v.components for i in c.evidence_ids}
    ids |= {i for h in v.hypotheses for i in h.evidence_ids}
    if v.evaluation_reliability is not None:
        ids |= set(v.evaluation_reliability.evidence_ids)
    ids |= set(_CITATION.findall(v.summary)) | set(_CITATION.findall(v.action.instructions))
    return ids


@dataclass(frozen=True)
class GroundingGrader:
    """Every cited evidence id exists and names a known tool, and each cited item is what
    a fresh call of that tool with those arguments returns from this store (``replay``)."""

    name: str = "grounded"

    def grade(self, v: Verdict, e: Expected, replay: Replay | None = None) -> Grade:
        known = [ev.id for ev in v.evidence]
        problems = []
        if len(set(known)) != len(known):
            problems.append("duplicate evidence ids")
        cited = _cited(v)
        if missing := sorted(cited - set(known)):
            problems.append(f"cites unknown evidence {missing}")
        for ev in v.evidence:
            if ev.tool not in TOOLS:
                problems.append(f"{ev.id} names no tool ({ev.tool!r})")
            elif (
                replay
                and ev.id in cited
                and replay(ev.tool, ev.arguments) != (ev.status, ev.finding)
            ):
                problems.append(f"{ev.id} ({ev.tool}) differs from a fresh call")
        return Grade(self.name, not problems, float(not problems), "; ".join(problems[:3]))


@dataclass(frozen=True)
class SchemaGrader:
    """The verdict survives a JSON round trip through the Verdict schema."""

    name: str = "schema"

    def grade(self, v: Verdict, e: Expected, replay: Replay | None = None) -> Grade:
        try:
            Verdict.model_validate_json(v.model_dump_json())
        except ValidationError as exc:
            return Grade(self.name, False, 0.0, str(exc).splitlines()[0])
        return Grade(self.name, True, 1.0)


_SAYS_RELIABLE = re.compile(r"evaluator(?:'s record)? is reliable|evaluator reliable", re.I)
_SAYS_DOUBTFUL = re.compile(
    r"evaluator(?:'s record)? is (?:unreliable|doubtful|too small)|record is too small", re.I
)


@dataclass(frozen=True)
class ConsistencyGrader:
    """The verdict's text agrees with its fields: what the summary and the supported
    hypotheses say of the evaluator matches ``evaluation_reliability``, the failing node
    is named in the summary, the action is the category's and only a model error judged by
    a reliable evaluator trains."""

    name: str = "consistent"

    def grade(self, v: Verdict, e: Expected, replay: Replay | None = None) -> Grade:
        text = " ".join(
            [v.summary, *(h.rationale for h in v.hypotheses if h.status == "supported")]
        )
        reliable = v.evaluation_reliability.reliable if v.evaluation_reliability else None
        problems = []
        if _SAYS_RELIABLE.search(text) and reliable is not True:
            problems.append(f"text calls the evaluator reliable, the field says {reliable}")
        if _SAYS_DOUBTFUL.search(text) and reliable is True:
            problems.append("text doubts the evaluator, the field says reliable")
        if v.failing_node and v.failing_node not in v.summary:
            problems.append(f"summary does not name the failing node {v.failing_node}")
        if v.action.kind != ACTION_FOR_CATEGORY[v.category]:
            problems.append(f"action {v.action.kind} is not the action of {v.category}")
        if v.route_to_training and not (v.category == "model_error" and reliable is True):
            problems.append("trains without a reliable model-error verdict")
        return Grade(self.name, not problems, float(not problems), "; ".join(problems))


GRADERS = (
    CategoryGrader(),
    FailingNodeGrader(),
    CausalPathGrader(),
    ActionGrader(),
    TrainingGrader(),
    AbstentionGrader(),
    GroundingGrader(),
    SchemaGrader(),
    ConsistencyGrader(),
)


@dataclass(frozen=True)
class Cost:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    seconds: float = 0.0


@dataclass
class CaseResult:
    """One case's grades; ``error`` is set (and grades empty) when the run itself failed."""

    case: str
    tags: list[str]
    failure_class: str
    expected: dict[str, Any]
    got: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.0
    grades: dict[str, Grade] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)
    error: str | None = None

    def passed(self, name: str) -> bool:
        grade = self.grades.get(name)
        return bool(grade and grade.passed)

    @property
    def failed(self) -> list[str]:
        if self.error:
            return ["error"]
        return [g.name for g in self.grades.values() if g.passed is False]


def grade_verdict(
    v: Verdict, e: Expected, replay: Replay | None = None, seconds: float | None = None
) -> tuple[dict[str, Grade], Cost]:
    """Every grader's grade of ``v`` and its cost (``seconds`` overrides provenance's)."""
    grades = {g.name: g.grade(v, e, replay) for g in GRADERS}
    p = v.provenance
    wall = p.duration_s if seconds is None else round(seconds, 4)
    cost = Cost(p.prompt_tokens, p.completion_tokens, p.llm_calls, p.tool_calls, wall)
    return grades, cost


def brier(pairs: Iterable[tuple[float, bool]]) -> float:
    """Mean squared gap between confidence and correctness (0 is perfect)."""
    pairs = list(pairs)
    return sum((c - float(ok)) ** 2 for c, ok in pairs) / len(pairs) if pairs else 0.0


def ece(pairs: Iterable[tuple[float, bool]], bins: int = 10) -> float:
    """Expected calibration error over equal-width confidence bins."""
    pairs = list(pairs)
    if not pairs:
        return 0.0
    buckets: dict[int, list[tuple[float, bool]]] = {}
    for c, ok in pairs:
        buckets.setdefault(min(int(c * bins), bins - 1), []).append((c, ok))
    total = 0.0
    for members in buckets.values():
        conf = sum(c for c, _ in members) / len(members)
        acc = sum(ok for _, ok in members) / len(members)
        total += len(members) / len(pairs) * abs(acc - conf)
    return total


def _rate(results: list[CaseResult], name: str) -> float:
    applicable = [r for r in results if r.error or r.grades[name].passed is not None]
    return sum(r.passed(name) for r in applicable) / len(applicable) if applicable else 1.0


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


METRICS = (
    "category_accuracy", "node_accuracy", "path_score", "action_accuracy",
    "training_precision", "training_recall", "abstention_accuracy", "grounded_rate",
    "schema_valid_rate", "consistent_rate", "brier", "ece", "median_prompt_tokens",
    "median_llm_calls", "median_tool_calls", "median_seconds",
)  # fmt: skip
LOWER_IS_BETTER = frozenset(m for m in METRICS if m in ("brier", "ece") or m.startswith("median_"))


def summarise(results: list[CaseResult]) -> dict[str, float]:
    """The suite metrics of ``results`` (a failed run counts as wrong everywhere)."""
    ok = [r for r in results if not r.error]
    cells = [r.grades["training"].detail for r in ok]
    tp, fp, fn = (cells.count(c) for c in ("tp", "fp", "fn"))
    fn += sum(1 for r in results if r.error and r.expected.get("route_to_training"))
    paths = [r.grades["path"].score for r in ok if r.grades["path"].score is not None]
    calibration = [(r.confidence, r.passed("category")) for r in ok]
    calibration += [(1.0, False) for r in results if r.error]
    metrics: dict[str, float] = {
        "category_accuracy": _rate(results, "category"),
        "node_accuracy": _rate(results, "node"),
        "path_score": (sum(paths) / len(paths) if paths else 1.0) * len(ok) / max(len(results), 1),
        "action_accuracy": _rate(results, "action"),
        "training_precision": tp / (tp + fp) if tp + fp else 1.0,
        "training_recall": tp / (tp + fn) if tp + fn else 1.0,
        "abstention_accuracy": _rate(results, "abstention"),
        "grounded_rate": _rate(results, "grounded"),
        "schema_valid_rate": _rate(results, "schema"),
        "consistent_rate": _rate(results, "consistent"),
        "brier": brier(calibration),
        "ece": ece(calibration),
        "median_prompt_tokens": _median([r.cost.prompt_tokens for r in ok]),
        "median_llm_calls": _median([r.cost.llm_calls for r in ok]),
        "median_tool_calls": _median([r.cost.tool_calls for r in ok]),
        "median_seconds": _median([r.cost.seconds for r in ok]),
    }
    return {k: round(v, 4) for k, v in metrics.items()}
