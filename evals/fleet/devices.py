"""Devices and their health: cameras (indoor, outdoor) and the warehouse proximity PLCs.

A camera's view (brightness, contrast, focus, exposure) comes from its site's light and
weather plus any active device effect (a planted fault); health samples are emitted at the
tenant's cadence (30 s .. 10 min) from the same view, so health and model inputs agree.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from evals.fleet.deployments import DEPLOYMENTS, Deployment
from evals.fleet.sites import SITES, WEATHER_EFFECT, Site, activity, daylight

__all__ = ["Device", "Effect", "Effects", "health_rows", "make_devices", "view"]

SITECODE = {
    "nw-store-0412": "0412",
    "nw-store-0877": "0877",
    "KM-MAD-03": "mad03",
    "KM-OSL-01": "osl01",
    "pw-phx-skyharbor-p4": "phx-p4",
    "pw-chi-loop-garage": "chi-loop",
    "hx-rtm-dc2": "rtm-dc2",
    "hx-sin-tuas": "sin-tuas",
    "mt-mel-hoddle": "mel-hoddle",
    "mt-tor-spadina": "tor-spadina",
}


@dataclass
class Device:
    device_id: str
    tenant_id: str
    site_id: str
    kind: str
    role: str
    outdoor: bool
    model: str
    firmware: str
    install_date: dt.date
    last_maintenance: dt.date
    nominal_fps: float | None
    resolution_h: float | None
    cadence_s: int
    bitrate_kbps: float = 0.0
    plc: str | None = None  # paired proximity sensor (warehouse cameras)
    seed: int = 0


@dataclass
class Effect:
    """A planted condition: active on some devices / sites / tenants for a time window."""

    name: str
    start: dt.datetime
    end: dt.datetime
    devices: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset()
    data: dict[str, Any] = field(default_factory=dict)

    def covers(self, dev: Device) -> bool:
        return (
            dev.device_id in self.devices
            or dev.site_id in self.sites
            or dev.tenant_id in self.tenants
        )


class Effects:
    def __init__(self) -> None:
        self.items: list[Effect] = []

    def add(self, effect: Effect) -> Effect:
        self.items.append(effect)
        return effect

    def for_device(self, dev: Device) -> list[Effect]:
        return [e for e in self.items if e.covers(dev)]

    @staticmethod
    def active(effects: list[Effect], t: dt.datetime) -> dict[str, Effect]:
        return {e.name: e for e in effects if e.start <= t < e.end}


def make_devices(rng: random.Random) -> tuple[list[Device], dict[str, Site]]:
    sites = {s.site_id: s for s in SITES}
    devices: list[Device] = []
    for dep in DEPLOYMENTS:
        for site in (s for s in SITES if s.tenant_id == dep.tenant_id):
            code = SITECODE[site.site_id]
            installed = dt.date(2024, 3, 4) + dt.timedelta(days=rng.randrange(0, 500))
            plcs: list[str] = []
            if dep.shape == "warehouse_safety":
                for k in (7, 12):
                    pid = f"hx-{code}-plc-fl{k:02d}"
                    plcs.append(pid)
                    devices.append(
                        Device(
                            pid,
                            dep.tenant_id,
                            site.site_id,
                            "proximity_sensor",
                            "forklift",
                            False,
                            "Sick RS4-PLC",
                            "3.4.1",
                            installed,
                            installed + dt.timedelta(days=300),
                            None,
                            None,
                            30,
                            seed=rng.randrange(1 << 30),
                        )
                    )
            for n in range(1, dep.cameras_per_site + 1):
                role = dep.roles[(n - 1) % len(dep.roles)]
                name = dep.device_name.format(sitenum=code, sitecode=code, role=role, n=n)
                cadence = dep.health_cadence_s
                if dep.shape == "warehouse_safety" and (site.site_id == "hx-rtm-dc2" or n > 2):
                    cadence = 60
                if dep.shape == "plate_reader" and site.site_id == "pw-chi-loop-garage":
                    cadence = 90
                maint = installed + dt.timedelta(days=rng.randrange(200, 560))
                maint = min(maint, dt.date(2026, 11, 10))
                devices.append(
                    Device(
                        name,
                        dep.tenant_id,
                        site.site_id,
                        "camera",
                        role,
                        role in dep.outdoor_roles,
                        dep.camera_model,
                        dep.firmware,
                        installed,
                        maint,
                        dep.nominal_fps,
                        dep.resolution_h,
                        cadence,
                        dep.bitrate_kbps,
                        plc=plcs[(n - 1) % 2] if plcs else None,
                        seed=rng.randrange(1 << 30),
                    )
                )
    return devices, sites


def _ramp(e: Effect, t: dt.datetime) -> float:
    ramp = e.data.get("ramp_min", 0)
    if not ramp:
        return 1.0
    return max(0.0, min(1.0, (t - e.start).total_seconds() / 60 / ramp))


def view(
    dev: Device, site: Site, t: dt.datetime, active: dict[str, Effect], rng: random.Random
) -> dict[str, float]:
    """What the camera sees at ``t``: light, brightness, contrast, focus, exposure, alignment."""
    if dev.outdoor:
        light = daylight(site, t)
        b, c, f = 0.13 + 0.55 * light, 0.33 + 0.3 * light, 0.79 + 0.05 * light
        exposure = 0.9 + 31.5 * (1 - light)
        w = site.weather_at(t)
        if w is not None:
            db, dc, df = WEATHER_EFFECT[w.kind]
            b += db * w.strength * (0.5 + 0.5 * light if w.kind != "snow" else 1.0)
            c += dc * w.strength
            f += df * w.strength
            exposure *= 1 + 0.3 * w.strength if w.kind in ("rain", "overcast") else 1
    else:
        light = 1.0
        b, c, f, exposure = 0.52, 0.56, 0.84, 8.0
    if (e := active.get("defocus")) is not None:
        f -= e.data["depth"] * _ramp(e, t)
        c -= 0.2 * e.data["depth"] * _ramp(e, t)
    if (e := active.get("exposure_stuck")) is not None:
        stuck = e.data["value"]
        b = min(0.99, b + (stuck - exposure) / 38.0)
        exposure = stuck
    if (e := active.get("snow")) is not None:
        b += 0.2 * e.data.get("strength", 1.0)
        c -= 0.15
    align = 0.95 if "moved" not in active else active["moved"].data["alignment"]
    return {
        "light": light,
        "brightness": max(0.01, min(0.99, b + rng.gauss(0, 0.025))),
        "contrast": max(0.02, min(0.99, c + rng.gauss(0, 0.02))),
        "focus": max(0.02, min(0.99, f + rng.gauss(0, 0.012))),
        "exposure_ms": round(exposure * (1 + rng.gauss(0, 0.02)), 2)
        if "exposure_stuck" not in active
        else float(active["exposure_stuck"].data["value"]),
        "alignment": max(0.0, min(1.0, align + rng.gauss(0, 0.012))),
    }


def health_rows(
    dev: Device,
    site: Site,
    dep: Deployment | None,
    effects: list[Effect],
    start: dt.datetime,
    end: dt.datetime,
    configured_fps: Callable[[dt.datetime], float],
) -> Iterator[tuple]:
    """(device_id, ts, metric, value) samples over [start, end)."""
    rng = random.Random(dev.seed)
    step = dt.timedelta(seconds=dev.cadence_s)
    t = start + dt.timedelta(seconds=rng.uniform(0, dev.cadence_s))
    did = dev.device_id
    if dev.kind == "proximity_sensor":
        battery = rng.uniform(70, 95)
        n = 0
        while t < end:
            active = Effects.active(effects, t)
            age = rng.uniform(0, 28)
            yield did, t, "heartbeat_age_s", round(age, 1)
            if n % 4 == 0:
                rssi = -61 + rng.gauss(0, 2.5) - (9 if "plc_weak" in active else 0)
                yield did, t, "rssi_dbm", round(rssi, 1)
            if n % 20 == 0:
                battery -= 0.012 * 20 * dev.cadence_s / 60 / 60 * rng.uniform(0.8, 1.2)
                yield did, t, "battery_pct", round(battery, 2)
            n += 1
            t += step
        return
    while t < end:
        active = Effects.active(effects, t)
        v = view(dev, site, t, active, rng)
        fps_cfg = configured_fps(t)
        fps = fps_cfg - abs(rng.gauss(0, 0.04 * fps_cfg))
        dropped = 0 if rng.random() < 0.93 else rng.randint(1, 3)
        if (e := active.get("dropped_frames")) is not None:
            fps = fps_cfg * e.data["keep"] * rng.uniform(0.85, 1.1)
            dropped = int(fps_cfg * dev.cadence_s * (1 - e.data["keep"]) * rng.uniform(0.8, 1.2))
        act = activity(site, dep.profile, t) if dep else 0.5
        bitrate = dev.bitrate_kbps * (0.55 + 0.35 * min(act, 1.0) + 0.2 * (1 - v["light"]))
        bitrate *= fps / max(fps_cfg, 1) * rng.uniform(0.93, 1.07)
        yield did, t, "focus_score", round(v["focus"], 4)
        yield did, t, "exposure", v["exposure_ms"]
        yield did, t, "fps", round(fps, 2)
        yield did, t, "dropped_frames", float(dropped)
        yield did, t, "resolution_h", float(dev.resolution_h or 0)
        yield did, t, "bitrate_kbps", round(bitrate, 1)
        if dev.outdoor:
            temp = (
                14 + 12 * v["light"] + rng.gauss(0, 0.6) + (9 if "dropped_frames" in active else 0)
            )
            yield did, t, "temperature_c", round(temp, 1)
        t += step + dt.timedelta(seconds=rng.uniform(-0.4, 0.4))
