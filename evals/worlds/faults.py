"""Sensor, pipeline, model, input and evaluator faults: one writer per failure class.

Each writer adds the class's signature to a case (health effects, run metric factors, logs,
version episodes, evaluator) and, when it is the case's primary fault, sets the claim and
the failing node. Writers return False when the drawn device/time cannot host the fault,
and the scheduler draws again.
"""

from __future__ import annotations

import datetime as dt

from evals.worlds import texts
from evals.worlds.cases import Case, Ctx, Episode, HealthFx, LogLine, ModelRow
from evals.worlds.reviewers import by_role
from evals.worlds.world import DAY, HOUR, MINUTE, MODEL_ID

MS = dt.timedelta(milliseconds=1)


def _claim(case: Case, weights: dict[str, float]) -> str:
    return case.rng.choices(list(weights), weights=list(weights.values()))[0]


def _warn_series(
    case: Case,
    t0: dt.datetime,
    t1: dt.datetime,
    component: str,
    options: tuple[str, ...],
    **values: object,
) -> None:
    """Component-level WARN lines from onset up to capture, a few tens of minutes apart."""
    t = t0 + MINUTE * case.rng.uniform(0.5, 3)
    while t < t1:
        msg = texts.pick(case.rng, options, n=case.rng.randint(3, 900), **values)
        case.logs.append(LogLine(t, component, "WARN", msg))
        t += MINUTE * case.rng.uniform(15, 70)


def defocus(ctx: Ctx, case: Case, primary: bool) -> bool:
    r, dev = case.rng, case.dev
    onset = case.capture - MINUTE * r.uniform(10, 360)
    end = case.capture + HOUR * r.uniform(1, 10)
    x = 1 - r.uniform(0.35, 0.7)
    case.health.append(
        HealthFx(dev.device_id, "focus_score", onset, end, "ramp", x, r.uniform(120, 480))
    )
    case.patch(0).factors["focus"] = x * r.uniform(0.97, 1.03)
    case.patch(4).factors["mean_confidence"] = r.uniform(0.5, 0.72)
    case.features["sharpness"] = r.uniform(0.16, 0.28)
    _warn_series(case, onset, case.capture, dev.device_id, texts.FOCUS_WARN, v=dev.focus * x)
    msg = texts.pick(r, texts.FOCUS_WARN, v=dev.focus * x, n=r.randint(3, 9))
    case.logs.append(LogLine(case.capture + 5 * MS, dev.device_id, "WARN", msg, node=0))
    case.zone("device", onset - HOUR, end + DAY)
    if primary:
        case.failing_node = 0
        case.claim = _claim(case, {"false_negative": 0.8, "bad_localization": 0.2})
    return True


def dropped_frames(ctx: Ctx, case: Case, primary: bool) -> bool:
    r, dev = case.rng, case.dev
    onset = case.capture - MINUTE * r.uniform(10, 180)
    end = case.capture + HOUR * r.uniform(0.5, 6)
    case.health.append(
        HealthFx(dev.device_id, "dropped_frames", onset, end, "set", r.uniform(8, 30))
    )
    case.health.append(HealthFx(dev.device_id, "fps", onset, end, "mul", r.uniform(0.4, 0.65)))
    got = r.uniform(0.35, 0.6)
    case.patch(1).factors["frames_received"] = got
    if r.random() < 0.5:
        case.patch(1).status = "degraded"
    _warn_series(case, onset, case.capture, dev.device_id, texts.STALL_WARN)
    msg = texts.pick(r, texts.CAPTURE_GAP_WARN, n=round(30 * got))
    case.logs.append(LogLine(case.capture + 20 * MS, "frame-capture", "WARN", msg, node=1))
    case.zone("device", onset - HOUR, end + DAY)
    if primary:
        case.failing_node = 0
        case.claim = _claim(case, {"false_negative": 0.7, "bad_localization": 0.3})
    return True


def snapshot_downgrade(ctx: Ctx, case: Case, primary: bool) -> bool:
    r = case.rng
    start = case.capture - MINUTE * r.uniform(30, 480)
    end = case.capture + HOUR * r.uniform(1, 6)
    case.patch(2).factors.update(resolution_h=480 / 1080, bytes=r.uniform(0.22, 0.35))
    if r.random() < 0.4:
        case.patch(4).factors["mean_confidence"] = r.uniform(0.84, 0.88)
    case.zone("device", start - HOUR, end + 2 * HOUR)
    if primary:
        case.failing_node = 2
        case.claim = _claim(case, {"false_negative": 0.6, "bad_localization": 0.4})
    return True


