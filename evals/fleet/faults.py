"""The planted faults: what each one changes in the world, and the truth it leaves behind.

``plan`` installs every fault (effects on devices or sites, config versions, component and
model releases, key renames) before the week is simulated. ``plant`` then picks outputs
that the fault actually made wrong (or, for unreliable evaluators, outputs that were right)
and writes an evaluation and its truth row for each.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from agent.schemas import ACTION_FOR_CATEGORY
from evals.fleet import simulate
from evals.fleet.deployments import by_tenant
from evals.fleet.devices import Effect, Effects
from evals.fleet.registry import Registry
from evals.fleet.sites import Weather

__all__ = ["Spec", "plan", "plant"]

S = dt.datetime(2026, 11, 23)  # Monday 00:00 UTC, first day of the simulated week  # noqa: DTZ001 (naive UTC, as the store keeps it)


def at(day: int, hour: float) -> dt.datetime:
    """Day 0 = Mon 23 Nov, hour in UTC."""
    return S + dt.timedelta(days=day, hours=hour)


@dataclass
class Spec:
    cls: str  # failure-class tag
    category: str
    instance: str
    causes: tuple[str | None, ...]
    n: int
    difficulty: str
    tenant: str
    devices: tuple[str, ...] = ()
    window: tuple[dt.datetime, dt.datetime] | None = None
    sources: tuple[str, ...] = ()
    wrong: bool = True
    claims: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    abstain_ok: bool = False
    allow: tuple[str, ...] = ()  # other conditions that may be present
    when: Any = None  # extra predicate on the output


def plan(reg: Registry, effects: Effects, sites: dict, devices: dict) -> list[Spec]:
    specs: list[Spec] = []
    E = effects.add

    # --- sensor faults --------------------------------------------------------------------
    E(
        Effect(
            "defocus",
            at(1, 20),
            at(3, 23),
            devices=frozenset({"mt-mel-hoddle-cam-n1"}),
            data={"depth": 0.42, "ramp_min": 90},
        )
    )
    E(
        Effect(
            "defocus",
            at(3, 13),
            at(5, 18),
            devices=frozenset({"pw-chi-loop-lane2-out"}),
            data={"depth": 0.4, "ramp_min": 60},
        )
    )
    specs += [
        Spec(
            "defocus",
            "sensor_fault",
            "defocus-mel",
            ("defocus",),
            2,
            "easy",
            "metro-mobility",
            ("mt-mel-hoddle-cam-n1",),
            sources=("mt-analyst-ortiz", "mt-countcheck@1.2"),
        ),
        Spec(
            "defocus",
            "sensor_fault",
            "defocus-chi",
            ("defocus",),
            2,
            "easy",
            "parkwise",
            ("pw-chi-loop-lane2-out",),
            sources=("pw-ops-lee", "pw-ops-morgan"),
        ),
    ]
    devices["pw-chi-loop-lane2-out"].last_maintenance = at(5, 18).date()
    devices["mt-mel-hoddle-cam-n1"].last_maintenance = at(3, 23).date()

    E(
        Effect(
            "exposure_stuck",
            at(2, 3),
            at(4, 21),
            devices=frozenset({"pw-phx-p4-lane1-in"}),
            data={"value": 31.5},
        )
    )
    E(
        Effect(
            "exposure_stuck",
            at(2, 8),
            at(3, 20),
            devices=frozenset({"mt-mel-hoddle-cam-s2"}),
            data={"value": 32.4},
        )
    )
    specs += [
        Spec(
            "exposure_stuck",
            "sensor_fault",
            "exposure-phx",
            ("exposure_stuck",),
            2,
            "medium",
            "parkwise",
            ("pw-phx-p4-lane1-in",),
            sources=("pw-ops-lee",),
        ),
        Spec(
            "exposure_stuck",
            "sensor_fault",
            "exposure-mel",
            ("exposure_stuck",),
            2,
            "medium",
            "metro-mobility",
            ("mt-mel-hoddle-cam-s2",),
            sources=("mt-analyst-ortiz",),
            allow=("model_regression",),
        ),
    ]

    E(
        Effect(
            "dropped_frames",
            at(1, 14),
            at(2, 20),
            devices=frozenset({"mt-tor-spadina-cam-e3"}),
            data={"keep": 0.38},
        )
    )
    E(
        Effect(
            "dropped_frames",
            at(4, 5),
            at(5, 11),
            devices=frozenset({"hx-rtm-dc2-aisle01"}),
            data={"keep": 0.42},
        )
    )
    specs += [
        Spec(
            "dropped_frames",
            "sensor_fault",
            "drops-tor",
            ("dropped_frames",),
            2,
            "easy",
            "metro-mobility",
            ("mt-tor-spadina-cam-e3",),
            sources=("mt-countcheck@1.2", "mt-analyst-ortiz"),
        ),
        Spec(
            "dropped_frames",
            "sensor_fault",
            "drops-rtm",
            ("dropped_frames",),
            2,
            "easy",
            "harbor-logistics",
            ("hx-rtm-dc2-aisle01",),
            sources=("hx-safety-desk",),
        ),
    ]

    # camera physically moved: no health anomaly, the zone/ROI mask no longer fits the view
    E(
        Effect(
            "moved",
            at(2, 7.7),
            at(5, 6),
            devices=frozenset({"hx-rtm-dc2-dock02"}),
            data={"alignment": 0.61},
        )
    )
    E(
        Effect(
            "moved",
            at(3, 8.2),
            at(7, 0),
            devices=frozenset({"km_mad03_shelf_03"}),
            data={"alignment": 0.64},
        )
    )
    devices["hx-rtm-dc2-dock02"].last_maintenance = at(5, 6).date()  # re-aimed on day 5
    reg.component_logs.append(
        (
            at(5, 6.1),
            "hx-zone-rules-hx-rtm-dc2",
            "INFO",
            "zone mask m1 re-registered for hx-rtm-dc2-dock02",
            {},
        )
    )
    devices["km_mad03_shelf_03"].last_maintenance = at(3, 7).date()
    reg.component_logs.append(
        (
            at(2, 7.72),
            "hx-agent-hx-rtm-dc2-dock02",
            "INFO",
            "scene change score 0.39 (tamper alert level 0.60)",
            {"score": 0.39},
        )
    )
    specs += [
        Spec(
            "camera_moved",
            "sensor_fault",
            "moved-rtm",
            ("camera_moved",),
            2,
            "hard",
            "harbor-logistics",
            ("hx-rtm-dc2-dock02",),
            sources=("hx-safety-desk",),
            abstain_ok=True,
            allow=("late_events",),
        ),
        Spec(
            "camera_moved",
            "sensor_fault",
            "moved-mad",
            ("camera_moved",),
            2,
            "hard",
            "kestrel-mart",
            ("km_mad03_shelf_03",),
            sources=("km.review.01", "km.review.02"),
            abstain_ok=True,
        ),
    ]

    # --- config drift: a release renamed a key; the old key is still set, default used -----
    simulate.RENAMES["pw-plate-ocr"] = ("5.0.0", "ocr.min_confidence", "ocr.min_char_conf")
    reg.release("pw-plate-ocr", "5.0.0", at(2, 15), "service pw-plate-ocr now at 5.0.0")
    reg.add_model(
        "plate-ocr",
        "5.0.0",
        "pw-plate-ocr",
        at(2, 15),
        0.55,
        {"char_acc": 0.987, "plate_acc": 0.962},
        "charset head v2; per-character filter",
    )
    reg.set(
        "ocr.min_char_conf",
        "tenant",
        "parkwise",
        0.62,
        at(3, 22),
        "a.okafor",
        "set per-char filter for 5.x",
        "pw-plate-ocr",
    )
    simulate.RENAMES["mt-bytetrack"] = ("0.9.0", "tracker.max_age", "tracker.track_buffer")
    reg.release("mt-bytetrack", "0.9.0", at(1, 3), "k8s rollout mt-bytetrack:0.9.0")
    reg.set(
        "tracker.track_buffer",
        "tenant",
        "metro-mobility",
        90,
        at(2, 9),
        "m.tanaka",
        "OPS-4410",
        "mt-bytetrack",
    )
    specs += [
        Spec(
            "config_drift",
            "config_drift",
            "rename-ocr",
            ("config_drift",),
            2,
            "medium",
            "parkwise",
            sources=("pw-ops-lee", "pw-ops-morgan"),
            claims=("wrong_class",),
        ),
        Spec(
            "config_drift",
            "config_drift",
            "rename-tracker",
            ("config_drift",),
            2,
            "medium",
            "metro-mobility",
            sources=("mt-analyst-ortiz",),
            allow=("defocus", "dropped_frames"),
            when=lambda o: not (o.meta["conditions"] - {"config_drift"}),
        ),
    ]

    # --- component interaction: site lowers fps below what the tracker's frames assume -----
    reg.set(
        "capture.fps",
        "site",
        "mt-mel-hoddle",
        5,
        at(4, 6),
        "netops-mel",
        "cap uplink per council network agreement",
        None,
    )
    reg.set(
        "capture.fps",
        "site",
        "hx-sin-tuas",
        4,
        at(1, 1),
        "site-it-sin",
        "WAN migration: reduce stream load",
        None,
    )
    for d in devices.values():
        if d.kind == "camera" and d.site_id == "mt-mel-hoddle":
            d.nominal_fps = 5
        if d.kind == "camera" and d.site_id == "hx-sin-tuas":
            d.nominal_fps = 4
    specs += [
        Spec(
            "fps_interaction",
            "component_interaction",
            "fps-mel",
            ("fps_interaction",),
            2,
            "hard",
            "metro-mobility",
            window=(at(4, 6), at(7, 0)),
            sources=("mt-analyst-ortiz", "mt-countcheck@1.2"),
            abstain_ok=True,
        ),
        Spec(
            "fps_interaction",
            "component_interaction",
            "fps-sin",
            ("fps_interaction",),
            2,
            "hard",
            "harbor-logistics",
            window=(at(1, 1), at(7, 0)),
            sources=("hx-safety-desk", "hx-shift-lead-ng"),
            abstain_ok=True,
        ),
    ]

    # --- late sensor events truncated by a stricter batch cutoff -------------------------
    reg.release(
        "hx-plc-bridge",
        "1.5.0",
        at(1, 9),
        "hx-plc-bridge upgraded to 1.5.0",
        {"note": "batches finalize at cutoff"},
    )
    for a, b in ((at(1, 13), at(1, 16)), (at(2, 13), at(2, 15.5))):
        E(Effect("plc_late", a, b, sites=frozenset({"hx-rtm-dc2"})))
    specs += [
        Spec(
            "late_events",
            "data_pipeline_regression",
            "late-rtm-1",
            ("late_events",),
            2,
            "medium",
            "harbor-logistics",
            window=(at(1, 13), at(1, 16)),
            sources=("hx-safety-desk",),
        ),
        Spec(
            "late_events",
            "data_pipeline_regression",
            "late-rtm-2",
            ("late_events",),
            2,
            "medium",
            "harbor-logistics",
            window=(at(2, 13), at(2, 15.5)),
            sources=("hx-shift-lead-ng", "hx-safety-desk"),
        ),
    ]

    # --- clock skew after an agent upgrade (canary of two devices) -----------------------
    for dev in ("hx-rtm-dc2-aisle03", "hx-rtm-dc2-dock04"):
        cid = f"hx-agent-{dev}"
        reg.release(cid, "4.3.0", at(3, 2), f"{cid} upgraded to 4.3.0", {"time_source": "rtc"})
        reg.release(cid, "4.3.1", at(4, 20), f"{cid} upgraded to 4.3.1", {"time_source": "ntp"})
        E(
            Effect(
                "clock_skew",
                at(3, 2),
                at(4, 20),
                devices=frozenset({dev}),
                data={"rate_s_per_h": 1.3 if dev.endswith("03") else -1.1},
            )
        )
    specs += [
        Spec(
            "clock_skew",
            "data_pipeline_regression",
            "skew-aisle03",
            ("clock_skew",),
            2,
            "hard",
            "harbor-logistics",
            ("hx-rtm-dc2-aisle03",),
            sources=("hx-safety-desk",),
            abstain_ok=True,
            allow=("late_events",),
        ),
        Spec(
            "clock_skew",
            "data_pipeline_regression",
            "skew-dock04",
            ("clock_skew",),
            2,
            "hard",
            "harbor-logistics",
            ("hx-rtm-dc2-dock04",),
            sources=("hx-shift-lead-ng",),
            abstain_ok=True,
            allow=("late_events",),
        ),
    ]

    # --- stale thresholds after a recalibrated model release -----------------------------
    reg.release("nw-sku-detector", "2.4.0", at(1, 16), "deployed nw-sku-detector 2.4.0")
    reg.add_model(
        "sku-det",
        "2.4.0",
        "nw-sku-detector",
        at(1, 16),
        0.58,
        {"map50": 0.921, "recall": 0.944},
        "new backbone; recalibrated",
    )
    reg.release("hx-pose-net", "3.1.0", at(0, 18), "hx-pose-net upgraded to 3.1.0")
    reg.add_model(
        "pose-net",
        "3.1.0",
        "hx-pose-net",
        at(0, 18),
        0.66,
        {"kp_ap": 0.781, "person_recall": 0.962},
        "retrained on DC2 footage",
    )
    reg.set(
        "threshold.alarm",
        "tenant",
        "harbor-logistics",
        0.66,
        at(1, 6),
        "s.lindqvist",
        "align with pose-net 3.1 calibration",
        "hx-alarm-threshold",
    )
    specs += [
        Spec(
            "stale_threshold",
            "threshold_miscalibration",
            "stale-nw",
            ("stale_threshold",),
            2,
            "medium",
            "northwind",
            sources=("nw-qa-anna", "nw-qa-raj"),
        ),
        Spec(
            "stale_threshold",
            "threshold_miscalibration",
            "stale-hx",
            ("stale_threshold",),
            2,
            "medium",
            "harbor-logistics",
            sources=("hx-safety-desk",),
        ),
    ]

    # --- policies resolved with the wrong scope -------------------------------------------
    for dev in ("nw0412-cam-a01", "nw0412-cam-b02"):
        reg.set(
            "policy.store_hours",
            "device",
            dev,
            "07:00-23:00",
            dt.datetime(2026, 9, 14, 17),  # noqa: DTZ001 (naive UTC, as the store keeps it)
            "installer-jk",
            "pilot aisle extended hours",
            "nw-restock-policy",
        )
    reg.set(
        "policy.store_hours",
        "site",
        "nw-store-0412",
        "closed",
        at(3, 8),
        "nw-ops-calendar",
        "Thanksgiving",
        "nw-restock-policy",
    )
    reg.set(
        "policy.store_hours",
        "site",
        "nw-store-0412",
        "08:00-21:00",
        at(4, 8),
        "nw-ops-calendar",
        "",
        "nw-restock-policy",
    )
    E(Effect("holiday_closed", at(3, 8), at(4, 8), sites=frozenset({"nw-store-0412"})))
    reg.release("pw-permit-policy", "2.7.0", at(0, 15), "service pw-permit-policy now at 2.7.0")
    reg.set(
        "policy.visitor_hours",
        "site",
        "pw-chi-loop-garage",
        "06:00-23:00",
        at(1, 6),
        "pw-chi-manager",
        "event week at the convention center",
        "pw-permit-policy",
    )
    E(Effect("scope_bug", at(0, 15), at(7, 0), sites=frozenset({"pw-chi-loop-garage"})))
    specs += [
        Spec(
            "policy_scope",
            "policy_misresolution",
            "scope-nw",
            ("policy_scope",),
            2,
            "medium",
            "northwind",
            ("nw0412-cam-a01", "nw0412-cam-b02"),
            sources=("nw-qa-anna", "nw-qa-raj"),
            allow=("stale_threshold",),
        ),
        Spec(
            "policy_scope",
            "policy_misresolution",
            "scope-chi",
            ("policy_scope",),
            2,
            "medium",
            "parkwise",
            sources=("pw-ops-lee", "pw-ops-morgan"),
        ),
    ]

    # --- an upstream transform both models share -------------------------------------------
    reg.release(
        "pw-frame-decoder",
        "3.3.0",
        at(4, 16),
        "service pw-frame-decoder now at 3.3.0",
        {"scaler": "fast"},
    )
    reg.release("pw-frame-decoder", "3.3.1", at(5, 14), "service pw-frame-decoder now at 3.3.1")
    reg.release("hx-frame-norm", "2.2.0", at(5, 8), "hx-frame-norm upgraded to 2.2.0")
    reg.release("hx-frame-norm", "2.2.1", at(5, 20), "hx-frame-norm upgraded to 2.2.1")
    specs += [
        Spec(
            "shared_upstream",
            "data_pipeline_regression",
            "decoder-pw",
            ("shared_upstream",),
            2,
            "medium",
            "parkwise",
            window=(at(4, 16), at(5, 14)),
            sources=("pw-ops-lee", "pw-ops-morgan"),
            allow=("policy_scope",),
        ),
        Spec(
            "shared_upstream",
            "data_pipeline_regression",
            "norm-hx",
            ("shared_upstream",),
            2,
            "medium",
            "harbor-logistics",
            window=(at(5, 8), at(5, 20)),
            sources=("hx-safety-desk", "hx-shift-lead-ng"),
        ),
    ]

    # --- model releases that made outputs worse ------------------------------------------
    reg.release("km.planogram-net", "3.2.0", at(1, 6), "rollout km.planogram-net -> 3.2.0 complete")
    reg.add_model(
        "planogram-net",
        "3.2.0",
        "km.planogram-net",
        at(1, 6),
        0.6,
        {"map50": 0.905, "recall": 0.931},
        "distilled student, 2.1x faster",
    )
    reg.release(
        "km.planogram-net",
        "3.1.0",
        at(2, 20),
        "rollout km.planogram-net -> 3.1.0 complete",
        {"reason": "rollback"},
    )
    reg.release("mt-vehicle-det", "8.1.0", at(2, 22), "k8s rollout mt-vehicle-det:8.1.0")
    reg.add_model(
        "veh-det",
        "8.1.0",
        "mt-vehicle-det",
        at(2, 22),
        None,
        {"map50": 0.884, "recall": 0.93},
        "more highway data",
    )
    reg.release(
        "mt-vehicle-det",
        "8.0.3",
        at(4, 4),
        "k8s rollout mt-vehicle-det:8.0.3",
        {"reason": "rollback"},
    )
    specs += [
        Spec(
            "model_regression",
            "model_regression",
            "regress-km",
            ("model_regression",),
            3,
            "medium",
            "kestrel-mart",
            window=(at(1, 6), at(2, 20)),
            sources=("km.review.01", "km.review.02"),
        ),
        Spec(
            "model_regression",
            "model_regression",
            "regress-mt",
            ("model_regression",),
            2,
            "medium",
            "metro-mobility",
            window=(at(2, 22), at(4, 4)),
            sources=("mt-analyst-ortiz", "mt-countcheck@1.2"),
        ),
    ]

    # --- distribution shift ---------------------------------------------------------------
    E(Effect("packaging_shift", at(4, 7), at(7, 0), sites=frozenset({"KM-OSL-01"})))
    E(
        Effect(
            "snow", at(4, 6), at(5, 18), sites=frozenset({"mt-tor-spadina"}), data={"strength": 0.9}
        )
    )
    sites["mt-tor-spadina"].weather.append(Weather("snow", at(4, 6), at(5, 18), 0.9))
    sites["mt-tor-spadina"].weather.sort(key=lambda w: w.start)
    specs += [
        Spec(
            "distribution_shift",
            "distribution_shift",
            "shift-osl",
            ("distribution_shift",),
            2,
            "medium",
            "kestrel-mart",
            sources=("km.review.01", "km.review.02"),
        ),
        Spec(
            "distribution_shift",
            "distribution_shift",
            "shift-tor",
            ("distribution_shift",),
            2,
            "hard",
            "metro-mobility",
            sources=("mt-analyst-ortiz",),
            abstain_ok=True,
        ),
    ]

    # --- unreliable evaluators: correct outputs, bad claims -------------------------------
    specs += [
        Spec(
            "judge_degraded",
            "evaluation_unreliable",
            "judge-hx",
            (None,),
            2,
            "medium",
            "harbor-logistics",
            sources=("vlm-judge@2.4",),
            wrong=False,
            claims=("bad_localization",),
            window=(at(0, 0), at(7, 0)),
            when=lambda o: o.decision == "alarm",
        ),
        Spec(
            "judge_degraded",
            "evaluation_unreliable",
            "judge-nw",
            (None,),
            2,
            "medium",
            "northwind",
            sources=("vlm-judge@2.4",),
            wrong=False,
            claims=("bad_localization",),
            window=(at(4, 0), at(7, 0)),
            when=lambda o: o.decision == "restock_task",
        ),
        Spec(
            "reviewer_tiny",
            "evaluation_unreliable",
            "tiny-km",
            (None,),
            2,
            "hard",
            "kestrel-mart",
            sources=("km.review.vikar2",),
            wrong=False,
            claims=("false_positive", "false_negative"),
            abstain_ok=True,
            window=(at(0, 0), at(1, 6)),
        ),
        Spec(
            "reviewer_tiny",
            "evaluation_unreliable",
            "tiny-pw",
            (None,),
            2,
            "hard",
            "parkwise",
            sources=("pw-ops-temp3",),
            wrong=False,
            claims=("wrong_class", "false_negative"),
            abstain_ok=True,
            window=(at(0, 0), at(2, 15)),
        ),
    ]

    # --- genuine model errors on clean days: the common case --------------------------------
    me = [
        ("northwind", ("nw-qa-anna", "nw-qa-raj", "vlm-judge@2.3"), (at(0, 0), at(1, 16)), 4),
        ("kestrel-mart", ("km.review.01", "km.review.02"), (at(2, 20), at(7, 0)), 4),
        ("parkwise", ("pw-ops-lee", "pw-ops-morgan"), (at(0, 0), at(7, 0)), 4),
        ("harbor-logistics", ("hx-safety-desk", "hx-shift-lead-ng"), (at(0, 0), at(7, 0)), 4),
        ("metro-mobility", ("mt-analyst-ortiz", "mt-countcheck@1.2"), (at(0, 0), at(7, 0)), 4),
    ]
    for tenant, srcs, window, n in me:
        specs.append(
            Spec(
                "model_error",
                "model_error",
                f"model-{tenant}",
                ("model",),
                n,
                "medium",
                tenant,
                window=window,
                sources=srcs,
            )
        )
    return specs


COMMENTS = {  # (shape, claim) -> what reviewers write
    ("retail_shelf", "false_positive"): [
        "shelf is fully faced",
        "no gap on the photo",
        "task raised for a full facing",
    ],
    ("retail_shelf", "false_negative"): [
        "empty facing on the photo, no task",
        "gap clearly visible, nothing created",
    ],
    ("retail_shelf", "other"): ["store closed for the holiday, task created anyway"],
    ("retail_shelf", "bad_localization"): ["gap box on the wrong facing"],
    ("plate_reader", "false_negative"): [
        "plate clearly visible, no read",
        "no read on a clean plate",
    ],
    ("plate_reader", "wrong_class"): ["plate misread", "read does not match the vehicle"],
    ("plate_reader", "other"): [
        "visitor turned away during allowed hours",
        "gate denied a valid visitor",
    ],
    ("plate_reader", "false_positive"): ["gate opened for an unknown vehicle"],
    ("warehouse_safety", "false_negative"): [
        "worker in the lane next to a forklift, no alarm",
        "near miss on the clip, no alarm",
    ],
    ("warehouse_safety", "false_positive"): [
        "no person near the forklift in the clip",
        "alarm with an empty aisle",
    ],
    ("warehouse_safety", "bad_localization"): ["zone box offset from the worker"],
    ("traffic_counting", "false_negative"): ["undercount vs manual tally ({m} counted)"],
    ("traffic_counting", "false_positive"): ["overcount vs manual tally ({m} counted)"],
}


NEGATIVE = ("no_task", "deferred", "no_alarm", "no_read", "deny")


def _plausible(o: Any, claims: tuple[str, ...]) -> str:
    """The claim a mistaken evaluator would make about this (correct) output."""
    if o.decision in NEGATIVE and "false_negative" in claims:
        return "false_negative"
    return next((c for c in claims if c != "false_negative"), claims[0])


def _dirty(effects: list[Effect], o: Any, hours: float = 24) -> bool:
    """A device-level fault on this device within ``hours`` before the output (or just after)."""
    lo = o.captured_at - dt.timedelta(hours=hours)
    return any(
        o.device_id in e.devices and e.start < o.captured_at + dt.timedelta(hours=1) and e.end > lo
        for e in effects
    )


def _recent_change(reg: Registry | None, o: Any, hours: float = 6) -> bool:
    """An unrelated config version in the output's scope chain took effect shortly before."""
    if reg is None:
        return False
    ids = {("device", o.device_id), ("site", o.site_id), ("tenant", o.tenant_id)}
    lo = o.captured_at - dt.timedelta(hours=hours)
    return any(
        (c.scope, c.scope_id) in ids and lo <= c.valid_from <= o.captured_at for c in reg.configs
    )


