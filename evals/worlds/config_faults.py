"""Faults that live in configuration: stale thresholds, policy precedence, drift, interactions.

Temporary changes are written as a version with an explicit ``valid_to`` on top of an open
version at the same scope (created months earlier when the scope had none), so after the
incident the scope falls back to its old value without a second "change" row that would
show up in later outputs' change windows.
"""

from __future__ import annotations

import datetime as dt
import random

from evals.worlds import texts
from evals.worlds.cases import Case, Ctx, Episode, LogLine, ModelRow
from evals.worlds.config_plan import AUTHORS, SCOPE_RANK, ConfigVersion, scope_id_for
from evals.worlds.world import CONFIG_KEYS, DAY, HOUR, MODEL_ID, component_of

MS = dt.timedelta(milliseconds=1)
CHANGE_NOTES = (
    "tuning after customer feedback",
    "perf experiment, revert later",
    "requested by site manager",
    "reduce missed tracks at the gate",
    "trial per OPS-5120",
)


def _allows(ctx: Ctx, case: Case, key: str, scope: str) -> bool:
    """A version at ``scope`` would be the one in force (nothing more specific wins)."""
    winner = ctx.configs.resolve(key, case.dev, case.capture)
    return winner is None or SCOPE_RANK[winner.scope] >= SCOPE_RANK[scope]


def temp_change(
    ctx: Ctx,
    case: Case,
    key: str,
    scope: str,
    value: object,
    t0: dt.datetime,
    t1: dt.datetime,
) -> object:
    """A temporary change of ``key`` at ``scope`` in force over [t0, t1); returns the old value."""
    sid = scope_id_for(scope, case.dev)
    old = ctx.configs.value_from(key, case.dev, t0, scope)
    if ctx.configs.latest_at(key, scope, sid, t0) is None:
        prior = ctx.start - 9 * DAY - HOUR * case.rng.uniform(0, 48)
        ctx.add_config(
            case,
            ConfigVersion(
                key, scope, sid, old, prior, author=case.rng.choice(AUTHORS), note="pin value"
            ),
        )
    ctx.add_config(
        case,
        ConfigVersion(
            key,
            scope,
            sid,
            value,
            t0,
            t1,
            author=case.rng.choice(AUTHORS),
            note=case.rng.choice(CHANGE_NOTES),
        ),
    )
    node = CONFIG_KEYS[key][0]
    msg = texts.pick(case.rng, texts.CONFIG_RELOAD_INFO, key=key, value=value, scope=scope, sid=sid)
    case.logs.append(LogLine(t0 + dt.timedelta(seconds=20), component_of(node), "INFO", msg))
    return old


def stale_threshold(ctx: Ctx, case: Case, primary: bool) -> bool:
    r, dev = case.rng, case.dev
    release = max(case.capture - DAY * r.uniform(1, 5), ctx.start + 6 * HOUR)
    in_force = ctx.configs.resolve("threshold.person", dev, case.capture)
    if case.capture - release < DAY or in_force is None or in_force.valid_from >= release:
        return False
    thr = float(in_force.value)  # type: ignore[arg-type]
    higher = case.claim != "false_negative" if not primary else r.random() < 0.5
    gap = r.uniform(0.12, 0.2)
    rec = round(thr + gap if higher else thr - gap, 2)
    fix = case.capture + HOUR * r.uniform(4, 20)
    model = ModelRow(
        "", release, rec, "retrained on new camera mix; recalibrated operating point", "release"
    )
    case.models.append(model)
    case.episodes.append(Episode(dev.device_id, 4, release, fix, model=model))
    msg = texts.pick(r, texts.MODEL_LOAD_INFO, model=MODEL_ID, ver="{ver}", dev=dev.device_id)
    case.logs.append(LogLine(release, "detector", "INFO", msg, model=model))
    lo, hi = (thr, rec) if higher else (rec, thr)
    case.score = r.uniform(lo + 0.01, hi - 0.01)
    case.zone("device", release - HOUR, fix + 72 * HOUR)
    if primary:
        case.failing_node = 8
        case.claim = "false_positive" if higher else "false_negative"
    return True


def _flip(value: object, case: Case) -> object:
    if isinstance(value, bool):
        return not value
    v = float(value)  # type: ignore[arg-type]
    return round(v * case.rng.uniform(2.5, 3.5) if case.rng.random() < 0.5 else v / 3, 1)


def _policy_claim(key: str, used: object, intended: object) -> str:
    """An engine that used a laxer rule than intended alerts wrongly; a stricter one misses."""
    if key == "policy.night_mode":
        return "false_positive" if intended else "false_negative"
    return "false_positive" if float(intended) > float(used) else "false_negative"  # type: ignore[arg-type]


