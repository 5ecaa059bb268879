"""The demo world's fixed shape: time span, fleet layout, pipeline nodes, metrics, features.

Everything here is deterministic for a seed; the clock is a fixed constant so two builds
with the same seed write identical stores.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

END: dt.datetime = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
HISTORY_START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Profile:
    """How big a world to build."""

    name: str
    tenants: int
    sites: int
    cameras: int
    days: int
    outputs: int  # background outputs with full lineage
    health_step_s: int
    feature_step_s: int
    cases_per_class: int
    multi_faults: int
    debug_lines_per_run: int  # extra DEBUG chatter (bench only)

    @property
    def start(self) -> dt.datetime:
        return END - self.days * DAY


PROFILES: dict[str, Profile] = {
    "small": Profile("small", 5, 2, 3, 10, 3000, 120, 120, 7, 6, 0),
    "medium": Profile("medium", 8, 3, 3, 14, 10000, 120, 120, 14, 12, 0),
    "bench": Profile("bench", 24, 5, 2, 10, 91000, 60, 300, 1, 2, 9),
}


@dataclass(frozen=True)
class Device:
    device_id: str
    tenant_id: str
    site_id: str
    door_id: str
    focus: float
    exposure: float
    bitrate: float
    model: str
    firmware: str


@dataclass(frozen=True)
class Fleet:
    tenants: tuple[str, ...]
    sites: tuple[str, ...]
    cameras: tuple[Device, ...]
    doors: tuple[tuple[str, str, str], ...]  # (door_id, tenant_id, site_id)

    def site_cameras(self, site_id: str) -> list[Device]:
        return [c for c in self.cameras if c.site_id == site_id]


CAMERA_MODELS = (
    ("AXIS-P3265", "fw-10.12.1"),
    ("HIK-2CD2386", "fw-5.7.3"),
    ("BOSCH-D5100", "fw-8.1.0"),
)


def make_fleet(profile: Profile, rng: random.Random) -> Fleet:
    tenants, sites, cams, doors = [], [], [], []
    for t in range(1, profile.tenants + 1):
        tid = f"t{t:02d}"
        tenants.append(tid)
        for s in range(1, profile.sites + 1):
            sid = f"{tid}-s{s:02d}"
            sites.append(sid)
            door = f"door-{sid}-1"
            doors.append((door, tid, sid))
            for c in range(1, profile.cameras + 1):
                model, fw = CAMERA_MODELS[rng.randrange(len(CAMERA_MODELS))]
                cams.append(
                    Device(
                        device_id=f"cam-{sid}-c{c:02d}",
                        tenant_id=tid,
                        site_id=sid,
                        door_id=door,
                        focus=round(rng.uniform(0.74, 0.9), 3),
                        exposure=round(rng.uniform(0.42, 0.58), 3),
                        bitrate=round(rng.uniform(3400, 4600)),
                        model=model,
                        firmware=fw,
                    )
                )
    return Fleet(tuple(tenants), tuple(sites), tuple(cams), tuple(doors))


# Pipeline nodes in lineage order: (index, component_id or role, kind, version, start offset ms).
# Index 0 is the camera (component = device id), index 7 the site's door sensor.
NODES: tuple[tuple[int, str, str, str, int], ...] = (
    (0, "@camera", "sensor", "@firmware", 0),
    (1, "frame-capture", "capture", "1.8.2", 15),
    (2, "snapshot-api", "capture", "2.3.0", 60),
    (3, "preprocess", "transform", "2.4.1", 180),
    (4, "detector", "model", "@model", 230),
    (5, "tracker", "tracker", "1.6.0", 300),
    (6, "fusion", "fusion", "0.9.3", 340),
    (7, "@door", "sensor", "fw-1.1.4", -4000),
    (8, "threshold", "threshold", "1.2.0", 360),
    (9, "policy-engine", "policy", "3.0.4", 370),
    (10, "alert-sink", "sink", "1.0.7", 390),
)
NODE_INDEX = {name: idx for idx, name, *_ in NODES}
EDGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (4, 5),
    (5, 6),
    (7, 6),
    (6, 8),
    (8, 9),
    (9, 10),
)
# Nodes from each camera-chain node down to the sink, for truth causal paths.
CHAIN = (1, 2, 3, 4, 5, 6, 8, 9, 10)

# Run metrics per node: name -> (base, relative noise span). Base None = per-device value.
RUN_METRICS: dict[int, dict[str, tuple[float | None, float]]] = {
    0: {"focus": (None, 0.06), "exposure": (None, 0.06), "sensor_temp_c": (41.0, 0.06)},
    1: {"frames_received": (30.0, 0.04), "capture_latency_ms": (42.0, 0.08)},
    2: {"resolution_h": (1080.0, 0.0), "bytes": (352000.0, 0.08), "latency_ms": (118.0, 0.08)},
    3: {"mean_intensity": (0.46, 0.06), "output_height": (720.0, 0.0), "latency_ms": (21.0, 0.08)},
    4: {
        "mean_confidence": (0.78, 0.06),
        "candidate_boxes": (48.0, 0.08),
        "latency_ms": (36.0, 0.08),
    },
    5: {"track_continuity": (0.92, 0.05), "active_tracks": (5.0, 0.08), "latency_ms": (6.0, 0.08)},
    6: {"agreement": (0.9, 0.05), "latency_ms": (4.0, 0.08)},
    7: {"signal_dbm": (-61.0, 0.05), "events": (1.0, 0.0)},
    8: {"latency_ms": (1.2, 0.08)},
    9: {"rules_evaluated": (14.0, 0.0), "latency_ms": (2.5, 0.08)},
    10: {"delivery_ms": (310.0, 0.08)},
}
STATIC_PARAMS: dict[int, dict[str, object]] = {
    1: {"clip_s": 2.0, "target_fps": 15},
    2: {"requested_resolution_h": 1080, "quality": "high"},
    10: {"channel": "webhook"},
}

NOMINAL_FPS = 15.0
NOMINAL_RES = 1080.0

# feature -> (inner bin edges, expected share per bin); every feature lives in [0, 1]
FEATURES: dict[str, tuple[list[float], list[float]]] = {
    "brightness": (
        [0.06, 0.15, 0.3, 0.5, 0.7, 0.85, 0.94],
        [0.004, 0.046, 0.15, 0.3, 0.3, 0.15, 0.046, 0.004],
    ),
    "glare": ([0.05, 0.15, 0.3, 0.5, 0.7, 0.9], [0.25, 0.3, 0.25, 0.13, 0.056, 0.01, 0.004]),
    "occlusion": ([0.1, 0.25, 0.4, 0.55, 0.7, 0.85], [0.3, 0.3, 0.2, 0.12, 0.05, 0.026, 0.004]),
    "object_scale": (
        [0.02, 0.05, 0.1, 0.2, 0.35, 0.5],
        [0.004, 0.05, 0.2, 0.36, 0.25, 0.1, 0.036],
    ),
    "sharpness": ([0.15, 0.3, 0.45, 0.6, 0.75, 0.9], [0.004, 0.04, 0.12, 0.26, 0.33, 0.2, 0.046]),
}

MODEL_ID = "person-det"
DEFAULT_MODEL = "3.2.0"
# version, released_at, recommended threshold, notes (history before the span)
MODEL_HISTORY = (
    ("3.0.0", dt.datetime(2026, 5, 12, 9, tzinfo=dt.UTC), 0.5, "baseline release"),
    ("3.1.0", dt.datetime(2026, 7, 16, 8, tzinfo=dt.UTC), 0.5, "more night-time data"),
    ("3.2.0", dt.datetime(2026, 9, 21, 7, tzinfo=dt.UTC), 0.52, "distilled backbone"),
)

# key -> (index of the consuming node, global default)
CONFIG_KEYS: dict[str, tuple[int, object]] = {
    "threshold.person": (8, 0.5),
    "policy.night_mode": (9, False),
    "policy.quiet_hours": (9, "off"),
    "policy.min_dwell_s": (9, 2.0),
    "detector.min_box_px": (4, 16),
    "detector.nms_iou": (4, 0.45),
    "tracker.max_gap": (5, 12),
    "tracker.min_hits": (5, 3),
    "preprocess.resize_h": (3, 720),
    "preprocess.gamma": (3, 1.0),
}


def component_of(node: int) -> str:
    return NODES[node][1]
