"""Sites, daylight and weather: what the light and the sky do to each camera's view.

Each site has a latitude, longitude and IANA time zone. Outdoor cameras follow the sun
(solar elevation from the NOAA approximation) and the site's weather episodes; indoor
cameras see lamp light only. Traffic (vehicles, shoppers, workers) follows local time and
the weekday/weekend pattern of the site's business.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

__all__ = ["SITES", "Site", "Weather", "activity", "daylight", "local", "solar_elevation"]


@dataclass(frozen=True)
class Weather:
    kind: str  # rain, fog, snow, overcast
    start: dt.datetime
    end: dt.datetime
    strength: float  # 0..1


@dataclass
class Site:
    site_id: str
    tenant_id: str
    city: str
    lat: float
    lon: float
    tz: str
    climate: dict[str, float]  # daily probability of each weather kind
    weather: list[Weather] = field(default_factory=list)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def weather_at(self, t: dt.datetime) -> Weather | None:
        for w in self.weather:
            if w.start <= t < w.end:
                return w
        return None


SITES: list[Site] = [
    Site("nw-store-0412", "northwind", "Seattle", 47.61, -122.33, "America/Los_Angeles", {}),
    Site("nw-store-0877", "northwind", "Denver", 39.74, -104.99, "America/Denver", {}),
    Site("KM-MAD-03", "kestrel-mart", "Madrid", 40.42, -3.70, "Europe/Madrid", {}),
    Site("KM-OSL-01", "kestrel-mart", "Oslo", 59.91, 10.75, "Europe/Oslo", {}),
    Site(
        "pw-phx-skyharbor-p4",
        "parkwise",
        "Phoenix",
        33.45,
        -112.07,
        "America/Phoenix",
        {"overcast": 0.1},
    ),
    Site(
        "pw-chi-loop-garage",
        "parkwise",
        "Chicago",
        41.88,
        -87.63,
        "America/Chicago",
        {"rain": 0.3, "fog": 0.15, "overcast": 0.3},
    ),
    Site(
        "hx-rtm-dc2",
        "harbor-logistics",
        "Rotterdam",
        51.92,
        4.48,
        "Europe/Amsterdam",
        {"rain": 0.5, "fog": 0.25, "overcast": 0.4},
    ),
    Site(
        "hx-sin-tuas",
        "harbor-logistics",
        "Singapore",
        1.29,
        103.85,
        "Asia/Singapore",
        {"rain": 0.6, "overcast": 0.2},
    ),
    Site(
        "mt-mel-hoddle",
        "metro-mobility",
        "Melbourne",
        -37.81,
        144.96,
        "Australia/Melbourne",
        {"rain": 0.25, "overcast": 0.2},
    ),
    Site(
        "mt-tor-spadina",
        "metro-mobility",
        "Toronto",
        43.65,
        -79.38,
        "America/Toronto",
        {"rain": 0.3, "fog": 0.1, "overcast": 0.4},
    ),
]


def solar_elevation(lat: float, lon: float, t: dt.datetime) -> float:
    """Solar elevation in degrees at UTC time ``t`` (NOAA general solar position)."""
    doy = t.timetuple().tm_yday
    hour = t.hour + t.minute / 60 + t.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    tst = hour * 60 + eqtime + 4 * lon
    ha = math.radians(tst / 4 - 180)
    la = math.radians(lat)
    cos_zen = math.sin(la) * math.sin(decl) + math.cos(la) * math.cos(decl) * math.cos(ha)
    return 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zen))))


def daylight(site: Site, t: dt.datetime) -> float:
    """0 (night) .. 1 (full day), civil twilight ramps in between."""
    elev = solar_elevation(site.lat, site.lon, t)
    x = max(0.0, min(1.0, (elev + 6) / 18))
    return x * x * (3 - 2 * x)


def local(site: Site, t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC).astimezone(site.zone)


_PROFILES = {
    # relative activity per local hour, weekday and weekend
    "retail": (
        [0.05] * 7
        + [0.3, 0.6, 0.8, 0.9, 1.0, 1.0, 0.9, 0.9, 1.0, 1.0, 0.9, 0.7, 0.5, 0.3]
        + [0.1] * 3,
        1.3,
    ),
    "parking": (
        [0.05] * 6
        + [
            0.4,
            1.0,
            0.9,
            0.5,
            0.4,
            0.5,
            0.6,
            0.5,
            0.4,
            0.6,
            0.9,
            1.0,
            0.6,
            0.4,
            0.3,
            0.2,
            0.1,
            0.05,
        ],
        0.45,
    ),
    "warehouse": (
        [0.15] * 6
        + [
            0.9,
            1.0,
            1.0,
            1.0,
            0.9,
            0.8,
            0.9,
            1.0,
            1.0,
            1.0,
            0.9,
            0.8,
            0.8,
            0.7,
            0.6,
            0.4,
            0.2,
            0.15,
        ],
        0.35,
    ),
    "traffic": (
        [
            0.08,
            0.05,
            0.04,
            0.04,
            0.08,
            0.2,
            0.55,
            1.0,
            0.95,
            0.7,
            0.6,
            0.65,
            0.7,
            0.65,
            0.65,
            0.75,
            0.95,
            1.0,
            0.8,
            0.55,
            0.4,
            0.3,
            0.2,
            0.12,
        ],
        0.6,
    ),
}


def activity(site: Site, profile: str, t: dt.datetime) -> float:
    """Relative activity 0..~1.3 at UTC ``t`` for a business profile in local time."""
    lt = local(site, t)
    hours, weekend = _PROFILES[profile]
    base = hours[lt.hour]
    if lt.weekday() >= 5:
        base = (
            base * weekend if profile != "traffic" else base * weekend + 0.15 * (9 < lt.hour < 20)
        )
    return base


def plan_weather(site: Site, start: dt.datetime, days: int, rng: random.Random) -> None:
    """Random episodes from the site's climate (a few hours each)."""
    for d in range(days):
        day = start + dt.timedelta(days=d)
        for kind, p in site.climate.items():
            if rng.random() < p:
                if kind == "fog":
                    begin = day + dt.timedelta(hours=rng.uniform(2, 8))
                    length = rng.uniform(2, 4)
                else:
                    begin = day + dt.timedelta(hours=rng.uniform(0, 22))
                    length = rng.uniform(1.5, 6) if kind != "overcast" else rng.uniform(4, 10)
                site.weather.append(
                    Weather(kind, begin, begin + dt.timedelta(hours=length), rng.uniform(0.4, 1.0))
                )
    site.weather.sort(key=lambda w: w.start)


# what one weather kind does to an outdoor view: (brightness, contrast, focus) deltas
WEATHER_EFFECT = {
    "rain": (-0.10, -0.10, -0.03),
    "fog": (-0.04, -0.25, -0.07),
    "snow": (0.22, -0.18, -0.04),
    "overcast": (-0.12, -0.05, 0.0),
}