def policy_misresolution(ctx: Ctx, case: Case, primary: bool) -> bool:
    r, dev = case.rng, case.dev
    key = r.choice(("policy.night_mode", "policy.min_dwell_s"))
    old_rule = ctx.start - DAY * r.uniform(30, 120)
    if r.random() < 0.5:  # the engine used a less specific value than the device rule
        if not _allows(ctx, case, key, "tenant"):
            return False
        less = ctx.configs.value(key, dev, case.capture)
        intended = _flip(less, case)
        ctx.add_config(
            case,
            ConfigVersion(
                key,
                "device",
                dev.device_id,
                intended,
                old_rule,
                author=r.choice(AUTHORS),
                note="camera faces street",
            ),
        )
        case.patch(9).params[key] = less
        if r.random() < 0.5:
            msg = texts.pick(r, texts.POLICY_CACHE_INFO, n=r.randint(20, 190))
            case.logs.append(LogLine(case.capture + 380 * MS, "policy-engine", "INFO", msg, node=9))
        claim = _policy_claim(key, less, intended)
    else:  # a recent tenant change is shadowed by an older, more specific rule
        level = "device" if r.random() < 0.6 else "site"
        if not _allows(ctx, case, key, level):
            return False
        change = case.capture - HOUR * r.uniform(6, 72)
        tenant_old = ctx.configs.value_from(key, dev, change, "tenant")
        new = _flip(tenant_old, case)
        pinned = tenant_old if isinstance(tenant_old, bool) else _flip(new, case)
        ctx.add_config(
            case,
            ConfigVersion(
                key,
                level,
                scope_id_for(level, dev),
                pinned,
                old_rule,
                author=r.choice(AUTHORS),
                note="site-specific rule",
            ),
        )
        temp_change(ctx, case, key, "tenant", new, change, case.capture + HOUR * r.uniform(2, 12))
        case.zone("tenant", change - HOUR, case.capture + 13 * HOUR)
        claim = _policy_claim(key, pinned, new)
    if primary:
        case.failing_node = 9
        case.claim = claim
        if claim == "false_negative":
            case.decision = "no_alert"
    return True


# key -> (new value from old, consumer run metric factors, claim)
DRIFTS = {
    "detector.min_box_px": (
        lambda old, r: int(old * r.uniform(4, 6)),
        {"candidate_boxes": (0.2, 0.4)},
        "false_negative",
    ),
    "tracker.max_gap": (
        lambda old, r: int(old * r.uniform(3, 4)),
        {"active_tracks": (1.8, 2.5)},
        "false_positive",
    ),
    "preprocess.resize_h": (
        lambda old, r: r.choice((320, 336)),
        {"output_height": (0.44, 0.47)},
        "false_negative",
    ),
    "detector.nms_iou": (
        lambda old, r: round(r.uniform(0.75, 0.85), 2),
        {"candidate_boxes": (1.8, 2.3)},
        "false_positive",
    ),
}


def config_drift(ctx: Ctx, case: Case, primary: bool) -> bool:
    r = case.rng
    scope = "site" if r.random() < 0.7 else "tenant"
    keys = [k for k in r.sample(sorted(DRIFTS), len(DRIFTS)) if _allows(ctx, case, k, scope)]
    if not keys:
        return False
    key = keys[0]
    change = case.capture - HOUR * (r.uniform(1, 48) if scope == "site" else r.uniform(1, 12))
    expiry = case.capture + HOUR * r.uniform(1, 8)
    make, factors, claim = DRIFTS[key]
    old = ctx.configs.value_from(key, case.dev, change, scope)
    new = make(old, r)
    if abs(float(new) - float(old)) <= 0.5 * abs(float(old)):  # type: ignore[arg-type]
        return False
    temp_change(ctx, case, key, scope, new, change, expiry)
    node = CONFIG_KEYS[key][0]
    for metric, (lo, hi) in factors.items():
        case.patch(node).factors[metric] = r.uniform(lo, hi)
    case.zone(scope, change - HOUR, expiry + HOUR)
    if primary:
        case.failing_node = node
        case.claim = claim
    return True


# (key A, key B, B's run metric factors, claim): A is upstream of B
PAIRS = (
    (
        "preprocess.gamma",
        "detector.min_box_px",
        {"candidate_boxes": (0.35, 0.55), "mean_confidence": (0.6, 0.72)},
        "false_negative",
    ),
    ("detector.nms_iou", "tracker.max_gap", {"track_continuity": (0.45, 0.65)}, "false_positive"),
    ("preprocess.gamma", "tracker.min_hits", {"active_tracks": (0.3, 0.5)}, "false_negative"),
)


def _nudge(old: object, r: random.Random) -> object:
    """A modest change: 18-40 % of the old value, as the key's type."""
    if isinstance(old, int) and not isinstance(old, bool):
        return old + max(1, round(old * r.uniform(0.2, 0.4)))
    return round(float(old) * r.uniform(1.18, 1.38), 2)  # type: ignore[arg-type]


def interaction(ctx: Ctx, case: Case, primary: bool) -> bool:
    r = case.rng
    key_a, key_b, factors, claim = r.choice(PAIRS)
    scope = "device" if r.random() < 0.5 else "site"
    if not (_allows(ctx, case, key_a, scope) and _allows(ctx, case, key_b, scope)):
        return False
    t_a = case.capture - HOUR * r.uniform(6, 72)
    t_b = case.capture - HOUR * r.uniform(2, 48)
    for key, t0 in ((key_a, t_a), (key_b, t_b)):
        old = ctx.configs.value_from(key, case.dev, t0, scope)
        new = _nudge(old, r)
        ratio = abs(float(new) - float(old)) / abs(float(old))  # type: ignore[arg-type]
        if not 0.12 < ratio < 0.45:
            return False
        temp_change(ctx, case, key, scope, new, t0, case.capture + HOUR * r.uniform(2, 12))
    node_b = CONFIG_KEYS[key_b][0]
    for metric, (lo, hi) in factors.items():
        case.patch(node_b).factors[metric] = r.uniform(lo, hi)
    case.zone(scope, min(t_a, t_b) - HOUR, case.capture + 13 * HOUR)
    if primary:
        case.failing_node = node_b
        case.path_from = CONFIG_KEYS[key_a][0]
        case.claim = claim
    return True
