"""How far a reviewer's or judge's past evaluations agreed with adjudication.

The agreement rate is estimated with its uncertainty: a Beta prior learned from the pool
of evaluators (empirical Bayes over the other sources' adjudicated records, human and
automated apart where the evaluations table tells them apart), updated with the source's
own record. Below ``MIN_N`` adjudications, or with a credible interval wider than
``MAX_WIDTH``, the evaluator is *unknown*: not unreliable, but not to be trusted on its own.
Other evaluations of the same output are combined with this one (independent evaluators
that make the same claim corroborate it; a different claim contests it).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import duckdb
from pydantic import Field

from tools import signals
from tools.base import Flag, Severity, ToolArgs, ToolResult, jsonable
from tools.store.connection import fetch_dicts
from tools.store.timestamps import UtcTimestamp, from_db, to_db

__all__ = [
    "GetEvaluatorReliabilityArgs",
    "Prior",
    "assess",
    "combine",
    "get_evaluator_reliability",
    "pool_prior",
    "wilson",
]

# the history is sorted by (source_id, adjudicated_at): one aggregate over a pruned range
RELIABILITY_SQL = """
    SELECT count(*) AS n,
           count(*) FILTER (WHERE agreed) AS agreed,
           count(*) FILTER (WHERE adjudicated_at >= ?) AS recent_n,
           count(*) FILTER (WHERE agreed AND adjudicated_at >= ?) AS recent_agreed,
           min(adjudicated_at) AS first_at,
           max(adjudicated_at) AS last_at
    FROM evaluator_history
    WHERE source_id = ? AND adjudicated_at < ?"""
# the source's record on one claim type: the history's own claim column where given, else
# the claim of the adjudicated evaluation when it is loaded
CLAIM_SQL = """
    SELECT count(*), count(*) FILTER (WHERE h.agreed)
    FROM evaluator_history h LEFT JOIN evaluations e USING (evaluation_id)
    WHERE h.source_id = ? AND h.adjudicated_at < ? AND coalesce({claim}, e.claim) = ?"""
HAS_CLAIM_SQL = """
    SELECT count(*) FROM duckdb_columns()
    WHERE table_name = 'evaluator_history' AND column_name = 'claim'"""
LAST_SQL = "SELECT max(adjudicated_at) FROM evaluator_history WHERE source_id = ?"
POOL_SQL = """
    SELECT h.source_id, count(*) AS n, count(*) FILTER (WHERE h.agreed) AS agreed,
           any_value(k.source_kind) AS kind
    FROM evaluator_history h
    LEFT JOIN (SELECT DISTINCT source_id, source_kind FROM evaluations) k USING (source_id)
    WHERE h.adjudicated_at < ? AND h.source_id <> ?
    GROUP BY h.source_id"""
KIND_SQL = "SELECT any_value(source_kind) FROM evaluations WHERE source_id = ?"
OTHERS_SQL = """
    SELECT e.evaluation_id, e.source_id, e.claim, e.created_at FROM evaluations e
    WHERE e.output_id = (SELECT output_id FROM evaluations WHERE evaluation_id = ?)
      AND e.evaluation_id <> ? AND e.source_id <> ? AND e.created_at <= ?
    ORDER BY e.created_at, e.evaluation_id LIMIT 20"""
MIN_N = 5  # fewer adjudications: the evaluator is unknown
MAX_WIDTH = 0.5  # a wider 95 % credible interval: unknown
RELIABLE = 0.7  # the agreement rate an evaluator needs to be trusted
POOL_MIN_SOURCES = 3
POOL_MIN_N = 5  # a pool member needs this many adjudications to inform the prior
PRIOR_STRENGTH = (2.0, 8.0)  # bounds of the learned prior's a + b (as many adjudications)
CORROBORATED = 0.9  # combined probability that the claim is right, several evaluations
RECENT = dt.timedelta(days=30)
RECENT_MIN_N = 8
Z95 = 1.96


def wilson(agreed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95 % by default); (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    p = agreed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


class GetEvaluatorReliabilityArgs(ToolArgs):
    """Track record of a reviewer or automated judge: how many of its past evaluations
    (adjudicated before `at`) agreed with adjudication, its agreement rate's posterior
    mean and 95% credible interval under a prior learned from the pool of evaluators,
    its record on the evaluation's claim type (which decides once it is large enough),
    last-30-days vs earlier rates, and other evaluations of the same output. Flags
    evaluator.unreliable, evaluator.unknown (too few adjudications or too wide an
    interval), evaluator.degrading and evaluation.contested. Use it before trusting an
    evaluation: an unreliable or unknown evaluator's claim is not training signal."""

    source_id: str = Field(description="reviewer or judge id (the evaluation's source_id)")
    evaluation_id: str | None = Field(
        default=None,
        description="the evaluation being checked, to compare it with other evaluations "
        "of the same output",
    )
    at: UtcTimestamp | None = Field(
        default=None,
        description="only count adjudications before this ISO-8601 UTC time "
        "(the evaluation's created_at); all history when omitted",
    )


