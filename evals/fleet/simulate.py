"""One output at a time: the shape's behaviour, then runs, lineage edges, logs and features.

Each shape function decides what every stage saw and did (metrics, status, skipped or
not) and what the truth is (``meta``: whether the output was wrong, which condition caused
it, and which stage made the mistake). The generic part turns that into store rows.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Any

from evals.fleet.deployments import Deployment
from evals.fleet.devices import Device, Effect, view
from evals.fleet.registry import Registry
from evals.fleet.sites import Site, activity, local

__all__ = ["Out", "in_hours", "simulate_output"]


@dataclass
class Out:
    output_id: str
    tenant_id: str
    site_id: str
    device_id: str
    captured_at: dt.datetime
    decision: str
    label: str | None
    score: float
    model_id: str
    model_version: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    logs: list[tuple] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def in_hours(spec: str, lt: dt.datetime) -> bool:
    if spec == "closed":
        return False
    a, b = spec.split("-")
    minutes = lt.hour * 60 + lt.minute
    ha, ma = map(int, a.split(":"))
    hb, mb = map(int, b.split(":"))
    return ha * 60 + ma <= minutes < hb * 60 + mb


@dataclass
class Ctx:
    dep: Deployment
    dev: Device
    site: Site
    t: dt.datetime
    rng: random.Random
    v: dict[str, float]
    active: dict[str, Effect]
    reg: Registry
    plc: Device | None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    warn: list[tuple[str, str, str, dict]] = field(default_factory=list)  # stage, level, msg, attrs
    conditions: set[str] = field(default_factory=set)


def _resolve_params(c: Ctx) -> None:
    d, reg = c.dev, c.reg
    for st in c.dep.stages:
        if st.kind == "sensor":
            continue
        cid = c.dep.cid(st.name, d.device_id, d.site_id)
        version = reg.version(cid, c.t, st.version)
        c.versions[st.name] = version
        out: dict[str, Any] = {}
        for key, default in st.keys.items():
            rename = reg_renames(c, cid, version, key)
            use_key = rename or key
            scopes = (
                ("tenant", "global")
                if ("scope_bug" in c.active and st.name == "policy")
                else ("device", "site", "tenant", "global")
            )
            got = reg.resolve(use_key, d.device_id, d.site_id, d.tenant_id, c.t, scopes)
            if got is None:
                out[use_key] = default
                if rename:
                    old = reg.resolve(key, d.device_id, d.site_id, d.tenant_id, c.t)
                    if old is not None:
                        c.conditions.add("config_drift")
                        c.warn.append(
                            (
                                st.name,
                                "WARN",
                                f"config key '{key}' is not recognised by {version}; "
                                f"'{use_key}' not set, using default {default}",
                                {"key": use_key, "ignored_key": key, "default": default},
                            )
                        )
            else:
                out[use_key] = got[0]
                if "scope_bug" in c.active and st.name == "policy":
                    out["resolved_scope"] = got[1]
        c.params[st.name] = out


RENAMES: dict[str, tuple[str, str, str]] = {}  # cid -> (first version, old key, new key)


def reg_renames(c: Ctx, cid: str, version: str, key: str) -> str | None:
    r = RENAMES.get(cid)
    if r and key == r[1] and _vge(version, r[0]):
        return r[2]
    return None


def _vge(a: str, b: str) -> bool:
    return tuple(map(int, a.split("."))) >= tuple(map(int, b.split(".")))


def _j(rng: random.Random, x: float, rel: float = 0.1) -> float:
    return x * (1 + rng.gauss(0, rel))


# ---------------------------------------------------------------- shapes
def _retail(c: Ctx) -> dict[str, Any]:
    rng, v, p = c.rng, c.v, c.params
    nw = c.dep.tenant_id == "northwind"
    lt = local(c.site, c.t)
    act = activity(c.site, "retail", c.t)
    hours_key = "policy.store_hours" if nw else "rules.open_hours"
    thr_key = "threshold.gap" if nw else "oos.min_score"
    hours = p["policy"][hours_key]
    is_open = in_hours(hours, lt)
    truly_open = is_open and "holiday_closed" not in c.active
    if "holiday_closed" in c.active and is_open:
        c.conditions.add("policy_scope")
    gap = rng.random() < 0.05 + 0.09 * act
    mversion = c.versions["model"]
    cause, node = None, None
    shift = 0.0
    if nw and _vge(mversion, "2.4.0"):
        shift = 0.2  # 2.4 scores run hotter; calibrated threshold moved with it
    score = rng.uniform(0.66, 0.96) if gap else min(0.62, abs(rng.gauss(0.12, 0.07)) + shift)
    wrong_pred = False
    if v["alignment"] < 0.8:
        c.conditions.add("camera_moved")
        if gap and rng.random() < 0.7:
            score, wrong_pred, cause = rng.uniform(0.05, 0.3), True, "camera_moved"
    if "packaging_shift" in c.active:
        c.conditions.add("distribution_shift")
        if rng.random() < 0.3:
            wrong_pred, cause = True, "distribution_shift"
            score = rng.uniform(0.1, 0.35) if gap else rng.uniform(0.7, 0.88)
    if not nw and mversion == "3.2.0":
        c.conditions.add("model_regression")
        if rng.random() < 0.16:
            wrong_pred, cause = True, "model_regression"
            score = rng.uniform(0.1, 0.4) if gap else rng.uniform(0.66, 0.8)
    if not wrong_pred and rng.random() < 0.012:
        wrong_pred, cause = True, "model"
        score = rng.uniform(0.04, 0.3) if gap else rng.uniform(0.72, 0.93)
    thr = float(p["threshold"][thr_key])
    above = score >= thr
    if nw and shift and not gap and thr <= score < 0.58:
        c.conditions.add("stale_threshold")
        cause, wrong_pred = "stale_threshold", True
    decision = ("restock_task" if is_open else "deferred") if above else "no_task"
    wrong = wrong_pred or above != gap
    if above and is_open and not truly_open and gap:
        wrong, cause = True, "policy_scope"
    node_for = {
        "model": "model",
        "camera_moved": "camera",
        "distribution_shift": "model",
        "model_regression": "model",
        "stale_threshold": "threshold",
        "policy_scope": "policy",
    }
    node = node_for.get(cause or "")
    claim = (
        "other" if cause == "policy_scope" else ("false_positive" if above else "false_negative")
    )
    ngap = (1 + int(rng.random() < 0.4)) if above else 0
    boxes = int(_j(rng, 150 if nw else 310, 0.05) * (0.87 if mversion == "3.2.0" else 1.0))
    lat = c.dep.stage("model").latency_ms
    st = {
        "camera": {
            "metrics": {"exposure_ms": v["exposure_ms"], "frames": 1, "focus": round(v["focus"], 3)}
        },
        "capture": {
            "metrics": {
                "latency_ms": round(_j(rng, c.dep.stage("capture").latency_ms), 1),
                "bytes": int(_j(rng, 410_000 if nw else 780_000, 0.06)),
                "retries": 0 if rng.random() < 0.97 else 1,
            }
        },
        "prep": {
            "metrics": {
                "roi_match": round(v["alignment"], 3),
                "px_out": p["prep"].get("prep.target_px", p["prep"].get("rectify.size")),
            }
        },
        "model": {
            "metrics": {
                "gaps": ngap,
                "top_score": round(score, 4),
                "boxes": boxes,
                "latency_ms": round(_j(rng, lat), 1),
            }
        },
        "threshold": {
            "metrics": {"score": round(score, 4), "threshold": thr, "margin": round(score - thr, 4)}
        },
        "policy": {
            "metrics": {
                "rules_evaluated": 6 if nw else 11,
                "rules_matched": 2 + int(above),
                "open": int(is_open),
            }
        },
        "sink": {"metrics": {"delivered": int(decision == "restock_task"), "retries": 0}},
    }
    return {
        "decision": decision,
        "label": "shelf_gap" if above else None,
        "score": score,
        "model": "model",
        "stages": st,
        "wrong": wrong,
        "cause": cause,
        "node": node,
        "claim": claim,
        "truth": {"gap": gap, "open": truly_open},
        "features": {
            "hue_mean": round(
                0.41 + rng.gauss(0, 0.025) + (0.13 if "packaging_shift" in c.active else 0), 4
            ),
            "roi_match": round(v["alignment"], 4),
        },
        "hours": hours,
    }


def _plate(c: Ctx) -> dict[str, Any]:
    rng, v, p = c.rng, c.v, c.params
    lt = local(c.site, c.t)
    permit = rng.random() < 0.68
    visible = rng.random() > 0.03 + 0.04 * (1 - v["light"])
    cause = node = None
    out_h = p["decoder"]["decoder.resize_h"]
    if c.versions["decoder"] == "3.3.0":
        c.conditions.add("shared_upstream")
        out_h = out_h // 2
    plate_px = max(8.0, _j(rng, 34, 0.12) * out_h / 720)
    glare = max(0.0, v["brightness"] - 0.8) * 3
    found = visible
    miss_cause = None
    if v["exposure_ms"] > 25 and v["light"] > 0.5:
        c.conditions.add("exposure_stuck")
        if visible and rng.random() < 0.75:
            found, miss_cause = False, "exposure_stuck"
    if v["focus"] < 0.6:
        c.conditions.add("defocus")
    if out_h < 500 and visible and found and rng.random() < 0.5:
        found, miss_cause = False, "shared_upstream"
    if visible and found and rng.random() < 0.01:
        found, miss_cause = False, "model"
    finder_score = (
        rng.uniform(0.82, 0.98) * (0.8 if out_h < 500 else 1) if found else rng.uniform(0.05, 0.3)
    )
    vclass_ok = rng.random() > (0.35 if out_h < 500 else 0.02)
    st: dict[str, Any] = {
        "camera": {
            "metrics": {
                "exposure_ms": v["exposure_ms"],
                "frames": 3,
                "gain_db": round(max(0, 18 * (1 - v["light"]) + rng.gauss(0, 1)), 1),
            }
        },
        "capture": {
            "metrics": {
                "latency_ms": round(_j(rng, 12), 1),
                "frames": 3,
                "retries": 0 if rng.random() < 0.98 else 1,
            }
        },
        "decoder": {
            "metrics": {"out_h": out_h, "frames_decoded": 3, "duration_ms": round(_j(rng, 6), 2)}
        },
        "finder": {
            "metrics": {
                "boxes": int(found),
                "box_px": round(plate_px, 1) if found else 0,
                "score": round(finder_score, 4),
            }
        },
        "vtype": {
            "metrics": {
                "conf": round(rng.uniform(0.8, 0.97) if vclass_ok else rng.uniform(0.4, 0.6), 3),
                "classes_scored": 4,
            }
        },
    }
    visitor_spec = p["policy"]["policy.visitor_hours"]
    true_visitor_hours = visitor_spec
    if "scope_bug" in c.active:
        got = c.reg.resolve(
            "policy.visitor_hours", c.dev.device_id, c.dev.site_id, c.dev.tenant_id, c.t
        )
        true_visitor_hours = got[0] if got else visitor_spec
        if not permit and in_hours(true_visitor_hours, lt) != in_hours(visitor_spec, lt):
            c.conditions.add("policy_scope")
    ideal_ok = permit or in_hours(true_visitor_hours, lt)
    score, model = finder_score, "finder"
    wrong = False
    if not found:
        decision, label = "no_read", None
        st["ocr"] = {"skip": True}
        st["threshold"] = {"skip": True}
        if visible:
            wrong, cause = True, miss_cause
            node = {
                "model": "finder",
                "exposure_stuck": "camera",
                "shared_upstream": "decoder",
            }.get(miss_cause or "")
        claim = "false_negative"
    else:
        model = "ocr"
        min_cc = float(p["ocr"].get("ocr.min_char_conf", p["ocr"].get("ocr.min_confidence", 0.3)))
        conf = rng.uniform(0.72, 0.97)
        misread = False
        rejected = sum(rng.random() < 0.05 for _ in range(7)) if min_cc >= 0.5 else 0
        if v["focus"] < 0.6:
            conf = rng.uniform(0.5, 0.75)
            if rng.random() < 0.6:
                misread, cause = True, "defocus"
        if min_cc < 0.5 and rng.random() < 0.3:
            misread, cause, conf = True, "config_drift", rng.uniform(0.58, 0.72)
        if not misread and rng.random() < 0.015:
            misread, cause = True, "model"
        thr = float(p["threshold"]["threshold.read_conf"])
        score = conf
        accepted = conf >= thr
        st["ocr"] = {
            "metrics": {
                "chars": 7,
                "char_conf_mean": round(conf, 4),
                "char_conf_min": round(conf - rng.uniform(0.05, 0.2), 4),
                "rejected_chars": rejected,
            }
        }
        st["threshold"] = {"metrics": {"score": round(conf, 4), "threshold": thr}}
        if not accepted:
            decision, label = "no_read", None
            wrong = misread is False and False
            claim = "false_negative"
            if v["focus"] < 0.6:
                wrong, cause = True, "defocus"
        else:
            read_permit = permit and not misread
            ok = read_permit or in_hours(visitor_spec, lt)
            decision = "open_gate" if ok else "deny"
            label = "permit" if read_permit else "visitor"
            wrong = misread or ok != ideal_ok
            if misread:
                claim = "wrong_class"
            else:
                claim = "other"
                if ok != ideal_ok:
                    cause = "policy_scope"
        node = (
            {
                "model": "ocr",
                "config_drift": "ocr",
                "defocus": "camera",
                "policy_scope": "policy",
            }.get(cause or "")
            if wrong
            else None
        )
    if not wrong:
        cause = node = None
    st["policy"] = {
        "metrics": {
            "rules_evaluated": 4,
            "permit_hit": int(label == "permit"),
            "rules_matched": 1 + int(label == "permit"),
        }
    }
    st["sink"] = {
        "metrics": {
            "relay_ms": round(_j(rng, 40), 1) if decision == "open_gate" else 0,
            "retries": 0,
        }
    }
    return {
        "decision": decision,
        "label": label,
        "score": score,
        "model": model,
        "stages": st,
        "wrong": wrong,
        "cause": cause,
        "node": node,
        "claim": claim,
        "truth": {"permit": permit, "visible": visible},
        "features": {"plate_px": round(plate_px, 2), "glare_ratio": round(glare, 4)},
    }


def _warehouse(c: Ctx) -> dict[str, Any]:
    rng, v, p = c.rng, c.v, c.params
    act = activity(c.site, "warehouse", c.t)
    person = rng.random() < 0.1 + 0.2 * act
    forklift = rng.random() < 0.15 + 0.35 * act
    fps = float(p["capture"]["capture.fps"])
    min_dwell = int(p["tracker"]["tracker.min_dwell_frames"])
    cause = None
    detected = person
    norm_bug = c.versions["norm"] == "2.2.0"
    if norm_bug:
        c.conditions.add("shared_upstream")
    ghost = False
    if person and norm_bug and rng.random() < 0.5:
        detected, cause = False, "shared_upstream"
    if person and detected and rng.random() < 0.012:
        detected, cause = False, "model"
    if not person and rng.random() < 0.006:
        ghost, cause = True, "model"
    dwell_s = rng.uniform(2.6, 6.0) if (detected or ghost) else 0.0
    keep = 1.0
    if "dropped_frames" in c.active:
        c.conditions.add("dropped_frames")
        keep = c.active["dropped_frames"].data["keep"]
    frames = int(fps * 10 * keep)
    dwell_frames = int(dwell_s * fps * keep * (0.6 if keep < 1 else 1.0))
    if fps < 8:
        c.conditions.add("fps_interaction")
    confirmed = (detected or ghost) and dwell_frames >= min_dwell
    if (detected or ghost) and not confirmed:
        cause = "dropped_frames" if keep < 1 else ("fps_interaction" if fps < 8 else cause)
    in_zone = confirmed
    if v["alignment"] < 0.8:
        c.conditions.add("camera_moved")
        if confirmed and rng.random() < 0.8:
            in_zone, cause = False, "camera_moved"
    # PLC proximity events through the bridge
    bridge_strict = _vge(c.versions["bridge"], "1.5.0")
    cutoff = float(p["bridge"]["bridge.batch_cutoff_ms"])
    n_ev = rng.randint(2, 6) if forklift else (1 if rng.random() < 0.05 else 0)
    late = "plc_late" in c.active
    if late:
        c.conditions.add("late_events")
    lags = [rng.uniform(1800, 5200) if late else rng.uniform(120, 700) for _ in range(n_ev)]
    dropped_late = sum(1 for x in lags if x > cutoff) if bridge_strict else 0
    forwarded = n_ev - dropped_late
    if forklift and forwarded == 0 and n_ev:
        cause = "late_events"
    skew_s = 0.0
    if "clock_skew" in c.active:
        e = c.active["clock_skew"]
        skew_s = e.data["rate_s_per_h"] * (c.t - e.start).total_seconds() / 3600
        if abs(skew_s) > 0.5:
            c.conditions.add("clock_skew")
    window = float(p["fusion"]["fusion.match_window_ms"])
    plc_ok = forwarded > 0 and abs(skew_s) * 1000 < window
    if in_zone and forwarded > 0 and not plc_ok:
        cause = "clock_skew"
    cam_ev = int(in_zone)
    if in_zone and plc_ok:
        score = rng.uniform(0.72, 0.96)
    elif in_zone or forwarded > 0:
        score = rng.uniform(0.12, 0.44)
    else:
        score = rng.uniform(0.01, 0.09)
    pose_ver = c.versions["pose"]
    thr = float(p["threshold"]["threshold.alarm"])
    if pose_ver == "3.1.0" and (in_zone or forwarded > 0) and not (in_zone and plc_ok):
        score = rng.uniform(0.3, 0.65)  # 3.1's keypoint confidences run hotter
        if thr < 0.6:
            c.conditions.add("stale_threshold")
    alarm = score >= thr
    truth_alarm = person and forklift
    wrong = alarm != truth_alarm
    if wrong and alarm and pose_ver == "3.1.0" and score < 0.66 and not ghost:
        cause = "stale_threshold"
    node = (
        {
            "model": "pose",
            "shared_upstream": "norm",
            "dropped_frames": "camera",
            "fps_interaction": "tracker",
            "camera_moved": "camera",
            "late_events": "bridge",
            "clock_skew": "capture",
            "stale_threshold": "threshold",
        }.get(cause or "")
        if wrong
        else None
    )
    if not wrong:
        cause = None
    vest = person and rng.random() > (0.45 if norm_bug else 0.03)
    st = {
        "camera": {"metrics": {"exposure_ms": v["exposure_ms"], "frames": frames}},
        "capture": {
            "metrics": {
                "frames": frames,
                "dropped": int(fps * 10) - frames,
                "retries": 0 if rng.random() < 0.98 else 1,
                "ntp_synced": 0 if "clock_skew" in c.active else 1,
            }
        },
        "norm": {
            "metrics": {
                "frame_age_ms": round(_j(rng, 140, 0.3) - skew_s * 1000, 1),
                "out_px": p["norm"]["norm.size"],
            }
        },
        "pose": {
            "metrics": {
                "persons": int(detected or ghost) + (rng.random() < 0.2),
                "kp_conf_mean": round(rng.uniform(0.55, 0.8) * (0.7 if norm_bug else 1), 3),
                "latency_ms": round(_j(rng, 22), 1),
            }
        },
        "ppe": {
            "metrics": {
                "vests": int(vest),
                "conf": round(rng.uniform(0.7, 0.95) * (0.65 if norm_bug else 1), 3),
            }
        },
        "tracker": {
            "metrics": {
                "tracks": int(detected or ghost),
                "dwell_frames_max": dwell_frames,
                "confirmed": int(confirmed),
                "id_switches": 0,
            }
        },
        "zones": {
            "metrics": {
                "persons_in_zone": cam_ev,
                "rules_evaluated": 9,
                "rules_matched": cam_ev * 2,
            }
        },
        "plc": {"metrics": {"events": n_ev}},
        "bridge": {
            "metrics": {
                "events_seen": n_ev,
                "events_forwarded": forwarded,
                "late_dropped": dropped_late,
                "max_lag_ms": round(max(lags), 1) if lags else 0,
            }
        },
        "fusion": {
            "metrics": {
                "camera_events": cam_ev,
                "plc_events": forwarded,
                "matched_pairs": int(in_zone and plc_ok),
                "score": round(score, 4),
            }
        },
        "threshold": {"metrics": {"score": round(score, 4), "threshold": thr}},
        "sink": {"metrics": {"ack_ms": round(_j(rng, 15), 1) if alarm else 0, "retries": 0}},
    }
    if dropped_late:
        c.warn.append(
            (
                "bridge",
                "WARN",
                f"batch closed at cutoff {int(cutoff)} ms: dropped "
                f"{dropped_late} late event(s), max lag {int(max(lags))} ms",
                {"late_dropped": dropped_late},
            )
        )
    if in_zone and forwarded and not plc_ok:
        c.warn.append(
            (
                "fusion",
                "INFO",
                "no proximity event within match window of frame ts",
                {"window_ms": window},
            )
        )
    claim = "false_positive" if alarm else "false_negative"
    return {
        "decision": "alarm" if alarm else "no_alarm",
        "label": "person_near_forklift" if alarm else None,
        "score": score,
        "model": "pose",
        "stages": st,
        "wrong": wrong,
        "cause": cause,
        "node": node,
        "claim": claim,
        "skew_s": skew_s,
        "truth": {"person": person, "forklift": forklift},
        "features": {
            "bg_alignment": round(v["alignment"], 4),
            "person_px": round(_j(rng, 120, 0.2), 1),
        },
    }


def _traffic(c: Ctx) -> dict[str, Any]:
    rng, v, p = c.rng, c.v, c.params
    act = activity(c.site, "traffic", c.t)
    base = 820 if c.site.site_id == "mt-mel-hoddle" else 640
    true_count = max(3, int(act * base * rng.uniform(0.9, 1.1)))
    fps = float(p["capture"]["capture.fps"])
    min_frames = int(p["tracker"]["tracker.min_track_frames"])
    max_age = int(p["tracker"].get("tracker.track_buffer", p["tracker"].get("tracker.max_age", 30)))
    factor, cause = rng.uniform(0.975, 1.02), None
    night = v["light"] < 0.3
    if c.versions["model"] == "8.1.0":
        c.conditions.add("model_regression")
        if night:
            factor, cause = factor * rng.uniform(0.7, 0.82), "model_regression"
    if "snow" in c.active:
        c.conditions.add("distribution_shift")
        factor, cause = factor * rng.uniform(0.72, 0.84), "distribution_shift"
    if v["focus"] < 0.6:
        c.conditions.add("defocus")
        factor, cause = factor * rng.uniform(0.65, 0.8), "defocus"
    if v["exposure_ms"] > 25 and v["light"] > 0.5:
        c.conditions.add("exposure_stuck")
        factor, cause = factor * rng.uniform(0.6, 0.78), "exposure_stuck"
    keep = c.active["dropped_frames"].data["keep"] if "dropped_frames" in c.active else 1.0
    if keep < 1:
        c.conditions.add("dropped_frames")
        factor, cause = factor * rng.uniform(0.66, 0.8), "dropped_frames"
    if fps * 1.5 < min_frames:  # fast crossings shorter than min_track_frames at this fps
        c.conditions.add("fps_interaction")
        factor, cause = factor * rng.uniform(0.7, 0.8), "fps_interaction"
    id_sw = int(rng.uniform(3, 8) * act + 1)
    if max_age < 60:
        c.conditions.add("config_drift")
        id_sw = int(id_sw * rng.uniform(5, 8)) + 10
        factor, cause = factor * rng.uniform(1.12, 1.25), "config_drift"
    if cause is None and rng.random() < 0.03:
        factor, cause = rng.choice([rng.uniform(0.8, 0.88), rng.uniform(1.12, 1.2)]), "model"
    reported = int(true_count * factor)
    wrong = abs(reported - true_count) / true_count > 0.09 and true_count > 40
    node = (
        {
            "model": "model",
            "model_regression": "model",
            "distribution_shift": "model",
            "defocus": "camera",
            "exposure_stuck": "camera",
            "dropped_frames": "camera",
            "fps_interaction": "tracker",
            "config_drift": "tracker",
        }.get(cause or "")
        if wrong
        else None
    )
    if not wrong:
        cause = None
    frames = int(fps * 3600 * keep)
    conf = rng.uniform(0.62, 0.8) * (0.85 if cause in ("defocus", "distribution_shift") else 1)
    per_vehicle = rng.uniform(38, 60)
    if c.versions["model"] == "8.1.0" and night:
        conf *= 0.88  # 8.1 is less sure of itself after dark
        per_vehicle *= 0.8
    st = {
        "camera": {"metrics": {"frames": frames, "exposure_ms": v["exposure_ms"]}},
        "capture": {
            "metrics": {
                "segments": 60,
                "frames": frames,
                "dropped": int(fps * 3600) - frames,
                "retries": 0 if rng.random() < 0.95 else rng.randint(1, 2),
            }
        },
        "model": {
            "metrics": {
                "frames_processed": frames,
                "boxes": int(reported * per_vehicle),
                "mean_conf": round(conf, 4),
            }
        },
        "tracker": {
            "metrics": {
                "tracks": int(reported * rng.uniform(1.05, 1.2)),
                "id_switches": id_sw,
                "fragments": int(rng.uniform(2, 9)),
            }
        },
        "counter": {"metrics": {"crossings": reported, "lines": 2}},
        "sink": {"metrics": {"vehicles": reported, "late_events_dropped": 0, "retries": 0}},
    }
    claim = "false_negative" if reported < true_count else "false_positive"
    return {
        "decision": "published",
        "label": "vehicle_count",
        "score": conf,
        "model": "model",
        "stages": st,
        "wrong": wrong,
        "cause": cause,
        "node": node,
        "claim": claim,
        "truth": {"count": true_count, "reported": reported},
        "features": {"vehicle_density": round(reported / 1000, 4)},
    }


SHAPES = {
    "retail_shelf": _retail,
    "plate_reader": _plate,
    "warehouse_safety": _warehouse,
    "traffic_counting": _traffic,
}


def simulate_output(
    output_id: str,
    dep: Deployment,
    dev: Device,
    site: Site,
    t: dt.datetime,
    active: dict[str, Effect],
    reg: Registry,
    rng: random.Random,
    plc: Device | None,
    run_seq: list[int],
) -> Out:
    v = view(dev, site, t, active, rng)
    c = Ctx(dep, dev, site, t, rng, v, active, reg, plc)
    _resolve_params(c)
    r = SHAPES[dep.shape](c)
    for name in ("defocus", "exposure_stuck", "dropped_frames"):
        if name in active:
            c.conditions.add(name)
    mstage = dep.stage(r["model"])
    stamped = t + dt.timedelta(seconds=r.get("skew_s", 0.0))
    hourly = dep.shape == "traffic_counting"
    o = Out(
        output_id,
        dev.tenant_id,
        dev.site_id,
        dev.device_id,
        stamped,
        r["decision"],
        r["label"],
        round(float(r["score"]), 4),
        mstage.model_id or "",
        c.versions[r["model"]],
    )
    o.meta = {
        "wrong": r["wrong"],
        "cause": r["cause"],
        "node": r["node"],
        "claim": r["claim"],
        "conditions": set(c.conditions),
        "truth": r["truth"],
        "light": v["light"],
    }
    run_ids: dict[str, str] = {}
    ends: dict[str, dt.datetime] = {}
    skipped: set[str] = set()
    for st in dep.stages:
        res = r["stages"].get(st.name, {})
        if res.get("skip"):
            skipped.add(st.name)
            continue
        if st.kind == "sensor":
            cid = dev.device_id if st.name == "camera" else (plc.device_id if plc else "")
            start = (
                stamped if st.name == "camera" else t - dt.timedelta(seconds=rng.uniform(0.2, 2))
            )
            dur = (
                dt.timedelta(hours=1) if hourly else dt.timedelta(milliseconds=rng.uniform(30, 90))
            )
            version = dev.firmware if st.name == "camera" else (plc.firmware if plc else "")
            params: dict[str, Any] = {}
        else:
            cid = dep.cid(st.name, dev.device_id, dev.site_id)
            parents = _live_parents(dep, st.name, skipped)
            base = max((ends[pn] for pn in parents if pn in ends), default=t)
            if st.name == "capture":
                base = stamped
            start = base + dt.timedelta(milliseconds=rng.uniform(1, 15))
            lat = st.latency_ms * math.exp(rng.gauss(0, 0.18))
            dur = (
                dt.timedelta(milliseconds=lat)
                if not hourly
                else dt.timedelta(seconds=lat * (1 if st.name != "sink" else 0.4))
            )
            if hourly and st.name == "capture":
                dur = dt.timedelta(hours=1)
            version = c.versions[st.name]
            params = dict(c.params.get(st.name, {}))
        rid = f"run-{run_seq[0]:08x}"
        run_seq[0] += 1
        run_ids[st.name] = rid
        ends[st.name] = start + dur
        status = "ok"
        metrics = res.get("metrics", {})
        if st.name == "camera" and ("dropped_frames" in active or v["focus"] < 0.45):
            status = "degraded"
        o.runs.append(
            {
                "run_id": rid,
                "output_id": output_id,
                "component_id": cid,
                "kind": st.kind,
                "version": version,
                "started_at": start,
                "ended_at": start + dur,
                "status": status,
                "params": params,
                "metrics": metrics,
                "stage": st.name,
            }
        )
        for pn in _live_parents(dep, st.name, skipped):
            if pn in run_ids:
                o.edges.append((run_ids[pn], rid))
    for stage, level, msg, attrs in c.warn:
        if stage in run_ids:
            run = next(x for x in o.runs if x["stage"] == stage)
            o.logs.append(
                (run["started_at"], run["run_id"], run["component_id"], level, msg, attrs)
            )
    o.features = {
        "brightness": round(v["brightness"], 4),
        "contrast": round(v["contrast"], 4),
        "sharpness": round(v["focus"] * (0.6 + 0.4 * v["contrast"]), 4),
        **r["features"],
    }
    o.meta["hours"] = r.get("hours")
    return o


def _live_parents(dep: Deployment, name: str, skipped: set[str]) -> list[str]:
    out: list[str] = []
    for pn in dep.stage(name).parents:
        if pn in skipped:
            out.extend(_live_parents(dep, pn, skipped))
        else:
            out.append(pn)
    return out
