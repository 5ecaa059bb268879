"""``forest eval``: run the recorded incidents, grade them, report, compare to a baseline.

Each case's slice is ingested into its own temporary DuckDB file and investigated there
with the chosen reasoner, so cases are independent and run in a small process pool (one
process when a model object is injected, e.g. cassette replay). The expected answer is
read only after the verdict exists and never reaches the investigator.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from agent.api import Investigator
from agent.evidence import finding
from agent.llm import ChatModel
from agent.settings import Settings
from evals.graders import (
    LOWER_IS_BETTER,
    METRICS,
    CaseResult,
    Replay,
    grade_verdict,
    summarise,
)
from evals.incident import (
    DIFFICULTIES,
    GROUPS,
    MARKERS,
    Case,
    group_of,
    load_case,
    load_suite,
)
from tools.errors import ForestError, InputError
from tools.registry import get_tool
from tools.store.contract import COMPONENT_KINDS
from tools.store.ingest import ingest_dir

__all__ = [
    "DEFAULT_INCIDENTS",
    "build_report",
    "case_store",
    "compare_baseline",
    "coverage",
    "drift",
    "print_coverage",
    "print_drift",
    "print_report",
    "run_case",
    "run_suite",
]

DEFAULT_INCIDENTS = Path(__file__).resolve().parent / "incidents"
Reasoner = Literal["rules", "llm"]
# Absolute tolerance for rates and calibration; costs may grow by this fraction (+ slack).
RATE_TOLERANCE = 0.02
COST_TOLERANCE = 0.5
COST_SLACK = {"median_seconds": 0.25, "median_prompt_tokens": 200.0}


@contextmanager
def case_store(case: Case) -> Iterator[Path]:
    """The case's slice ingested into a temporary store (deleted afterwards)."""
    with tempfile.TemporaryDirectory(prefix="forest-eval-") as tmp:
        store = Path(tmp) / "case.duckdb"
        ingest_dir(case.slice_dir, store)
        yield store


def _replayer(inv: Investigator) -> Replay:
    def replay(tool: str, arguments: dict[str, Any]) -> tuple[str, str]:
        try:
            result = get_tool(tool).call(inv.con.cursor(), arguments)
        except ForestError as exc:
            return "error", str(exc)
        return result.status, finding(result)

    return replay


def run_case(
    folder: str | Path,
    reasoner: Reasoner = "rules",
    model: ChatModel | None = None,
    settings: Settings | None = None,
) -> CaseResult:
    """Investigate and grade one case folder (the unit a worker process runs).

    The investigator gets the evaluation and the slice only; the expected answer is
    read by the graders once the verdict exists. Its clock is frozen at the evaluation's
    time, so a run is reproducible (and an LLM run replays from a cassette)."""
    case = load_case(folder)
    expected = case.incident.expected
    result = CaseResult(
        case=case.name,
        tags=case.tags,
        failure_class=case.failure_class,
        expected={
            "category": expected.category,
            "failing_node": expected.failing_node,
            "route_to_training": expected.route_to_training,
        },
    )
    try:
        with case_store(case) as store:
            base = settings or Settings()
            config = base.model_copy(update={"reasoner": reasoner, "store": store})
            created = case.incident.evaluation.created_at
            with Investigator(store, settings=config, model=model, clock=lambda: created) as inv:
                started = time.perf_counter()
                verdict = inv.investigate(case.incident.evaluation)
                seconds = time.perf_counter() - started
                result.grades, result.cost = grade_verdict(
                    verdict, expected, _replayer(inv), seconds
                )
    except Exception as exc:  # a crashing case is a result to report, not the end of the run
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    result.confidence = verdict.confidence
    result.got = {
        "category": verdict.category,
        "failing_node": verdict.failing_node,
        "action": verdict.action.kind,
        "route_to_training": verdict.route_to_training,
        "confidence": verdict.confidence,
    }
    return result