def _rate(agreed: int, n: int) -> dict[str, Any]:
    low, high = wilson(agreed, n)
    return {"n": n, "agreed": agreed, "rate": agreed / n if n else None, "wilson": [low, high]}


@dataclass(frozen=True)
class Prior:
    """Beta(a, b) prior of an evaluator's agreement rate and where it came from."""

    a: float
    b: float
    source: str

    def posterior(self, agreed: int, n: int) -> tuple[float, float, float]:
        """Posterior mean and a normal-approximation 95 % credible interval."""
        a, b = self.a + agreed, self.b + n - agreed
        mean = a / (a + b)
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        return mean, max(0.0, mean - Z95 * sd), min(1.0, mean + Z95 * sd)


FLAT = Prior(1.0, 1.0, "flat")


def pool_prior(records: list[tuple[int, int]]) -> Prior:
    """Empirical Bayes: a Beta prior moment-matched to the pool's agreement rates.

    ``records`` are (agreed, n) per evaluator; members with fewer than ``POOL_MIN_N``
    adjudications are left out, and fewer than ``POOL_MIN_SOURCES`` members give the flat
    prior. The prior's strength (a + b) is bounded by ``PRIOR_STRENGTH``: the pool informs
    a newcomer without outweighing a record of its own."""
    rates = [(agreed / n, n) for agreed, n in records if n >= POOL_MIN_N]
    if len(rates) < POOL_MIN_SOURCES:
        return FLAT
    mean = sum(r for r, _ in rates) / len(rates)
    mean = min(max(mean, 0.02), 0.98)
    var = sum((r - mean) ** 2 for r, _ in rates) / (len(rates) - 1)
    sampling = sum(mean * (1 - mean) / n for _, n in rates) / len(rates)
    between = var - sampling
    lo, hi = PRIOR_STRENGTH
    strength = hi if between <= 0 else min(max(mean * (1 - mean) / between - 1, lo), hi)
    return Prior(mean * strength, (1 - mean) * strength, f"pool of {len(rates)} evaluators")


def assess(agreed: int, n: int, prior: Prior) -> dict[str, Any]:
    """The posterior and the decision it supports: reliable, unreliable or unknown."""
    mean, low, high = prior.posterior(agreed, n)
    if high < RELIABLE or mean < RELIABLE - 0.1:
        state = "unreliable_major"
    elif mean < RELIABLE:
        state = "unreliable"
    elif n < MIN_N or high - low > MAX_WIDTH:
        state = "unknown"
    else:
        state = "reliable"
    return {"posterior_mean": mean, "credible_95": [low, high], "state": state}


