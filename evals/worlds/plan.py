"""Which failure cases a world holds, how each is built, and the truth line it carries."""

from __future__ import annotations

import math
import random
from typing import Any

from evals.worlds import config_faults, faults, herrings, texts
from evals.worlds.cases import Case, Ctx, Writer
from evals.worlds.reviewers import by_role
from evals.worlds.world import CHAIN, HOUR, MINUTE, Profile, component_of

# class -> (category, action, writer)
CLASSES: dict[str, tuple[str, str, Writer]] = {
    "defocus": ("sensor_fault", "hardware_maintenance", faults.defocus),
    "dropped_frames": ("sensor_fault", "hardware_maintenance", faults.dropped_frames),
    "snapshot_downgrade": (
        "data_pipeline_regression",
        "flag_pipeline_regression",
        faults.snapshot_downgrade,
    ),
    "preprocess_regression": (
        "data_pipeline_regression",
        "flag_pipeline_regression",
        faults.preprocess_regression,
    ),
    "model_regression": ("model_regression", "rollback_model", faults.model_regression),
    "stale_threshold": (
        "threshold_miscalibration",
        "recalibrate_threshold",
        config_faults.stale_threshold,
    ),
    "policy_misresolution": (
        "policy_misresolution",
        "revisit_policy",
        config_faults.policy_misresolution,
    ),
    "config_drift": ("config_drift", "revert_config", config_faults.config_drift),
    "edge_case": ("distribution_shift", "collect_edge_case", faults.edge_case),
    "unreliable_reviewer": (
        "evaluation_unreliable",
        "discard_evaluation",
        faults.unreliable_reviewer,
    ),
    "buggy_judge": ("evaluation_unreliable", "discard_evaluation", faults.buggy_judge),
    "interaction": ("component_interaction", "escalate_human", config_faults.interaction),
    "model_error": ("model_error", "train_model", faults.model_error),
}
# (truth class = the upstream-most real fault, second fault)
MULTI: tuple[tuple[str, str], ...] = (
    ("defocus", "stale_threshold"),
    ("dropped_frames", "config_drift"),
    ("snapshot_downgrade", "unreliable_reviewer"),
    ("preprocess_regression", "buggy_judge"),
    ("defocus", "policy_misresolution"),
    ("model_regression", "unreliable_reviewer"),
    ("config_drift", "stale_threshold"),
    ("dropped_frames", "model_regression"),
    ("snapshot_downgrade", "edge_case"),
    ("interaction", "unreliable_reviewer"),
    ("preprocess_regression", "stale_threshold"),
    ("defocus", "buggy_judge"),
)
HARD_FIRST = {"stale_threshold", "interaction", "config_drift", "policy_misresolution"}
HERRING_SHARE = 0.34

Spec = tuple[str, str | None, str | None]


def specs(profile: Profile, rng: random.Random) -> list[Spec]:
    """Case specs, big-footprint ones first so the scheduler finds room for them."""
    pairs: list[tuple[str, str | None]] = [
        (cls, None) for cls in CLASSES for _ in range(profile.cases_per_class)
    ]
    pairs += list(MULTI[: profile.multi_faults])
    rng.shuffle(pairs)
    n_herring = math.ceil(HERRING_SHARE * len(pairs))
    out: list[Spec] = [
        (cls, second, rng.choice(herrings.allowed(cls, second)) if i < n_herring else None)
        for i, (cls, second) in enumerate(pairs)
    ]
    return sorted(out, key=lambda s: not (s[1] or s[0] in HARD_FIRST))


def build_case(ctx: Ctx, case: Case) -> bool:
    if not CLASSES[case.cls][2](ctx, case, True):
        return False
    if case.second and not CLASSES[case.second][2](ctx, case, False):
        return False
    if case.herring and not herrings.WRITERS[case.herring](ctx, case):
        return False
    _finalize(ctx, case)
    return True


def _finalize(ctx: Ctx, case: Case) -> None:
    r = case.rng
    thr = float(ctx.configs.value("threshold.person", case.dev, case.capture))  # type: ignore[arg-type]
    if case.evaluator is None:
        human = r.random() < 0.65
        case.evaluator = r.choice([e for e in by_role("reliable") if (e.kind == "human") == human])
    if not case.comment:
        if case.evaluator.kind == "automated":
            case.comment = texts.pick(r, texts.JUDGE_COMMENTS, p=r.uniform(0.7, 0.98))
        else:
            case.comment = texts.pick(r, texts.COMMENTS[case.claim], hhmm=case.hhmm())
    if case.score is None:
        if case.decision == "no_alert":  # suppressed by policy despite a passing score
            case.score = r.uniform(thr + 0.05, min(0.95, thr + 0.3))
        elif case.claim == "false_negative":
            case.score = r.uniform(max(0.03, thr - 0.35), thr - 0.04)
        else:
            case.score = r.uniform(thr + 0.03, min(0.97, thr + 0.35))
    case.score = round(case.score, 4)
    if case.decision is None:
        case.decision = "alert" if case.score >= thr else "no_alert"
    case.label = "person" if case.decision == "alert" else None
    created = case.capture + HOUR * r.uniform(0.5, 30)
    case.created_at = min(created, ctx.end - 5 * MINUTE)


def node_id(case: Case, node: int) -> str:
    return case.dev.device_id if node == 0 else component_of(node)


def truth_line(case: Case, evaluation_id: str) -> dict[str, Any]:
    category, action, _ = CLASSES[case.cls]
    failing = None if case.failing_node is None else node_id(case, case.failing_node)
    path: list[str] = []
    start = case.path_from if case.path_from is not None else case.failing_node
    if start is not None:
        nodes = [0, *CHAIN] if start == 0 else list(CHAIN[CHAIN.index(start) :])
        path = [node_id(case, n) for n in nodes]
    tags = [difficulty(case), case.cls]
    if case.second:
        tags += [case.second, "multi_fault"]
    if case.herring:
        tags.append("red_herring")
    return {
        "evaluation_id": evaluation_id,
        "category": category,
        "failing_node": failing,
        "causal_path": path,
        "action": action,
        "route_to_training": case.cls == "model_error",
        "tags": tags,
    }


def difficulty(case: Case) -> str:
    if (
        case.second
        or case.cls == "interaction"
        or (case.herring and case.cls in ("model_error", "edge_case"))
    ):
        return "hard"
    if case.herring or case.cls not in (
        "defocus",
        "dropped_frames",
        "snapshot_downgrade",
        "unreliable_reviewer",
    ):
        return "medium"
    return "easy"
