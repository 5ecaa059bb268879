"""Evaluator reliability with its uncertainty, on simulated reviewer pools of known rates.

The decisions under test are those of ``tools.evaluators``: a prior learned from the pool
(empirical Bayes), "unknown" below a minimum record, decisions monotone in evidence, and
several evaluations of one output combined.
"""

from __future__ import annotations

import math
import random

from tools.evaluators import FLAT, MIN_N, assess, combine, pool_prior


def _pool(rng: random.Random, rates: list[float], n: int) -> list[tuple[int, int]]:
    return [(sum(rng.random() < r for _ in range(n)), n) for r in rates]


def _p_trusted(rate: float, n: int, prior) -> float:
    """Probability that an evaluator of true ``rate`` with ``n`` adjudications is trusted."""
    return sum(
        math.comb(n, k) * rate**k * (1 - rate) ** (n - k)
        for k in range(n + 1)
        if assess(k, n, prior)["state"] == "reliable"
    )


def test_the_prior_is_learned_from_the_pool() -> None:
    rng = random.Random(7)
    prior = pool_prior(_pool(rng, [rng.uniform(0.76, 0.88) for _ in range(80)], 20))
    assert abs(prior.a / (prior.a + prior.b) - 0.82) < 0.03
    # a flat prior under-estimates a newcomer of an 82 % pool; the learned one does not
    flat_mean = assess(4, 5, FLAT)["posterior_mean"]
    pooled_mean = assess(4, 5, prior)["posterior_mean"]
    assert flat_mean < 0.75 < pooled_mean
    assert pool_prior([(9, 10), (8, 10)]) is FLAT  # too small a pool teaches nothing


def test_five_adjudications_in_an_82_percent_pool() -> None:
    rng = random.Random(11)
    rates = [rng.uniform(0.76, 0.88) for _ in range(200)]
    prior = pool_prior(_pool(rng, rates, 5))
    # training recall: the share of correct claims whose evaluator is trusted
    recall = sum(r * _p_trusted(r, 5, prior) for r in rates) / sum(rates)
    assert recall >= 0.8
    # a reviewer right 55 % of the time is discounted: trusted far less often
    assert _p_trusted(0.55, 5, prior) < _p_trusted(0.82, 5, prior) - 0.3
    assert assess(2, 5, prior)["state"].startswith("unreliable")


def test_small_records_are_unknown_and_decisions_are_monotone() -> None:
    rng = random.Random(3)
    prior = pool_prior(_pool(rng, [rng.uniform(0.76, 0.88) for _ in range(50)], 10))
    assert assess(3, 3, prior)["state"] == "unknown"  # 3 of 3 is not a track record
    assert assess(2, 2, prior)["state"] == "unknown"
    order = {"unreliable_major": 0, "unreliable": 1, "unknown": 2, "reliable": 3}
    for n in (MIN_N, 10, 20, 40):
        states = [order[assess(k, n, prior)["state"]] for k in range(n + 1)]
        assert states == sorted(states), n  # more agreements never lower the standing
    # same rate, more evidence: never less trusted (4/5, 8/10, 16/20 are all trusted)
    assert {assess(4 * m, 5 * m, prior)["state"] for m in (1, 2, 4)} == {"reliable"}


def test_agreement_between_evaluations_raises_precision() -> None:
    """Outputs judged by three independent reviewers of the pool (some of them poor): an
    evaluation counts as right when the combined probability of its claim reaches 0.9."""
    rng = random.Random(5)
    claims = ("false_positive", "false_negative", "wrong_class")
    rates = [rng.choice((0.82, 0.82, 0.82, 0.55)) for _ in range(300)]
    trusted_all = routed = routed_right = 0
    for _ in range(3000):
        truth = rng.choice(claims)
        panel = rng.sample(range(len(rates)), 3)
        said = [
            truth if rng.random() < rates[i] else rng.choice([c for c in claims if c != truth])
            for i in panel
        ]
        for j, i in enumerate(panel):
            right = said[j] == truth
            trusted_all += right
            others = [(rates[k], said[m] == said[j]) for m, k in enumerate(panel) if m != j]
            if combine(rates[i], others) >= 0.9:
                routed += 1
                routed_right += right
    precision_all = trusted_all / 9000
    assert routed > 3000  # most evaluations are still usable
    assert routed_right / routed > precision_all + 0.1


