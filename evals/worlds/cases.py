"""Failure cases: what one evaluated output carries, and placing cases so they don't collide.

A case is one evaluated output with the signatures of its fault(s) written around it. Each
case declares *zones* (device/site/tenant x time) where its signatures would show up in
another output's evidence; the scheduler places cases so no case's capture falls inside
another case's zone, which keeps every truth line honest.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evals.worlds.config_plan import Configs, ConfigVersion
from evals.worlds.reviewers import Evaluator
from evals.worlds.world import CONFIG_KEYS, DAY, HOUR, MINUTE, Device, Fleet, Profile


@dataclass(frozen=True)
class Zone:
    level: str  # device | site | tenant
    entity: str
    t0: dt.datetime
    t1: dt.datetime

    def covers(self, dev: Device, t: dt.datetime) -> bool:
        entity = {"device": dev.device_id, "site": dev.site_id, "tenant": dev.tenant_id}[self.level]
        return entity == self.entity and self.t0 <= t <= self.t1


@dataclass
class RunPatch:
    factors: dict[str, float] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    status: str | None = None


@dataclass(frozen=True)
class HealthFx:
    device_id: str
    metric: str
    t0: dt.datetime
    t1: dt.datetime
    mode: str  # mul | set | ramp
    x: float
    ramp_s: float = 0.0


@dataclass
class ModelRow:
    version: str
    released_at: dt.datetime
    recommended: float
    notes: str
    kind: str  # canary | release


@dataclass(frozen=True)
class LogLine:
    ts: dt.datetime
    component_id: str
    level: str
    message: str  # with a literal "{ver}" when ``model`` is set (named after placement)
    node: int | None = None  # attach to this case's run of that node
    model: ModelRow | None = None

    @property
    def text(self) -> str:
        return self.message.format(ver=self.model.version) if self.model else self.message


@dataclass(frozen=True)
class Episode:
    """A component version in force on one device for a while (a staged rollout)."""

    device_id: str
    node: int
    t0: dt.datetime
    t1: dt.datetime
    version: str = ""
    model: ModelRow | None = None

    @property
    def resolved_version(self) -> str:
        return self.model.version if self.model else self.version


@dataclass
class Case:
    cls: str
    second: str | None
    herring: str | None
    dev: Device
    capture: dt.datetime
    rng: random.Random
    zones: list[Zone] = field(default_factory=list)
    patches: dict[int, RunPatch] = field(default_factory=dict)
    health: list[HealthFx] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    configs: list[ConfigVersion] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    models: list[ModelRow] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    claim: str = "false_negative"
    score: float | None = None
    decision: str | None = None
    label: str | None = None
    evaluator: Evaluator | None = None
    comment: str = ""
    failing_node: int | None = None  # node index; 0 = camera
    path_from: int | None = None  # interaction: causal path starts upstream at A
    expect: dict[str, object] = field(default_factory=dict)
    created_at: dt.datetime | None = None

    def patch(self, node: int) -> RunPatch:
        return self.patches.setdefault(node, RunPatch())

    def zone(self, level: str, t0: dt.datetime, t1: dt.datetime) -> None:
        entity = {
            "device": self.dev.device_id,
            "site": self.dev.site_id,
            "tenant": self.dev.tenant_id,
        }[level]
        self.zones.append(Zone(level, entity, t0, t1))

    def hhmm(self) -> str:
        return self.capture.strftime("%H:%M")


@dataclass
class Ctx:
    """What fault writers need: the world so far."""

    profile: Profile
    fleet: Fleet
    configs: Configs
    rng: random.Random

    @property
    def start(self) -> dt.datetime:
        return self.profile.start

    @property
    def end(self) -> dt.datetime:
        return self.profile.start + self.profile.days * DAY

    def add_config(self, case: Case, cv: ConfigVersion) -> ConfigVersion:
        case.configs.append(self.configs.add(cv))
        return cv


Writer = Callable[[Ctx, Case, bool], bool]


def place(
    ctx: Ctx,
    specs: list[tuple[str, str | None, str | None]],
    build: Callable[[Ctx, Case], bool],
) -> list[Case]:
    """Place each (class, second, herring) spec at a free device/time; deterministic."""
    placed: list[Case] = []
    lo = ctx.start + 36 * HOUR
    span_min = int((ctx.end - 10 * HOUR - lo) / MINUTE)
    for cls, second, herring in specs:
        for _ in range(600):
            dev = ctx.rng.choice(ctx.fleet.cameras)
            capture = lo + dt.timedelta(
                minutes=ctx.rng.randrange(span_min), seconds=ctx.rng.randrange(60)
            )
            case = Case(cls, second, herring, dev, capture, random.Random(ctx.rng.getrandbits(64)))
            case.zone("device", capture - 2 * HOUR, capture + 2 * HOUR)
            ok = build(ctx, case) and _compatible(ctx, case, placed)
            if ok:
                placed.append(case)
                break
            for cv in case.configs:
                ctx.configs.items.remove(cv)
        else:
            raise RuntimeError(f"could not place a {cls} case; the fleet is too small")
    return placed


def _overlap(a: list[Any], b: list[Any], key: Callable[[Any], tuple[object, ...]]) -> bool:
    """Two cases' intervals (episodes or health effects) on the same key overlap."""
    return any(key(x) == key(y) and x.t0 < y.t1 and y.t0 < x.t1 for x in a for y in b)


def _compatible(ctx: Ctx, case: Case, placed: list[Case]) -> bool:
    for other in placed:
        if any(z.covers(other.dev, other.capture) for z in case.zones):
            return False
        if any(z.covers(case.dev, case.capture) for z in other.zones):
            return False
        if _overlap(case.episodes, other.episodes, lambda e: (e.device_id, e.node)):
            return False
        if _overlap(case.health, other.health, lambda h: (h.device_id, h.metric)):
            return False
    touched = {(cv.scope, cv.scope_id) for cv in case.configs}
    for other in placed:
        if not any(
            sid in (other.dev.device_id, other.dev.site_id, other.dev.tenant_id)
            for _, sid in touched
        ):
            continue
        for key, value in other.expect.items():
            if ctx.configs.value(key, other.dev, other.capture) != value:
                return False
    case.expect = {k: ctx.configs.value(k, case.dev, case.capture) for k in CONFIG_KEYS}
    return True