def _flags(
    source: str,
    overall: dict[str, Any],
    recent: dict[str, Any],
    earlier: dict[str, Any],
    judged: dict[str, Any],
    corroboration: dict[str, Any],
) -> list[Flag]:
    flags = []
    n, agreed, state = overall["n"], overall["agreed"], judged["state"]
    mean, (low, high) = judged["posterior_mean"], judged["credible_95"]
    scope = judged.get("scope")
    if scope:  # judged on its record for this evaluation's claim type
        n, agreed = scope["n"], scope["agreed"]
    on = f" on {scope['claim']} claims" if scope else ""
    said = (
        f"{source}: agreed {agreed}/{n}{on} (posterior mean {mean:.2f}, 95% interval "
        f"{low:.2f}..{high:.2f}, prior {judged['prior']})"
    )
    if state.startswith("unreliable"):
        severity: Severity = "major" if state == "unreliable_major" else "minor"
        flags.append(
            Flag(node=None, signal=signals.EVALUATOR_UNRELIABLE, severity=severity, detail=said)
        )
    elif state == "unknown" and corroboration["combined"] < CORROBORATED:
        flags.append(
            Flag(
                node=None,
                signal=signals.EVALUATOR_UNKNOWN,
                severity="minor",
                detail=f"{said}: too little record to trust on its own",
            )
        )
    if recent["n"] >= RECENT_MIN_N and earlier["n"] and recent["wilson"][1] < earlier["wilson"][0]:
        flags.append(
            Flag(
                node=None,
                signal=signals.EVALUATOR_DEGRADING,
                severity="major",
                detail=f"{source}: last 30 days agreed {recent['agreed']}/{recent['n']}, "
                f"earlier {earlier['agreed']}/{earlier['n']}",
            )
        )
    if corroboration["contesting"]:
        flags.append(
            Flag(
                node=None,
                signal=signals.EVALUATION_CONTESTED,
                severity="minor",
                detail=f"{corroboration['contesting']} other evaluation(s) of the same output "
                "make a different claim",
            )
        )
    return flags


def _corroboration(
    con: duckdb.DuckDBPyConnection,
    args: GetEvaluatorReliabilityArgs,
    until: dt.datetime,
    own_mean: float,
    prior: Prior,
) -> dict[str, Any]:
    """Other evaluations of the same output: who agrees with this one's claim, and the
    combined probability that the claim is right (independent evaluators, each weighted
    by its own posterior agreement rate; Dawid-Skene with one shared confusion per rater)."""
    empty = {"others": [], "agreeing": 0, "contesting": 0, "combined": own_mean}
    if args.evaluation_id is None:
        return empty
    mine = con.execute(
        "SELECT claim FROM evaluations WHERE evaluation_id = ?", [args.evaluation_id]
    ).fetchone()
    rows = fetch_dicts(
        con, OTHERS_SQL, [args.evaluation_id, args.evaluation_id, args.source_id, to_db(until)]
    )
    if mine is None or not rows:
        return empty
    sources = sorted({r["source_id"] for r in rows})
    counts = dict.fromkeys(sources, (0, 0))
    for source, n, agreed in con.execute(
        "SELECT source_id, count(*), count(*) FILTER (WHERE agreed) FROM evaluator_history "
        "WHERE list_contains(?::VARCHAR[], source_id) AND adjudicated_at < ? GROUP BY ALL",
        [sources, to_db(until)],
    ).fetchall():
        counts[source] = (agreed, n)
    others, votes = [], []
    for r in rows:
        agreed, n = counts[r["source_id"]]
        rate = prior.posterior(agreed, n)[0]
        same = r["claim"] == mine[0]
        votes.append((rate, same))
        others.append({**r, "same_claim": same, "posterior_mean": rate})
    agreeing = sum(same for _, same in votes)
    return {
        "others": others,
        "agreeing": agreeing,
        "contesting": len(votes) - agreeing,
        "combined": combine(own_mean, votes),
    }


def combine(own: float, others: list[tuple[float, bool]]) -> float:
    """Probability that this evaluation's claim is right, given independent evaluators of
    the same output: each other evaluator, right with its own rate, either made the same
    claim (evidence for) or another one (evidence against). Rates are clipped to
    [0.01, 0.99] so no single evaluator decides alone."""

    def logit(p: float) -> float:
        p = min(max(p, 0.01), 0.99)
        return math.log(p / (1 - p))

    score = logit(own) + sum((1 if same else -1) * logit(rate) for rate, same in others)
    return 1 / (1 + math.exp(-score))