def plant(
    specs: list[Spec],
    outputs: list,
    effects: Effects,
    devices: dict,
    rng: random.Random,
    reg: Registry | None = None,
) -> tuple[list[dict], list[dict]]:
    """Evaluations and truth rows for every spec."""
    used: set[str] = set()
    evaluations: list[dict] = []
    truth: list[dict] = []
    dev_effects = {d: effects.for_device(dev) for d, dev in devices.items()}
    n = 0
    for spec in specs:
        cands = []
        for o in outputs:
            if o.tenant_id != spec.tenant or o.output_id in used:
                continue
            if spec.devices and o.device_id not in spec.devices:
                continue
            if spec.window and not (spec.window[0] <= o.captured_at < spec.window[1]):
                continue
            m = o.meta
            if spec.wrong:
                if not m["wrong"] or m["cause"] not in spec.causes or m["node"] is None:
                    continue
                own = {c for c in spec.causes if c}
                if m["conditions"] - own - set(spec.allow):
                    continue
                if spec.claims and m["claim"] not in spec.claims:
                    continue
                if spec.cls == "model_error" and _dirty(dev_effects[o.device_id], o):
                    continue
            else:
                if m["wrong"] or m["conditions"] or _dirty(dev_effects[o.device_id], o):
                    continue
            if spec.when is not None and not spec.when(o):
                continue
            cands.append(o)
        if not cands:
            import sys

            print(f"fleet: no candidate outputs for {spec.instance}", file=sys.stderr)
            continue
        spec.found = len(cands)  # type: ignore[attr-defined]
        step = max(1, len(cands) // spec.n)
        offset = rng.randrange(step)
        picked = [cands[min(len(cands) - 1, offset + i * step)] for i in range(spec.n)]
        for i, o in enumerate({x.output_id: x for x in picked}.values()):
            used.add(o.output_id)
            n += 1
            source = spec.sources[i % len(spec.sources)]
            auto = "judge" in source or "@" in source
            delay = (
                dt.timedelta(minutes=rng.uniform(4, 40))
                if auto
                else dt.timedelta(hours=rng.uniform(0.4, 26))
            )
            claim = o.meta["claim"] if spec.wrong else _plausible(o, spec.claims)
            ev_id = f"ev-{rng.randrange(16**12):012x}"
            shape = by_tenant(o.tenant_id).shape
            options = COMMENTS.get((shape, claim), ["output looks wrong"])
            manual = (
                o.meta["truth"].get("count", 0)
                if spec.wrong
                else int(o.meta["truth"].get("count", 0) * rng.uniform(0.85, 0.9))
            )
            comment = None if auto else rng.choice(options).format(m=manual)
            if auto:
                comment = f"judge verdict: {claim} (p={rng.uniform(0.7, 0.95):.2f})"
            evaluations.append(
                {
                    "evaluation_id": ev_id,
                    "output_id": o.output_id,
                    "source_kind": "automated" if auto else "human",
                    "source_id": source,
                    "claim": claim,
                    "comment": comment,
                    "created_at": o.captured_at + delay,
                }
            )
            node_stage = o.meta["node"] if spec.wrong else None
            failing = None
            if node_stage:
                failing = next(r["component_id"] for r in o.runs if r["stage"] == node_stage)
            paths = _paths(o, failing) if failing else []
            tags = [spec.difficulty, spec.cls, "fleet", *spec.tags]
            if spec.cls == "model_error" and (o.meta["light"] < 0.15 or _recent_change(reg, o)):
                tags.append("red_herring")
            truth.append(
                {
                    "evaluation_id": ev_id,
                    "output_id": o.output_id,
                    "category": spec.category,
                    "failing_node": failing,
                    "causal_path": paths[0] if paths else [],
                    "acceptable_causal_paths": paths,
                    "action": ACTION_FOR_CATEGORY[spec.category],
                    "route_to_training": spec.category == "model_error",
                    "abstain_ok": spec.abstain_ok,
                    "tags": tags,
                    "failure_class": spec.cls,
                    "instance": spec.instance,
                    "tenant_id": o.tenant_id,
                    "device_id": o.device_id,
                }
            )
    return evaluations, truth


def _paths(o: Any, start: str) -> list[list[str]]:
    """Every lineage path from ``start`` down to a node with no children (cause -> symptom)."""
    cid = {r["run_id"]: r["component_id"] for r in o.runs}
    children: dict[str, list[str]] = {}
    for a, b in o.edges:
        children.setdefault(a, []).append(b)
    first = next(r["run_id"] for r in o.runs if r["component_id"] == start)
    out: list[list[str]] = []

    def walk(rid: str, path: list[str]) -> None:
        path = [*path, cid[rid]]
        if not children.get(rid):
            out.append(path)
            return
        for ch in children[rid]:
            walk(ch, path)

    walk(first, [])
    return out[:4]