def run_suite(
    root: str | Path = DEFAULT_INCIDENTS,
    *,
    reasoner: Reasoner = "rules",
    tag: str | None = None,
    workers: int = 2,
    model: ChatModel | None = None,
) -> list[CaseResult]:
    """Run every case under ``root`` (only those tagged ``tag`` if given), in case order."""
    folders = [str(c.folder) for c in load_suite(root, tag)]
    if model is not None or workers <= 1 or len(folders) < 4:
        return [run_case(f, reasoner, model) for f in folders]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunk = max(1, len(folders) // (workers * 4))
        return list(pool.map(run_case, folders, [reasoner] * len(folders), chunksize=chunk))


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def _group(results: list[CaseResult], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        for name in r.tags if key == "tag" else [r.failure_class]:
            groups[name].append(r)
    return {name: {"cases": len(rs), **summarise(rs)} for name, rs in sorted(groups.items())}


def _by_group(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    """Each group present: its size, metrics and per-class metrics."""
    out = {}
    for name in GROUPS:
        rs = [r for r in results if group_of(r.tags) == name]
        if rs:
            out[name] = {
                "cases": len(rs),
                "metrics": summarise(rs),
                "by_class": _group(rs, "class"),
            }
    return out


def build_report(results: list[CaseResult]) -> dict[str, Any]:
    """The ``--json`` report: overall metrics, per group (old suite, fleet worlds, novel
    hand-written deployments) with their classes, per tag, per failure class, failures."""
    failures = [
        {
            "case": r.case,
            "failure_class": r.failure_class,
            "tags": r.tags,
            "failed": r.failed,
            "expected": r.expected,
            "got": r.got,
            "error": r.error,
            "details": {n: g.detail for n, g in r.grades.items() if g.passed is False},
        }
        for r in results
        if r.failed
    ]
    return {
        "cases": len(results),
        "metrics": summarise(results),
        "by_group": _by_group(results),
        "by_tag": _group(results, "tag"),
        "by_class": _group(results, "class"),
        "failures": failures,
    }


def compare_baseline(
    metrics: dict[str, float],
    baseline: dict[str, float],
    tolerance: float = RATE_TOLERANCE,
) -> list[str]:
    """Metrics that got worse than ``baseline`` beyond the tolerance, as readable lines."""
    worse = []
    for name in METRICS:
        if name not in baseline or name not in metrics:
            continue
        now, then = metrics[name], baseline[name]
        if name.startswith("median_"):
            limit = then * (1 + COST_TOLERANCE) + COST_SLACK.get(name, 1.0)
            bad = now > limit
        elif name in LOWER_IS_BETTER:
            bad, limit = now > then + tolerance, then + tolerance
        else:
            bad, limit = now < then - tolerance, then - tolerance
        if bad:
            worse.append(f"{name}: {now:g} vs baseline {then:g} (limit {limit:g})")
    return worse


def print_report(console: Any, report: dict[str, Any]) -> None:
    """The human-readable report: overall metrics, by tag, by failure class, failures."""
    from rich.table import Table

    m = report["metrics"]
    console.print(
        f"[bold]{report['cases']} incidents[/bold]: category {m['category_accuracy']:.1%} · "
        f"node {m['node_accuracy']:.1%} · path {m['path_score']:.2f} · action "
        f"{m['action_accuracy']:.1%} · training P {m['training_precision']:.1%} "
        f"R {m['training_recall']:.1%} · abstention {m['abstention_accuracy']:.1%} · grounded "
        f"{m['grounded_rate']:.1%} · schema {m['schema_valid_rate']:.1%} · consistent "
        f"{m['consistent_rate']:.1%} · Brier "
        f"{m['brier']:.3f} · ECE {m['ece']:.3f} · median {m['median_tool_calls']:g} tool calls, "
        f"{m['median_llm_calls']:g} LLM calls, {m['median_prompt_tokens']:g} prompt tokens, "
        f"{m['median_seconds']:.2f} s"
    )
    for name, g in report.get("by_group", {}).items():
        gm = g["metrics"]
        console.print(
            f"  {name}: {g['cases']} incidents, category {gm['category_accuracy']:.1%} · node "
            f"{gm['node_accuracy']:.1%} · action {gm['action_accuracy']:.1%} · training P "
            f"{gm['training_precision']:.1%} R {gm['training_recall']:.1%} · abstention "
            f"{gm['abstention_accuracy']:.1%} · ECE {gm['ece']:.3f}"
        )
    for title, groups in (("tag", report["by_tag"]), ("failure class", report["by_class"])):
        table = Table(title, "cases", "category", "node", "action", "path", "grounded")
        for name, g in groups.items():
            table.add_row(
                name,
                str(g["cases"]),
                f"{g['category_accuracy']:.0%}",
                f"{g['node_accuracy']:.0%}",
                f"{g['action_accuracy']:.0%}",
                f"{g['path_score']:.2f}",
                f"{g['grounded_rate']:.0%}",
            )
        console.print(table)
    for f in report["failures"]:
        got = f["got"] or {}
        console.print(
            f"[red]FAIL[/red] {f['case']} ({', '.join(f['failed'])}): expected "
            f"{f['expected']['category']}/{f['expected']['failing_node']}, got "
            f"{got.get('category')}/{got.get('failing_node')}"
            + (f" — {f['error']}" if f["error"] else "")
        )


MIN_PER_CLASS = 4
STALE_DAYS = 180
_READERS = {".parquet": "read_parquet", ".jsonl": "read_ndjson", ".ndjson": "read_ndjson"}


def _slice_rows(case: Case, table: str, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Query one slice file (``{t}`` in ``sql`` stands for the table) in a scratch DuckDB."""
    import duckdb

    files = [p for p in sorted(case.slice_dir.glob(f"{table}.*")) if p.suffix in _READERS]
    if not files:
        return []
    reader = _READERS[files[0].suffix]
    with duckdb.connect(config={"autoload_known_extensions": False}) as con:
        return con.execute(
            sql.replace("{t}", f"{reader}($path)"), {**params, "path": str(files[0])}
        ).fetchall()


def case_profile(case: Case, today: dt.date) -> dict[str, Any]:
    """What the coverage matrix and the drift check know about one case."""
    e = case.incident.expected
    kind = "none"
    if e.failing_node:
        rows = _slice_rows(
            case, "runs", "SELECT kind FROM {t} WHERE component_id = $n", {"n": e.failing_node}
        )
        kind = rows[0][0] if rows else "unknown"
    output = case.incident.evaluation.output_id
    tenant = _slice_rows(
        case, "outputs", "SELECT tenant_id FROM {t} WHERE output_id = $o", {"o": output}
    )
    return {
        "case": case.name,
        "class": case.failure_class,
        "category": e.category,
        "claim": case.incident.evaluation.claim,
        "tenant": tenant[0][0] if tenant else "unknown",
        "kind": kind,
        "difficulty": next((t for t in case.tags if t in DIFFICULTIES), "unrated"),
        "markers": [t for t in case.tags if t in MARKERS],
        "age_days": (today - case.incident.provenance.date).days,
    }


def coverage(cases: list[Case], today: dt.date | None = None) -> dict[str, Any]:
    """Failure class × component kind × tag counts, thin cells and stale cases."""
    today = today or dt.datetime.now(dt.UTC).date()
    profiles = [case_profile(c, today) for c in cases]
    matrix: dict[str, dict[str, Any]] = {}
    for p in profiles:
        row = matrix.setdefault(p["class"], {"cases": 0, "kinds": {}, "tags": {}})
        row["cases"] += 1
        row["kinds"][p["kind"]] = row["kinds"].get(p["kind"], 0) + 1
        for tag in [p["difficulty"], *p["markers"]]:
            row["tags"][tag] = row["tags"].get(tag, 0) + 1
    thin = []
    for name, row in sorted(matrix.items()):
        if row["cases"] < MIN_PER_CLASS:
            thin.append(f"{name}: only {row['cases']} case(s) (want {MIN_PER_CLASS})")
        if not row["tags"].get("hard"):
            thin.append(f"{name}: no hard case")
        if not row["tags"].get("handwritten"):
            thin.append(f"{name}: simulator cases only, none written by hand")
    kinds = {p["kind"] for p in profiles}
    thin += [f"component kind {k}: no case fails there" for k in COMPONENT_KINDS if k not in kinds]
    ages = sorted(((p["age_days"], p["case"]) for p in profiles), reverse=True)
    return {
        "cases": len(profiles),
        "matrix": dict(sorted(matrix.items())),
        "thin": thin,
        "oldest": [{"case": c, "age_days": a} for a, c in ages[:5]],
        "stale": [{"case": c, "age_days": a} for a, c in ages if a > STALE_DAYS],
        "median_age_days": median([a for a, _ in ages]),
    }


DRIFT_DIMENSIONS = ("category", "claim", "tenant", "kind")
DRIFT_TVD = 0.3
_RECENT_VERDICTS_SQL = """
    WITH latest AS (
        SELECT * FROM verdicts
        WHERE created_at >= (SELECT max(created_at) FROM verdicts) - to_days($days)
        QUALIFY row_number() OVER (PARTITION BY evaluation_id ORDER BY created_at DESC) = 1)
    SELECT l.category, e.claim, o.tenant_id,
           coalesce((SELECT any_value(r.kind) FROM runs r
                     WHERE r.output_id = l.output_id AND r.component_id = l.failing_node),
                    CASE WHEN l.failing_node IS NULL THEN 'none' ELSE 'unknown' END)
    FROM latest l
    LEFT JOIN evaluations e ON e.evaluation_id = l.evaluation_id
    LEFT JOIN outputs o ON o.output_id = l.output_id"""


def _shares(values: list[Any]) -> dict[str, float]:
    counts: dict[str, int] = defaultdict(int)
    for v in values:
        counts[str(v)] += 1
    return {k: round(n / len(values), 4) for k, n in sorted(counts.items())} if values else {}


def drift(cases: list[Case], store: str | Path, days: int = 30) -> dict[str, Any]:
    """Compare the suite's mix with the store's recent verdicts, dimension by dimension."""
    from tools.store.connection import open_readonly

    con = open_readonly(store)
    try:
        rows = con.execute(_RECENT_VERDICTS_SQL, {"days": days}).fetchall()
    finally:
        con.close()
    if not rows:
        raise InputError(f"{store} holds no verdicts to compare with; investigate some first")
    today = dt.datetime.now(dt.UTC).date()
    suite = [case_profile(c, today) for c in cases]
    result: dict[str, Any] = {"store": str(store), "verdicts": len(rows), "days": days}
    warnings = []
    for i, dim in enumerate(DRIFT_DIMENSIONS):
        prod, mine = _shares([r[i] for r in rows]), _shares([p[dim] for p in suite])
        tvd = round(sum(abs(prod.get(k, 0) - mine.get(k, 0)) for k in {*prod, *mine}) / 2, 4)
        notes = [
            f"{dim} {k}: {v:.0%} of recent verdicts, none in the suite"
            for k, v in prod.items()
            if k not in mine
        ]
        notes += [
            f"{dim} {k}: {v:.0%} of recent verdicts but {mine[k]:.0%} of the suite"
            for k, v in prod.items()
            if k in mine and v >= 0.05 and mine[k] < v / 2
        ]
        if tvd > DRIFT_TVD:
            notes.insert(0, f"{dim}: suite mix is {tvd:.2f} (total variation) from production")
        result[dim] = {"tvd": tvd, "production": prod, "suite": mine, "warnings": notes}
        warnings += notes
    result["warnings"] = warnings
    return result


def print_coverage(console: Any, cov: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("class", "n", "failing kinds", "easy/med/hard", "markers")
    for name, row in cov["matrix"].items():
        t = row["tags"]
        table.add_row(
            name,
            str(row["cases"]),
            " ".join(f"{k}:{n}" for k, n in sorted(row["kinds"].items())),
            "/".join(str(t.get(d, 0)) for d in DIFFICULTIES),
            " ".join(f"{m}:{t[m]}" for m in MARKERS if t.get(m)),
            style="red" if row["cases"] < MIN_PER_CLASS else None,
        )
    console.print(table)
    for line in cov["thin"]:
        console.print(f"[yellow]thin[/yellow] {line}")
    oldest = ", ".join(f"{o['case']} ({o['age_days']} d)" for o in cov["oldest"][:3])
    console.print(f"case ages: median {cov['median_age_days']:g} d; oldest {oldest}")
    for s in cov["stale"]:
        console.print(f"[yellow]stale[/yellow] {s['case']}: recorded {s['age_days']} days ago")


def print_drift(console: Any, result: dict[str, Any]) -> None:
    console.print(
        f"suite vs {result['verdicts']} recent verdicts in {result['store']} "
        f"(last {result['days']} days)"
    )
    for dim in DRIFT_DIMENSIONS:
        console.print(f"{dim}: total variation {result[dim]['tvd']:.2f}")
    for line in result["warnings"]:
        console.print(f"[yellow]warning[/yellow] {line}")
    if not result["warnings"]:
        console.print("the suite's mix matches recent production")