def get_evaluator_reliability(
    con: duckdb.DuckDBPyConnection, args: GetEvaluatorReliabilityArgs
) -> ToolResult:
    tool = "get_evaluator_reliability"
    until = args.at
    if until is None:
        last = con.execute(LAST_SQL, [args.source_id]).fetchone()
        # with no cut-off, "recent" means the 30 days up to the latest adjudication
        until = from_db(last[0]) + dt.timedelta(microseconds=1) if last and last[0] else None
    if until is None:
        return ToolResult.no_data(tool, f"no adjudicated history for source_id '{args.source_id}'")
    cut = to_db(until - RECENT)
    row = con.execute(RELIABILITY_SQL, [cut, cut, args.source_id, to_db(until)]).fetchone()
    n, agreed, recent_n, recent_agreed, first_at, last_at = row or (0, 0, 0, 0, None, None)
    if n == 0:
        return ToolResult.no_data(
            tool,
            f"no adjudicated history for source_id '{args.source_id}' before {jsonable(until)}",
        )
    overall = _rate(agreed, n)
    recent = _rate(recent_agreed, recent_n)
    earlier = _rate(agreed - recent_agreed, n - recent_n)
    prior = _prior(con, args.source_id, until)
    judged = {**assess(agreed, n, prior), "prior": prior.source, "judged_on": "all claims"}
    by_claim = _claim_record(con, args, until, prior)
    if by_claim is not None and by_claim["state"] != "unknown":
        # judges and reviewers can be good at one kind of claim and bad at another: a
        # decisive record on this evaluation's claim type is the one that judges it
        judged.update({k: by_claim[k] for k in ("posterior_mean", "credible_95", "state")})
        judged["judged_on"] = f"{by_claim['claim']} claims"
        judged["scope"] = {k: by_claim[k] for k in ("claim", "n", "agreed")}
    corroboration = _corroboration(con, args, until, judged["posterior_mean"], prior)
    data = {
        "source_id": args.source_id,
        "until": until,
        **overall,
        "disagreed": n - agreed,
        **{k: v for k, v in judged.items() if k != "scope"},
        "prior_mean": prior.a / (prior.a + prior.b),
        "prior_strength": prior.a + prior.b,
        "recent_30d": recent,
        "earlier": earlier,
        "by_claim": by_claim,
        "first_adjudicated_at": first_at,
        "last_adjudicated_at": last_at,
        "other_evaluations": corroboration,
    }
    flags = _flags(args.source_id, overall, recent, earlier, judged, corroboration)
    return ToolResult.ok(tool, data, flags=flags)


def _claim_record(
    con: duckdb.DuckDBPyConnection,
    args: GetEvaluatorReliabilityArgs,
    until: dt.datetime,
    prior: Prior,
) -> dict[str, Any] | None:
    """The source's adjudicated record on the claim type this evaluation makes, or None
    when the evaluation is not given or none of its record is of a known claim type."""
    if args.evaluation_id is None:
        return None
    mine = con.execute(
        "SELECT claim FROM evaluations WHERE evaluation_id = ?", [args.evaluation_id]
    ).fetchone()
    if mine is None:
        return None
    has_column = (con.execute(HAS_CLAIM_SQL).fetchone() or (0,))[0]
    sql = CLAIM_SQL.format(claim="h.claim" if has_column else "NULL")
    n, agreed = con.execute(sql, [args.source_id, to_db(until), mine[0]]).fetchone() or (0, 0)
    if n == 0:
        return None
    return {"claim": mine[0], **_rate(agreed, n), **assess(agreed, n, prior)}


def _prior(con: duckdb.DuckDBPyConnection, source_id: str, until: dt.datetime) -> Prior:
    """The pool prior: evaluators of the same kind when the evaluations table tells them
    apart (and there are enough of them), else every other evaluator."""
    pool = con.execute(POOL_SQL, [to_db(until), source_id]).fetchall()
    kind_row = con.execute(KIND_SQL, [source_id]).fetchone()
    kind = kind_row[0] if kind_row else None
    same = [(agreed, n) for _, n, agreed, k in pool if kind is not None and k == kind]
    prior = pool_prior(same)
    if prior is FLAT:
        prior = pool_prior([(agreed, n) for _, n, agreed, _ in pool])
    return prior
