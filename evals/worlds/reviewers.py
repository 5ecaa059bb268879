"""Reviewers and judges of the demo world and their adjudicated track records.

Reliable evaluators agree with adjudication ~88-96% of the time all along; unreliable
reviewers ~30-50%; the degraded judge was ~90% until an update shortly before the span and
~30% since. History rows lie before each evaluation that uses them (the tools only count
adjudications before the evaluation's time).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

from evals.worlds.world import DAY, HISTORY_START, HOUR, Profile


@dataclass(frozen=True)
class Evaluator:
    source_id: str
    kind: str  # human | automated
    role: str  # reliable | noisy | unreliable | degraded


ROSTER = (
    Evaluator("rev-ana", "human", "reliable"),
    Evaluator("rev-bo", "human", "reliable"),
    Evaluator("rev-chen", "human", "reliable"),
    Evaluator("rev-dia", "human", "noisy"),
    Evaluator("rev-eli", "human", "unreliable"),
    Evaluator("rev-fay", "human", "unreliable"),
    Evaluator("judge-vlm-3", "automated", "reliable"),
    Evaluator("judge-clip-1", "automated", "reliable"),
    Evaluator("judge-scene-2", "automated", "degraded"),
)


def by_role(role: str) -> list[Evaluator]:
    return [e for e in ROSTER if e.role == role]


def wilson_upper(agreed: int, n: int, z: float = 1.96) -> float:
    p = agreed / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + margin) / (1 + z * z / n)


def history_rows(profile: Profile, rng: random.Random) -> list[dict[str, object]]:
    """Adjudication records for every evaluator, up to the end of the span."""
    rows: list[dict[str, object]] = []
    start, end = profile.start, profile.start + profile.days * DAY
    for ev in ROSTER:
        if ev.role == "degraded":
            update = start - 18 * DAY
            _spread(rows, rng, ev, HISTORY_START, start - 40 * DAY, 110, 0.9)
            _spread(rows, rng, ev, update, start, 14, 0.3)
            _spread(rows, rng, ev, start, end, 3 * profile.days, 0.3)
        elif ev.role == "unreliable":
            n = rng.randint(34, 80)
            rate = rng.uniform(0.32, 0.48)
            while wilson_upper(round(n * rate), n) >= 0.68:
                rate -= 0.02
            _spread(rows, rng, ev, HISTORY_START + 60 * DAY, end, n, rate)
        else:
            rate = rng.uniform(0.9, 0.96) if ev.role == "reliable" else 0.95
            _spread(rows, rng, ev, HISTORY_START, end, rng.randint(120, 200), rate)
    return rows


def _spread(
    rows: list[dict[str, object]],
    rng: random.Random,
    ev: Evaluator,
    lo: dt.datetime,
    hi: dt.datetime,
    n: int,
    rate: float,
) -> None:
    """n evenly spread adjudications with exactly round(n*rate) agreements; the disagreements
    are stratified (one per equal slice) so every window of the record shows about the rate."""
    misses = n - round(n * rate)
    flags = [True] * n
    for j in range(misses):
        flags[min(n - 1, int((j + rng.random()) * n / misses))] = False
    step = (hi - lo) / n
    for i, flag in enumerate(flags):
        at = lo + step * i + dt.timedelta(minutes=rng.randrange(max(1, int(step / HOUR * 30))))
        rows.append({"source_id": ev.source_id, "agreed": flag, "adjudicated_at": at})