def preprocess_regression(ctx: Ctx, case: Case, primary: bool) -> bool:
    r, dev = case.rng, case.dev
    deploy = case.capture - HOUR * r.uniform(1, 8)
    rollback = case.capture + HOUR * r.uniform(1, 6)
    ver = f"2.5.0-rc{r.randint(1, 4)}"
    case.episodes.append(Episode(dev.device_id, 3, deploy, rollback, version=ver))
    case.logs.append(
        LogLine(
            deploy,
            "preprocess",
            "INFO",
            texts.pick(r, texts.DEPLOY_INFO, ver=ver, dev=dev.device_id),
        )
    )
    case.logs.append(
        LogLine(
            rollback,
            "preprocess",
            "INFO",
            texts.pick(r, texts.ROLLBACK_INFO, ver=ver, dev=dev.device_id),
        )
    )
    variant = r.randrange(3)
    if variant == 2:
        case.patch(3).factors["output_height"] = 0.5
    else:
        case.patch(3).factors["mean_intensity"] = (
            r.uniform(0.45, 0.65) if variant == 0 else r.uniform(1.45, 1.8)
        )
    if r.random() < 0.4:
        case.patch(4).factors["mean_confidence"] = r.uniform(0.84, 0.88)
    case.zone("device", deploy - HOUR, rollback + 72 * HOUR)
    if primary:
        case.failing_node = 3
        case.claim = _claim(case, {"false_negative": 0.6, "false_positive": 0.4})
    return True


def model_regression(ctx: Ctx, case: Case, primary: bool) -> bool:
    r, dev = case.rng, case.dev
    release = case.capture - HOUR * r.uniform(1, 12)
    rollback = case.capture + HOUR * r.uniform(2, 10)
    note = r.choice(
        ("candidate build, int8 quantised", "candidate: new anchor set", "candidate: pruned neck")
    )
    model = ModelRow("", release, 0.52, note, "canary")
    case.models.append(model)
    case.episodes.append(Episode(dev.device_id, 4, release, rollback, model=model))
    msg = texts.pick(r, texts.MODEL_LOAD_INFO, model=MODEL_ID, ver="{ver}", dev=dev.device_id)
    case.logs.append(LogLine(release, "detector", "INFO", msg, model=model))
    case.patch(4).factors["mean_confidence"] = r.uniform(0.5, 0.68)
    many = r.random() < 0.6
    case.patch(4).factors["candidate_boxes"] = r.uniform(1.7, 2.4) if many else r.uniform(0.3, 0.5)
    case.zone("device", release - HOUR, rollback + 72 * HOUR)
    if primary:
        case.failing_node = 4
        case.claim = (
            _claim(case, {"false_positive": 0.6, "wrong_class": 0.4}) if many else "false_negative"
        )
    return True


EDGE_VALUES = {
    "brightness": (0.005, 0.05),
    "glare": (0.92, 0.99),
    "occlusion": (0.87, 0.97),
    "object_scale": (0.004, 0.018),
}


def edge_case(ctx: Ctx, case: Case, primary: bool) -> bool:
    r = case.rng
    feats = r.sample(sorted(EDGE_VALUES), 2 if r.random() < 0.3 else 1)
    for feat in feats:
        case.features[feat] = r.uniform(*EDGE_VALUES[feat])
    if primary:
        case.failing_node = 4
        case.claim = _claim(case, {"false_negative": 0.7, "wrong_class": 0.3})
        case.comment = texts.pick(r, texts.EDGE_COMMENTS[feats[0]], hhmm=case.hhmm())
    return True


def unreliable_reviewer(ctx: Ctx, case: Case, primary: bool) -> bool:
    case.evaluator = case.rng.choice(by_role("unreliable"))
    if primary:
        case.claim = _claim(
            case, {"false_positive": 0.5, "false_negative": 0.3, "wrong_class": 0.2}
        )
        case.score = _confident(case)
    return True


def buggy_judge(ctx: Ctx, case: Case, primary: bool) -> bool:
    case.evaluator = by_role("degraded")[0]
    if primary:
        case.claim = _claim(
            case, {"wrong_class": 0.4, "false_positive": 0.4, "false_negative": 0.2}
        )
        case.score = _confident(case)
    return True


def _confident(case: Case) -> float:
    """The system was right: a confident alert, or a clear non-detection for a 'missed' claim."""
    if case.claim == "false_negative":
        return case.rng.uniform(0.04, 0.2)
    return case.rng.uniform(0.8, 0.96)


def model_error(ctx: Ctx, case: Case, primary: bool) -> bool:
    case.failing_node = 4
    case.claim = _claim(
        case,
        {
            "wrong_class": 0.35,
            "false_negative": 0.3,
            "false_positive": 0.2,
            "bad_localization": 0.15,
        },
    )
    return True
