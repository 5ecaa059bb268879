"""Config versions at four scopes, component releases and the model registry.

Resolution follows the store contract: device > site > tenant > global, and within one scope
the version whose window holds ``t`` with the latest ``valid_from``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from evals.fleet.deployments import DEPLOYMENTS

__all__ = ["ConfigVersion", "Registry", "seed_registry"]

SCOPE_ORDER = ("device", "site", "tenant", "global")


@dataclass
class ConfigVersion:
    key: str
    scope: str
    scope_id: str
    value: Any
    valid_from: dt.datetime
    author: str
    change_note: str
    component_id: str | None
    valid_to: dt.datetime | None = None
    config_id: str = ""


@dataclass
class Registry:
    configs: list[ConfigVersion] = field(default_factory=list)
    versions: dict[str, list[tuple[dt.datetime, str]]] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    component_logs: list[tuple] = field(default_factory=list)  # (ts, cid, level, msg, attrs)
    _index: dict[tuple[str, str, str], list[ConfigVersion]] = field(default_factory=dict)

    def set(
        self,
        key: str,
        scope: str,
        scope_id: str,
        value: Any,
        at: dt.datetime,
        author: str,
        note: str,
        component_id: str | None = None,
    ) -> ConfigVersion:
        cv = ConfigVersion(key, scope, scope_id, value, at, author, note, component_id)
        self.configs.append(cv)
        return cv

    def finalize(self, rng: random.Random) -> None:
        self._index = {}
        for cv in sorted(self.configs, key=lambda c: c.valid_from):
            self._index.setdefault((cv.key, cv.scope, cv.scope_id), []).append(cv)
        for chain in self._index.values():
            for a, b in itertools.pairwise(chain):
                a.valid_to = b.valid_from
        for i, cv in enumerate(sorted(self.configs, key=lambda c: (c.valid_from, c.key))):
            cv.config_id = f"cfg-{rng.randrange(16**6):06x}{i:04d}"
        for releases in self.versions.values():
            releases.sort()

    def resolve(
        self,
        key: str,
        dev: str,
        site: str,
        tenant: str,
        t: dt.datetime,
        scopes: tuple[str, ...] = SCOPE_ORDER,
    ) -> tuple[Any, str] | None:
        ids = {"device": dev, "site": site, "tenant": tenant, "global": "*"}
        for scope in scopes:
            best = None
            for cv in self._index.get((key, scope, ids[scope]), ()):
                if cv.valid_from <= t and (cv.valid_to is None or t < cv.valid_to):
                    best = cv
            if best is not None:
                return best.value, scope
        return None

    def release(
        self,
        cid: str,
        version: str,
        at: dt.datetime,
        msg: str,
        attrs: dict[str, Any] | None = None,
        level: str = "INFO",
    ) -> None:
        self.versions.setdefault(cid, []).append((at, version))
        self.component_logs.append((at, cid, level, msg, {"version": version, **(attrs or {})}))

    def version(self, cid: str, t: dt.datetime, default: str) -> str:
        current = default
        for at, v in self.versions.get(cid, ()):
            if at <= t:
                current = v
            else:
                break
        return current

    def add_model(
        self,
        model_id: str,
        version: str,
        cid: str,
        at: dt.datetime,
        rec: float | None,
        metrics: dict[str, float],
        notes: str,
    ) -> None:
        self.models.append(
            {
                "model_id": model_id,
                "version": version,
                "component_id": cid,
                "released_at": at,
                "recommended_threshold": rec,
                "metrics": metrics,
                "notes": notes,
            }
        )


T0 = dt.datetime(2026, 6, 2, 9, 0)  # noqa: DTZ001 (naive UTC, as the store keeps it)

# tenant-specific values that differ from the components' built-in defaults
TENANT_VALUES: dict[str, dict[str, Any]] = {
    "parkwise": {"ocr.min_confidence": 0.62, "capture.shutter_us": 800},
    "kestrel-mart": {"oos.min_score": 0.6, "rectify.size": 1024},
    "harbor-logistics": {"norm.size": 640},
    "metro-mobility": {"tracker.max_age": 90},
}

# unrelated keys each tenant churns (key, stage consuming it or None, values)
NOISE_KEYS: dict[str, list[tuple[str, str | None, list[Any]]]] = {
    "northwind": [
        ("notify.slack_channel", "sink", ["#nw-ops", "#nw-restock", "#nw-store-ops"]),
        ("sink.batch_size", "sink", [10, 20, 25]),
        ("capture.jpeg_quality", "capture", [80, 85, 90]),
        ("policy.min_gap_facings", "policy", [2, 3]),
        ("retention.days", None, [30, 45, 60]),
    ],
    "kestrel-mart": [
        ("wms.retry_backoff_s", "sink", [5, 10, 15]),
        ("grab.quality", "capture", ["high", "max"]),
        ("rules.priority_aisles", "policy", ["all", "A1-A9", "chilled"]),
        ("ui.overlay", None, ["on", "off"]),
    ],
    "parkwise": [
        ("gate.pulse_ms", "sink", [600, 800, 1000]),
        ("policy.permit_db", "policy", ["permits-v7", "permits-v8"]),
        ("capture.shutter_us", "capture", [500, 800, 1000]),
        ("billing.grace_min", None, [10, 15, 20]),
    ],
    "harbor-logistics": [
        ("alarm.siren", "sink", [True, False]),
        ("zones.forklift_lanes", "zones", ["A,B,C", "A,B,C,D", "B,C"]),
        ("bridge.batch_ms", "bridge", [500, 1000]),
        ("report.shift_summary", None, ["06:00", "14:00", "22:00"]),
    ],
    "metro-mobility": [
        ("agg.publish_delay_s", "sink", [240, 300, 600]),
        ("counter.direction", "counter", ["both", "inbound", "both"]),
        ("det.conf_min", "model", [0.25, 0.25, 0.3]),
        ("export.open_data", None, ["daily", "hourly"]),
    ],
}
GLOBAL_NOISE: list[tuple[str, list[Any]]] = [
    ("telemetry.interval_s", [30, 60, 120]),
    ("log.level", ["INFO", "INFO", "DEBUG"]),
    ("agent.update_channel", ["stable", "stable", "beta"]),
]
AUTHORS = ["ops-bot", "j.meyer", "a.okafor", "s.lindqvist", "m.tanaka", "terraform", "r.silva"]
NOTES = [
    "routine tuning",
    "per ticket OPS-{n}",
    "align with site request",
    "cleanup",
    "revert",
    "quarterly review",
    "requested by store manager",
    "CHG{n}",
    "",
]


def seed_registry(
    rng: random.Random, devices: list, start: dt.datetime, end: dt.datetime
) -> Registry:
    """Baseline configs, unrelated churn at all four scopes, releases and models."""
    reg = Registry()
    for key, values in GLOBAL_NOISE:
        reg.set(key, "global", "*", values[0], T0, "terraform", "baseline")
    reg.set("agent.ntp.enabled", "global", "*", True, T0, "terraform", "baseline")
    for dep in DEPLOYMENTS:
        tv = TENANT_VALUES.get(dep.tenant_id, {})
        for st in dep.stages:
            reg.versions.setdefault(st.cid, [])
            for key, default in st.keys.items():
                cid = st.cid if "{" not in st.cid else None
                reg.set(
                    key,
                    "tenant",
                    dep.tenant_id,
                    tv.get(key, default),
                    T0 + dt.timedelta(days=rng.randrange(0, 60)),
                    rng.choice(AUTHORS),
                    "initial rollout",
                    cid,
                )
    # unrelated churn: older history plus the week itself
    tenant_devices: dict[str, list] = {}
    for d in devices:
        tenant_devices.setdefault(d.tenant_id, []).append(d)
    n = 0
    for dep in DEPLOYMENTS:
        devs = [d for d in tenant_devices[dep.tenant_id] if d.kind == "camera"]
        sites = sorted({d.site_id for d in devs})
        for _ in range(34):
            key, stage, values = rng.choice(NOISE_KEYS[dep.tenant_id])
            scope = rng.choice(["tenant", "site", "site", "device", "device"])
            sid = {
                "tenant": dep.tenant_id,
                "site": rng.choice(sites),
                "device": rng.choice(devs).device_id,
            }[scope]
            recent = rng.random() < 0.55
            at = (
                (
                    start
                    + dt.timedelta(
                        minutes=rng.randrange(0, int((end - start).total_seconds() / 60))
                    )
                )
                if recent
                else start - dt.timedelta(days=rng.uniform(3, 80))
            )
            cid = None
            if stage:
                tpl = dep.stage(stage).cid
                cid = tpl if "{" not in tpl else None
            n += 1
            reg.set(
                key,
                scope,
                sid,
                rng.choice(values),
                at.replace(second=0, microsecond=0),
                rng.choice(AUTHORS),
                rng.choice(NOTES).format(n=4100 + n),
                cid,
            )
    for _ in range(8):
        key, values = rng.choice(GLOBAL_NOISE)
        at = start + dt.timedelta(minutes=rng.randrange(0, int((end - start).total_seconds() / 60)))
        reg.set(
            key,
            "global",
            "*",
            rng.choice(values),
            at.replace(second=0, microsecond=0),
            "terraform",
            rng.choice(NOTES).format(n=5000 + _),
        )
    # initial component versions and harmless releases during the week
    for dep in DEPLOYMENTS:
        for st in dep.stages:
            if st.kind == "sensor":
                continue
            cids = {
                st.cid.format(dev=d.device_id, site=d.site_id, plc=d.plc)
                for d in tenant_devices[dep.tenant_id]
                if d.kind == "camera"
            }
            for cid in cids:
                reg.versions.setdefault(cid, []).append((T0, st.version))
    harmless = [
        ("nw-task-sink", "1.4.1", "northwind"),
        ("km.wms-push", "4.5.0", "kestrel-mart"),
        ("pw-gate-sink", "2.0.1", "parkwise"),
        ("hx-alarm-sink", "1.0.8", "harbor-logistics"),
        ("mt-line-counter", "1.2.1", "metro-mobility"),
        ("nw-shelf-prep", "2.1.1", "northwind"),
        ("pw-vehicle-type", "1.3.1", "parkwise"),
    ]
    from evals.fleet.deployments import by_tenant

    for cid, version, tenant in harmless:
        at = start + dt.timedelta(hours=rng.uniform(10, 150))
        words = by_tenant(tenant).words
        reg.release(cid, version, at, words["deploy"].format(cid=cid, version=version))
    # model registry: history plus current versions
    for dep in DEPLOYMENTS:
        for st in dep.stages:
            if st.kind != "model":
                continue
            rec = {"sku-det": 0.45, "planogram-net": 0.6, "plate-ocr": 0.55, "pose-net": 0.5}.get(
                st.model_id or ""
            )
            major, minor, *_ = st.version.split(".")
            old = f"{major}.{max(0, int(minor) - 1)}.0"
            reg.add_model(
                st.model_id or "",
                old,
                st.cid,
                T0 - dt.timedelta(days=95),
                rec,
                {"map50": round(rng.uniform(0.8, 0.9), 3)},
                "previous release",
            )
            reg.add_model(
                st.model_id or "",
                st.version,
                st.cid,
                T0 + dt.timedelta(days=20),
                rec,
                {
                    "map50": round(rng.uniform(0.85, 0.93), 3),
                    "recall": round(rng.uniform(0.88, 0.95), 3),
                },
                "current production",
            )
    return reg