def test_the_tool_flags_unknown_and_contested(tmp_path) -> None:
    """Through the tool: a newcomer with 3 of 3 is unknown (which keeps it out of training
    without calling it unreliable); another evaluator's different claim on the same output
    contests the evaluation, the same claim corroborates it."""
    import datetime as dt

    from agent.grounding import evaluation_reliability
    from agent.schemas import Evaluation, Evidence
    from tools.registry import get_tool
    from tools.store.connection import open_readonly, open_writable

    t0 = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    con = open_writable(tmp_path / "s.duckdb")
    history = [("new", f"h-new-{i}", True, t0 - dt.timedelta(days=i + 1)) for i in range(3)]
    for s in range(6):  # a pool of six reviewers, right about 8 times in 10
        history += [
            (f"r{s}", f"h{s}-{i}", i % 5 != 0, t0 - dt.timedelta(days=i + 1)) for i in range(20)
        ]
    con.executemany(
        "INSERT INTO evaluator_history (source_id, evaluation_id, agreed, adjudicated_at) "
        "VALUES (?, ?, ?, ?)",
        history,
    )
    evaluations = [
        ("ev-new", "o1", "human", "new", "false_positive", None, t0),
        ("ev-r1", "o1", "human", "r1", "false_positive", None, t0),
        ("ev-r2", "o2", "human", "r2", "false_positive", None, t0),
        ("ev-r3", "o2", "human", "r3", "wrong_class", None, t0),
    ]
    con.executemany("INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?)", evaluations)
    con.close()
    ro = open_readonly(tmp_path / "s.duckdb")
    tool = get_tool("get_evaluator_reliability")
    at = t0.isoformat()
    try:
        alone = tool.call(ro, {"source_id": "new", "at": at})
        assert [f.signal for f in alone.flags] == ["evaluator.unknown"]
        # the evaluations table names three of the pool human: the prior is theirs
        assert alone.data["state"] == "unknown" and alone.data["prior"] == "pool of 3 evaluators"
        evidence = Evidence(
            id="E1",
            tool=alone.tool,
            arguments={},
            status=alone.status,
            data=alone.data,
            flags=alone.flags,
            finding="",
        )
        evaluation = Evaluation(
            evaluation_id="ev-new",
            output_id="o1",
            source_kind="human",
            source_id="new",
            claim="false_positive",
            created_at=t0,
        )
        assert evaluation_reliability(evaluation, [evidence]).reliable is None
        # an independent reviewer made the same claim on o1: corroborated, no longer unknown
        backed = tool.call(ro, {"source_id": "new", "at": at, "evaluation_id": "ev-new"})
        assert backed.flags == [] and backed.data["other_evaluations"]["agreeing"] == 1
        assert backed.data["other_evaluations"]["combined"] >= 0.9
        contested = tool.call(ro, {"source_id": "r2", "at": at, "evaluation_id": "ev-r2"})
        assert [f.signal for f in contested.flags] == ["evaluation.contested"]
        assert contested.data["other_evaluations"]["combined"] < 0.5 + 1e-9
    finally:
        ro.close()


def test_the_record_on_the_claim_type_decides(tmp_path) -> None:
    """A judge right on 9 of 10 false-positive claims but 1 of 10 misses (past evaluations
    in `evaluations`, or the history's own `claim` column): its miss claims are
    unreliable, its false-positive claims reliable, where all its claims together would
    only be doubtful (10/20)."""
    import datetime as dt

    from tools.registry import get_tool
    from tools.store.connection import open_readonly, open_writable

    t0 = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    con = open_writable(tmp_path / "s.duckdb")
    history, evaluations = [], []
    for i in range(20):
        claim = "false_positive" if i % 2 else "false_negative"
        agreed = (i % 2 == 1 and i != 19) or i == 0
        at = t0 - dt.timedelta(days=i + 1)
        history.append(("judge@2", f"p{i}", agreed, at, claim if i < 10 else None))
        evaluations.append((f"p{i}", f"o{i}", "automated", "judge@2", claim, None, at))
    for s in range(4):  # a pool of judges right 9 times in 10
        history += [
            (f"j{s}", f"q{s}-{i}", i % 10 != 0, t0 - dt.timedelta(days=i + 1), None)
            for i in range(20)
        ]
    con.executemany("INSERT INTO evaluator_history VALUES (?, ?, ?, ?, ?)", history)
    evaluations += [
        ("ev-miss", "o-now", "automated", "judge@2", "false_negative", None, t0),
        ("ev-fp", "o-now2", "automated", "judge@2", "false_positive", None, t0),
    ]
    con.executemany("INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?)", evaluations)
    con.close()
    ro = open_readonly(tmp_path / "s.duckdb")
    tool = get_tool("get_evaluator_reliability")
    at = t0.isoformat()
    try:
        overall = tool.call(ro, {"source_id": "judge@2", "at": at})
        assert overall.data["judged_on"] == "all claims" and overall.data["n"] == 20
        miss = tool.call(ro, {"source_id": "judge@2", "at": at, "evaluation_id": "ev-miss"})
        assert miss.data["by_claim"]["n"] == 10 and miss.data["by_claim"]["agreed"] == 1
        assert miss.data["judged_on"] == "false_negative claims"
        assert miss.data["state"] == "unreliable_major"
        assert [(f.signal, f.severity) for f in miss.flags] == [("evaluator.unreliable", "major")]
        assert "1/10 on false_negative claims" in miss.flags[0].detail
        fp = tool.call(ro, {"source_id": "judge@2", "at": at, "evaluation_id": "ev-fp"})
        assert fp.data["by_claim"]["agreed"] == 9 and fp.data["state"] == "reliable"
        assert fp.flags == []
    finally:
        ro.close()


def test_a_store_made_before_the_claim_column_is_still_read(tmp_path) -> None:
    """A store whose evaluator_history has no `claim` column (made by an older Forest)
    opens read-only and is judged from the evaluations' claims."""
    import datetime as dt

    import duckdb

    from tools.registry import get_tool
    from tools.store.connection import open_readonly, open_writable

    path = tmp_path / "old.duckdb"
    open_writable(path).close()
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE evaluator_history DROP COLUMN claim")
    t0 = dt.datetime(2026, 11, 20, 12)  # noqa: DTZ001 - the store holds naive UTC
    con.executemany(
        "INSERT INTO evaluator_history VALUES (?, ?, ?, ?)",
        [("r", f"p{i}", i > 7, t0 - dt.timedelta(days=i + 1)) for i in range(10)],
    )
    con.executemany(
        "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(f"p{i}", f"o{i}", "human", "r", "wrong_class", None, t0) for i in range(10)]
        + [("ev", "o", "human", "r", "wrong_class", None, t0)],
    )
    con.close()
    ro = open_readonly(path)
    try:
        result = get_tool("get_evaluator_reliability").call(
            ro, {"source_id": "r", "at": t0.isoformat() + "Z", "evaluation_id": "ev"}
        )
        assert result.data["by_claim"]["n"] == 10 and result.data["state"] == "unreliable_major"
    finally:
        ro.close()
