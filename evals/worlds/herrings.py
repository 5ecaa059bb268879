"""Red herrings: benign anomalies near a case that a careful investigator must not blame.

Four kinds, as the spec lists them: a minor deviation of another health metric or a WARN on
a neighbouring component, a config change on another tenant, a major health blip after the
capture, and a terse-but-reliable reviewer.
"""

from __future__ import annotations

import datetime as dt

from evals.worlds import texts
from evals.worlds.cases import Case, Ctx, HealthFx, LogLine, Zone
from evals.worlds.config_plan import AUTHORS, ConfigVersion
from evals.worlds.reviewers import by_role
from evals.worlds.world import DAY, HOUR, MINUTE, NODES

KINDS = ("health_minor", "warn_neighbour", "health_after", "other_tenant_config", "noisy_reviewer")
AFTER_ONLY = ("health_after", "other_tenant_config", "noisy_reviewer")


def allowed(cls: str, second: str | None) -> tuple[str, ...]:
    """Herring kinds that keep the case's truth intact."""
    if cls == "model_error":
        return AFTER_ONLY  # nothing anomalous before capture
    kinds: tuple[str, ...] = KINDS
    if {cls, second} & {"unreliable_reviewer", "buggy_judge"}:
        kinds = tuple(k for k in kinds if k != "noisy_reviewer")
    return kinds


def _used_metrics(case: Case) -> set[str]:
    return {fx.metric for fx in case.health}


def health_minor(ctx: Ctx, case: Case) -> bool:
    r = case.rng
    metric = r.choice(sorted({"exposure", "bitrate_kbps"} - _used_metrics(case)))
    if metric == "exposure":
        x = r.uniform(1.24, 1.31) if r.random() < 0.5 else r.uniform(0.7, 0.75)
    else:
        x = r.uniform(0.66, 0.71)
    t0 = case.capture - MINUTE * r.uniform(10, 40)
    case.health.append(
        HealthFx(case.dev.device_id, metric, t0, case.capture + MINUTE * r.uniform(5, 20), "mul", x)
    )
    return True


def warn_neighbour(ctx: Ctx, case: Case) -> bool:
    r = case.rng
    avoid = {case.failing_node, case.path_from}
    node = r.choice([n for n in (5, 6, 7, 10) if n not in avoid])
    component = case.dev.door_id if node == 7 else NODES[node][1]
    msg = texts.pick(r, texts.HERRING_WARN[node], n=r.randint(2, 95))
    ts = case.capture + dt.timedelta(milliseconds=NODES[node][4] + 3)
    case.logs.append(LogLine(ts, component, "WARN", msg, node=node))
    return True


def health_after(ctx: Ctx, case: Case) -> bool:
    r = case.rng
    options = sorted({"fps", "dropped_frames", "bitrate_kbps", "focus_score"} - _used_metrics(case))
    metric = r.choice(options)
    t0 = case.capture + MINUTE * r.uniform(4, 20)
    t1 = t0 + MINUTE * r.uniform(10, 25)
    if metric == "dropped_frames":
        fx = HealthFx(case.dev.device_id, metric, t0, t1, "set", r.uniform(10, 25))
    else:
        factor = {"fps": (0.45, 0.6), "bitrate_kbps": (0.3, 0.42), "focus_score": (0.35, 0.5)}
        fx = HealthFx(case.dev.device_id, metric, t0, t1, "mul", r.uniform(*factor[metric]))
    case.health.append(fx)
    return True


def other_tenant_config(ctx: Ctx, case: Case) -> bool:
    r = case.rng
    others = [c for c in ctx.fleet.cameras if c.tenant_id != case.dev.tenant_id]
    dev = r.choice(others)
    key, value = r.choice(
        (
            ("detector.min_box_px", 32),
            ("tracker.max_gap", 20),
            ("policy.night_mode", True),
            ("preprocess.gamma", 1.2),
        )
    )
    at = case.capture - HOUR * r.uniform(2, 48)
    for cv in ctx.configs.items:
        if cv.key == key and cv.scope == "device" and cv.scope_id == dev.device_id:
            return False
    ctx.add_config(
        case,
        ConfigVersion(
            key,
            "device",
            dev.device_id,
            value,
            at,
            author=r.choice(AUTHORS),
            note="camera re-aimed",
        ),
    )
    case.zones.append(Zone("device", dev.device_id, at - HOUR, at + 8 * DAY))
    return True


def noisy_reviewer(ctx: Ctx, case: Case) -> bool:
    case.evaluator = by_role("noisy")[0]
    case.comment = case.rng.choice(texts.RUDE_COMMENTS)
    return True


WRITERS = {
    "health_minor": health_minor,
    "warn_neighbour": warn_neighbour,
    "health_after": health_after,
    "other_tenant_config": other_tenant_config,
    "noisy_reviewer": noisy_reviewer,
}
