"""Building a demo store: plan in Python, write the big tables in SQL, keep truth apart."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evals.worlds import texts, writer
from evals.worlds.cases import Case, Ctx, LogLine, place
from evals.worlds.config_plan import background_configs
from evals.worlds.plan import build_case, specs, truth_line
from evals.worlds.staging import count_rows
from evals.worlds.world import DAY, Profile, make_fleet
from tools.store.connection import open_writable

Progress = Callable[[str, float], None]


@dataclass
class DemoSummary:
    """What a build wrote, for the CLI to print."""

    path: str
    truth_path: str
    seed: int
    size: str
    tenants: int
    sites: int
    cameras: int
    outputs: int
    runs: int
    logs: int
    health_rows: int
    evaluations: int
    per_class: dict[str, int] = field(default_factory=dict)
    red_herring_share: float = 0.0
    multi_fault: int = 0
    seconds: float = 0.0

    def rows(self) -> list[tuple[str, str]]:
        base = [
            ("store", self.path),
            ("truth", self.truth_path),
            ("seed", str(self.seed)),
            ("size", self.size),
            ("tenants / sites / cameras", f"{self.tenants} / {self.sites} / {self.cameras}"),
            ("outputs", f"{self.outputs:,}"),
            ("runs", f"{self.runs:,}"),
            ("logs", f"{self.logs:,}"),
            ("health rows", f"{self.health_rows:,}"),
            ("evaluations", f"{self.evaluations:,}"),
            ("red-herring share", f"{self.red_herring_share:.0%}"),
            ("multi-fault cases", str(self.multi_fault)),
            ("build seconds", f"{self.seconds:.1f}"),
        ]
        return base + [(f"class {k}", str(v)) for k, v in sorted(self.per_class.items())]


def truth_path_for(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".truth.jsonl")


def build_world(
    path: str | Path,
    *,
    seed: int,
    profile: Profile,
    progress: Progress | None = None,
    threads: int | None = None,
) -> DemoSummary:
    began = time.perf_counter()
    report = progress or (lambda _step, _fraction: None)
    seed = int(seed)
    rng = random.Random(seed)
    fleet = make_fleet(profile, rng)
    configs = background_configs(fleet, rng, until=profile.start - 8 * DAY)
    ctx = Ctx(profile, fleet, configs, rng)
    report("planning failure cases", 0.02)
    cases = sorted(place(ctx, specs(profile, rng), build_case), key=lambda c: c.capture)
    _name_models(cases)
    _add_hostile_text(cases, rng)
    path = Path(path)
    truth = truth_path_for(path)
    for old in (path, truth, path.with_name(path.name + ".wal")):
        old.unlink(missing_ok=True)
    con = open_writable(path)
    try:
        con.execute("SET enable_progress_bar = false")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        writer.stage(con, ctx, cases, seed)
        writer.write(con, ctx, seed, report)
        lines = [truth_line(c, f"ev-{i + 1:06d}") for i, c in enumerate(cases)]
        truth.write_text("".join(json.dumps(line) + "\n" for line in lines))
        counts = {
            t: count_rows(con, t)
            for t in ("outputs", "runs", "logs", "device_health", "evaluations")
        }
        con.execute("CHECKPOINT")
    finally:
        con.close()
    report("done", 1.0)
    return DemoSummary(
        path=str(path),
        truth_path=str(truth),
        seed=seed,
        size=profile.name,
        tenants=len(fleet.tenants),
        sites=len(fleet.sites),
        cameras=len(fleet.cameras),
        outputs=counts["outputs"],
        runs=counts["runs"],
        logs=counts["logs"],
        health_rows=counts["device_health"],
        evaluations=counts["evaluations"],
        per_class=dict(Counter(c.cls for c in cases)),
        red_herring_share=sum(c.herring is not None for c in cases) / len(cases),
        multi_fault=sum(c.second is not None for c in cases),
        seconds=time.perf_counter() - began,
    )


def _name_models(cases: list[Case]) -> None:
    """Version names follow release order, as a registry's would."""
    rows = sorted((m for c in cases for m in c.models), key=lambda m: m.released_at)
    canary = release = 0
    for m in rows:
        if m.kind == "canary":
            canary += 1
            m.version = f"3.2.{canary}-rc"
        else:
            m.version = f"3.{3 + release // 4}.{release % 4}"
            release += 1


def _add_hostile_text(cases: list[Case], rng: random.Random) -> None:
    """Prompt injection in a few comments and log lines, fake secrets in a couple of logs.

    Never on a case whose truth the injected text happens to name (it would leak a label)."""
    pool = [c for c in cases if c.cls != "model_error"]
    plain = [
        c
        for c in pool
        if c.cls != "edge_case" and c.evaluator and c.evaluator.role in ("reliable", "unreliable")
    ]
    for case in rng.sample(plain, 3):
        case.comment = texts.INJECTION_COMMENTS.get(case.claim, texts.INJECTION_COMMENTS["other"])
    picked = rng.sample(pool, 4)
    for case, text in zip(picked, (*texts.SECRET_LINES[:2], *texts.INJECTION_LINES), strict=True):
        node = 9 if "policy" in text else 10
        ts = case.capture + dt.timedelta(milliseconds=400)
        case.logs.append(
            LogLine(ts, "policy-engine" if node == 9 else "alert-sink", "INFO", text, node=node)
        )
