"""Deployment shapes: each tenant's pipeline, component names, config keys and log wording.

Four shapes, five tenants. Component ids, key names, log phrasing and metric magnitudes are
the tenant's own (one tenant runs on cloud GPUs, another on in-store CPUs, another on edge
boxes); the simulator treats a stage only through its local name (``capture``, ``model``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEPLOYMENTS", "Deployment", "Stage", "by_tenant"]


@dataclass(frozen=True)
class Stage:
    name: str  # local name the simulator uses
    cid: str  # component id template: {dev} device id, {site} site id
    kind: str
    version: str
    keys: dict[str, Any] = field(default_factory=dict)  # config key -> built-in default
    parents: tuple[str, ...] = ()
    model_id: str | None = None
    latency_ms: float = 20.0


@dataclass
class Deployment:
    tenant_id: str
    shape: str
    profile: str
    stages: list[Stage]
    cameras_per_site: int
    device_name: str  # template with {site} {n} {role}
    camera_model: str
    firmware: str
    health_cadence_s: int
    nominal_fps: float
    resolution_h: int
    bitrate_kbps: float
    outdoor_roles: tuple[str, ...]
    roles: tuple[str, ...]
    words: dict[str, str]  # log phrasing
    reviewers: dict[str, tuple[str, int, float]]  # source_id -> (kind, history n, agreement)
    output_every_min: int = 15

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def cid(self, name: str, dev: str, site: str) -> str:
        return self.stage(name).cid.format(dev=dev, site=site)


NORTHWIND = Deployment(
    tenant_id="northwind",
    shape="retail_shelf",
    profile="retail",
    stages=[
        Stage("camera", "{dev}", "sensor", "fw", {}, ()),
        Stage(
            "capture",
            "nw-snapshot-{site}",
            "capture",
            "1.8.2",
            {"capture.jpeg_quality": 85, "capture.interval_s": 900},
            ("camera",),
            latency_ms=140,
        ),
        Stage(
            "prep",
            "nw-shelf-prep",
            "transform",
            "2.1.0",
            {"prep.crop_mode": "planogram", "prep.target_px": 1280},
            ("capture",),
            latency_ms=35,
        ),
        Stage(
            "model",
            "nw-sku-detector",
            "model",
            "2.3.1",
            {"detector.nms_iou": 0.5, "detector.batch": 8},
            ("prep",),
            model_id="sku-det",
            latency_ms=48,
        ),
        Stage(
            "threshold",
            "nw-gap-threshold",
            "threshold",
            "1.2.0",
            {"threshold.gap": 0.45},
            ("model",),
            latency_ms=2,
        ),
        Stage(
            "policy",
            "nw-restock-policy",
            "policy",
            "3.0.4",
            {"policy.store_hours": "08:00-21:00", "policy.min_gap_facings": 2},
            ("threshold",),
            latency_ms=6,
        ),
        Stage(
            "sink",
            "nw-task-sink",
            "sink",
            "1.4.0",
            {"sink.queue": "restock-tasks"},
            ("policy",),
            latency_ms=30,
        ),
    ],
    cameras_per_site=4,
    device_name="nw{sitenum}-cam-{role}{n:02d}",
    camera_model="Axis M3086-V",
    firmware="10.12.182",
    health_cadence_s=300,
    nominal_fps=5,
    resolution_h=1080,
    bitrate_kbps=900,
    outdoor_roles=(),
    roles=("a", "b"),
    words={
        "capture_ok": "snapshot fetched in {ms} ms ({kb} kB)",
        "model_ok": "inference done: {n} gaps, top={top:.2f}",
        "policy_ok": "restock decision={decision} (hours {hours})",
        "sink_ok": "task queued id={qid}",
        "deploy": "deployed {cid} {version}",
        "retry": "snapshot timeout, retry {n}/3",
    },
    reviewers={
        "nw-qa-anna": ("human", 412, 0.94),
        "nw-qa-raj": ("human", 233, 0.91),
        "vlm-judge@2.3": ("automated", 960, 0.92),
        "vlm-judge@2.4": ("automated", 0, 0),
    },
)

KESTREL = Deployment(
    tenant_id="kestrel-mart",
    shape="retail_shelf",
    profile="retail",
    stages=[
        Stage("camera", "{dev}", "sensor", "fw", {}, ()),
        Stage(
            "capture",
            "km.grabber.{site}",
            "capture",
            "0.14.3",
            {"grab.quality": "high", "grab.period_s": 900},
            ("camera",),
            latency_ms=420,
        ),
        Stage(
            "prep",
            "km.rectify",
            "transform",
            "5.2.0",
            {"rectify.shelf_roi": "auto@install", "rectify.size": 960},
            ("capture",),
            latency_ms=120,
        ),
        Stage(
            "model",
            "km.planogram-net",
            "model",
            "3.1.0",
            {"pnet.tiles": 4},
            ("prep",),
            model_id="planogram-net",
            latency_ms=310,
        ),
        Stage(
            "threshold",
            "km.oos-gate",
            "threshold",
            "2.0.1",
            {"oos.min_score": 0.6},
            ("model",),
            latency_ms=4,
        ),
        Stage(
            "policy",
            "km.replenish-rules",
            "policy",
            "1.9.0",
            {"rules.open_hours": "09:00-21:30", "rules.priority_aisles": "all"},
            ("threshold",),
            latency_ms=15,
        ),
        Stage(
            "sink",
            "km.wms-push",
            "sink",
            "4.4.2",
            {"wms.endpoint": "wms-eu"},
            ("policy",),
            latency_ms=85,
        ),
    ],
    cameras_per_site=4,
    device_name="km_{sitecode}_shelf_{n:02d}",
    camera_model="Hanwha XNV-8082R",
    firmware="2.21.03",
    health_cadence_s=600,
    nominal_fps=2,
    resolution_h=1440,
    bitrate_kbps=1400,
    outdoor_roles=(),
    roles=("s",),
    words={
        "capture_ok": "grab ok t={ms}ms size={kb}KB",
        "model_ok": "pnet: oos_slots={n} max={top:.3f}",
        "policy_ok": "rules -> {decision} [open {hours}]",
        "sink_ok": "WMS accepted ref={qid}",
        "deploy": "rollout {cid} -> {version} complete",
        "retry": "grab failed (ETIMEDOUT), attempt {n}",
    },
    reviewers={
        "km.review.01": ("human", 318, 0.93),
        "km.review.02": ("human", 187, 0.9),
        "km.review.vikar2": ("human", 3, 0.34),
    },
)

PARKWISE = Deployment(
    tenant_id="parkwise",
    shape="plate_reader",
    profile="parking",
    stages=[
        Stage("camera", "{dev}", "sensor", "fw", {}, ()),
        Stage(
            "capture",
            "pw-edge-{dev}",
            "capture",
            "6.2.0",
            {"capture.fps": 15, "capture.shutter_us": 1000},
            ("camera",),
            latency_ms=12,
        ),
        Stage(
            "decoder",
            "pw-frame-decoder",
            "transform",
            "3.2.4",
            {"decoder.resize_h": 720, "decoder.color_order": "RGB"},
            ("capture",),
            latency_ms=6,
        ),
        Stage(
            "finder",
            "pw-plate-finder",
            "model",
            "4.0.2",
            {"finder.min_box_px": 24},
            ("decoder",),
            model_id="plate-finder",
            latency_ms=9,
        ),
        Stage(
            "ocr",
            "pw-plate-ocr",
            "model",
            "4.6.1",
            {"ocr.min_confidence": 0.3},
            ("finder",),
            model_id="plate-ocr",
            latency_ms=14,
        ),
        Stage(
            "vtype",
            "pw-vehicle-type",
            "model",
            "1.3.0",
            {"vtype.classes": "car,van,truck,moto"},
            ("decoder",),
            model_id="veh-type",
            latency_ms=7,
        ),
        Stage(
            "threshold",
            "pw-read-threshold",
            "threshold",
            "1.0.3",
            {"threshold.read_conf": 0.55},
            ("ocr",),
            latency_ms=1,
        ),
        Stage(
            "policy",
            "pw-permit-policy",
            "policy",
            "2.6.0",
            {"policy.visitor_hours": "07:00-19:00", "policy.permit_db": "permits-v7"},
            ("threshold", "vtype"),
            latency_ms=18,
        ),
        Stage(
            "sink",
            "pw-gate-sink",
            "sink",
            "2.0.0",
            {"gate.pulse_ms": 800},
            ("policy",),
            latency_ms=40,
        ),
    ],
    cameras_per_site=3,
    device_name="pw-{sitecode}-lane{n}-{role}",
    camera_model="Hikvision iDS-TCM403",
    firmware="V5.5.800",
    health_cadence_s=60,
    nominal_fps=15,
    resolution_h=1080,
    bitrate_kbps=3800,
    outdoor_roles=("in", "out"),
    roles=("in", "out"),
    words={
        "capture_ok": "trigger frame grabbed {ms}ms",
        "model_ok": "plate box found conf={top:.2f}",
        "ocr_ok": "read '{plate}' conf={conf:.2f}",
        "policy_ok": "gate decision: {decision}",
        "sink_ok": "relay pulse sent",
        "deploy": "service {cid} now at {version}",
        "retry": "frame grab retry {n}",
    },
    reviewers={
        "pw-ops-lee": ("human", 276, 0.92),
        "pw-ops-morgan": ("human", 141, 0.9),
        "pw-ops-temp3": ("human", 3, 0.33),
    },
)

HARBOR = Deployment(
    tenant_id="harbor-logistics",
    shape="warehouse_safety",
    profile="warehouse",
    stages=[
        Stage("camera", "{dev}", "sensor", "fw", {}, ()),
        Stage(
            "capture",
            "hx-agent-{dev}",
            "capture",
            "4.2.1",
            {"capture.fps": 12},
            ("camera",),
            latency_ms=8,
        ),
        Stage(
            "norm",
            "hx-frame-norm",
            "transform",
            "2.1.3",
            {"norm.color_order": "RGB", "norm.size": 640},
            ("capture",),
            latency_ms=4,
        ),
        Stage(
            "pose",
            "hx-pose-net",
            "model",
            "3.0.2",
            {"pose.min_kp_conf": 0.35},
            ("norm",),
            model_id="pose-net",
            latency_ms=22,
        ),
        Stage(
            "ppe",
            "hx-ppe-det",
            "model",
            "1.7.0",
            {"ppe.classes": "vest,helmet"},
            ("norm",),
            model_id="ppe-det",
            latency_ms=11,
        ),
        Stage(
            "tracker",
            "hx-zone-tracker",
            "tracker",
            "2.4.0",
            {"tracker.min_dwell_frames": 24, "tracker.max_gap_frames": 6},
            ("pose",),
            latency_ms=3,
        ),
        Stage(
            "zones",
            "hx-zone-rules-{site}",
            "policy",
            "1.3.1",
            {"zones.mask_version": "m1", "zones.forklift_lanes": "A,B,C"},
            ("tracker", "ppe"),
            latency_ms=2,
        ),
        Stage("plc", "{plc}", "sensor", "fw", {}, ()),
        Stage(
            "bridge",
            "hx-plc-bridge",
            "transform",
            "1.4.2",
            {"bridge.batch_cutoff_ms": 1500, "bridge.batch_ms": 1000},
            ("plc",),
            latency_ms=5,
        ),
        Stage(
            "fusion",
            "hx-fusion",
            "fusion",
            "0.9.4",
            {"fusion.match_window_ms": 1500},
            ("zones", "bridge"),
            latency_ms=3,
        ),
        Stage(
            "threshold",
            "hx-alarm-threshold",
            "threshold",
            "1.1.0",
            {"threshold.alarm": 0.5},
            ("fusion",),
            latency_ms=1,
        ),
        Stage(
            "sink",
            "hx-alarm-sink",
            "sink",
            "1.0.7",
            {"alarm.siren": True},
            ("threshold",),
            latency_ms=15,
        ),
    ],
    cameras_per_site=4,
    device_name="hx-{sitecode}-{role}{n:02d}",
    camera_model="Bosch FLEXIDOME 5100i",
    firmware="9.10.0042",
    health_cadence_s=30,
    nominal_fps=12,
    resolution_h=1080,
    bitrate_kbps=2600,
    outdoor_roles=("dock",),
    roles=("aisle", "dock"),
    output_every_min=10,
    words={
        "capture_ok": "frames {frames} ok",
        "model_ok": "pose: {n} persons kp={top:.2f}",
        "policy_ok": "zone check: {decision}",
        "sink_ok": "alarm bus ack",
        "deploy": "{cid} upgraded to {version}",
        "retry": "rtsp reconnect #{n}",
    },
    reviewers={
        "hx-safety-desk": ("human", 520, 0.95),
        "hx-shift-lead-ng": ("human", 98, 0.89),
        "vlm-judge@2.4": ("automated", 0, 0),
    },
)

METRO = Deployment(
    tenant_id="metro-mobility",
    shape="traffic_counting",
    profile="traffic",
    stages=[
        Stage("camera", "{dev}", "sensor", "fw", {}, ()),
        Stage(
            "capture",
            "mt-agent-{dev}",
            "capture",
            "2.9.0",
            {"capture.fps": 15},
            ("camera",),
            latency_ms=25,
        ),
        Stage(
            "model",
            "mt-vehicle-det",
            "model",
            "8.0.3",
            {"det.conf_min": 0.25},
            ("capture",),
            model_id="veh-det",
            latency_ms=1900,
        ),
        Stage(
            "tracker",
            "mt-bytetrack",
            "tracker",
            "0.8.2",
            {"tracker.min_track_frames": 10, "tracker.max_age": 30},
            ("model",),
            latency_ms=400,
        ),
        Stage(
            "counter",
            "mt-line-counter",
            "transform",
            "1.2.0",
            {"counter.direction": "both"},
            ("tracker",),
            latency_ms=60,
        ),
        Stage(
            "sink",
            "mt-hourly-agg",
            "sink",
            "3.1.1",
            {"agg.publish_delay_s": 300},
            ("counter",),
            latency_ms=250,
        ),
    ],
    cameras_per_site=4,
    device_name="mt-{sitecode}-cam-{role}{n}",
    camera_model="Axis Q1798-LE",
    firmware="11.8.64",
    health_cadence_s=120,
    nominal_fps=15,
    resolution_h=2160,
    bitrate_kbps=6200,
    outdoor_roles=("n", "s", "e", "w"),
    roles=("n", "s", "e", "w"),
    output_every_min=60,
    words={
        "capture_ok": "segment closed frames={frames}",
        "model_ok": "det batch: {n} boxes mean={top:.2f}",
        "policy_ok": "count {decision}",
        "sink_ok": "hour published vehicles={n}",
        "deploy": "k8s rollout {cid}:{version}",
        "retry": "upload retry {n}",
    },
    reviewers={
        "mt-analyst-ortiz": ("human", 205, 0.93),
        "mt-countcheck@1.2": ("automated", 640, 0.9),
    },
)

DEPLOYMENTS = [NORTHWIND, KESTREL, PARKWISE, HARBOR, METRO]


def by_tenant(tenant_id: str) -> Deployment:
    return next(d for d in DEPLOYMENTS if d.tenant_id == tenant_id)
