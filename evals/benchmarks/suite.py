"""``forest bench``: build a large store and time every evidence tool, whole investigations
and the gate (``forest serve`` under load, see :mod:`evals.benchmarks.gate`).

Figures are printed with the data size they were measured on. Targets (2-core machine):
each tool p95 <= 50 ms, store build <= 5 minutes, 200 gate decisions/s.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from agent.api import Investigator
from agent.settings import Settings
from evals.worlds import build_bench_store, build_demo
from tools.registry import get_tool
from tools.store.connection import open_readonly

__all__ = ["run_bench"]

TOOL_P95_TARGET_MS = 50.0
BUILD_TARGET_S = 300.0
GATE_TARGET_PER_S = 200.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _tool_calls(
    con: duckdb.DuckDBPyConnection, rng: random.Random, samples: int
) -> dict[str, list[dict[str, Any]]]:
    """Arguments for each tool, drawn from random outputs of the store."""
    ids = [r[0] for r in con.execute("SELECT output_id FROM outputs ORDER BY 1").fetchall()]
    picked = rng.sample(ids, min(samples, len(ids)))
    rows = con.execute(
        "SELECT output_id, device_id, captured_at FROM outputs "
        "WHERE list_contains(?::VARCHAR[], output_id) ORDER BY output_id",
        [picked],
    ).fetchall()
    sources = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT source_id FROM evaluator_history ORDER BY 1"
        ).fetchall()
    ]
    evaluations = [
        r[0] for r in con.execute("SELECT evaluation_id FROM evaluations ORDER BY 1").fetchall()
    ]
    calls: dict[str, list[dict[str, Any]]] = {}
    for output_id, device_id, captured in rows:
        at = captured.isoformat() + "Z"
        run_ids = [
            r[0]
            for r in con.execute(
                "SELECT run_id FROM runs WHERE output_id = ?", [output_id]
            ).fetchall()
        ]
        by_output = {"output_id": output_id}
        for name in (
            "get_output",
            "get_lineage",
            "get_config_in_force",
            "get_config_history",
            "get_component_changes",
            "get_input_drift",
        ):
            calls.setdefault(name, []).append(by_output)
        calls.setdefault("search_logs", []).append({"output_id": output_id, "min_level": "INFO"})
        calls.setdefault("get_run", []).append({"run_id": rng.choice(run_ids)})
        calls.setdefault("get_device_health", []).append({"device_id": device_id, "at": at})
        if sources:
            calls.setdefault("get_evaluator_reliability", []).append(
                {"source_id": rng.choice(sources), "at": at}
            )
        if evaluations:
            calls.setdefault("get_evaluation", []).append(
                {"evaluation_id": rng.choice(evaluations)}
            )
    return calls


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return row[0]


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _gate(path: Path, seconds: float, err: Console) -> dict[str, Any]:
    """Gate throughput on the bench store and on a small demo store built for the purpose."""
    from evals.benchmarks.gate import run_gate_bench

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="forest-gate-demo-") as tmp:
        demo = Path(tmp) / "demo.duckdb"
        build_demo(demo, seed=7, size="small")
        for name, store in (("demo store (3k outputs)", demo), ("bench store", path)):
            err.print(f"gate throughput on the {name}: {seconds:g} s of POSTs…")
            out[name] = run_gate_bench(store, seconds)
        floor = max(5.0, seconds / 3)
        err.print(f"gate fixed cost (outputs the store lacks, no sweep): {floor:g} s of POSTs…")
        out["demo store, unknown outputs (no sweep)"] = run_gate_bench(
            demo, floor, unknown_outputs=True
        )
    return out


def run_bench(
    path: Path, *, samples: int, rebuild: bool, as_json: bool, gate_seconds: float = 30
) -> dict[str, Any]:
    err = Console(stderr=True)
    report: dict[str, Any] = {"store": str(path)}
    if rebuild or not path.exists():
        err.print(f"building bench store at {path} (about a minute on 2 cores)…")
        built = build_bench_store(
            path, progress=lambda step, f: err.print(f"  {f:5.0%} {step}", highlight=False)
        )
        report["build_seconds"] = round(built["seconds"], 1)
    report["size_mb"] = round(path.stat().st_size / 1e6, 1)
    con = open_readonly(path)
    try:
        report["rows"] = {
            t: _scalar(con, f"SELECT count(*) FROM {t}")
            for t in (
                "outputs",
                "runs",
                "logs",
                "device_health",
                "input_features",
                "config_versions",
                "evaluations",
            )
        }
        rng = random.Random(1)
        calls = _tool_calls(con, rng, samples)
        tools: dict[str, Any] = {}
        for name, arg_list in calls.items():
            tool = get_tool(name)
            tool.call(con, arg_list[0])  # warm-up
            latencies = [_time(partial(tool.call, con, a)) for a in arg_list]
            tools[name] = {
                "calls": len(latencies),
                "p50_ms": round(_pct(latencies, 0.5), 2),
                "p95_ms": round(_pct(latencies, 0.95), 2),
            }
        report["tools"] = tools
    finally:
        con.close()
    with Investigator(path, settings=Settings(store=path)) as inv:
        ids = inv.evaluation_ids()
        inv.investigate(ids[0])
        latencies = [_time(partial(inv.investigate, e)) for e in ids]
    report["investigation"] = {
        "evaluations": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(_pct(latencies, 0.95), 1),
    }
    if gate_seconds > 0:
        report["gate"] = _gate(path, gate_seconds, err)
    worst = max(t["p95_ms"] for t in report["tools"].values())
    best_gate = max(
        (
            g["evaluations_per_s"]
            for g in report.get("gate", {}).values()
            if not g["unknown_outputs"]
        ),
        default=None,
    )
    report["targets"] = {
        "gate_per_s": GATE_TARGET_PER_S,
        "gate_per_s_best": best_gate,
        "gate_met": best_gate is not None and best_gate >= GATE_TARGET_PER_S,
        "tool_p95_ms": TOOL_P95_TARGET_MS,
        "worst_tool_p95_ms": worst,
        "tool_p95_met": worst <= TOOL_P95_TARGET_MS,
        "build_seconds_max": BUILD_TARGET_S,
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(Console(), report)
    return report


def _print(console: Console, report: dict[str, Any]) -> None:
    rows = ", ".join(f"{k} {v:,}" for k, v in report["rows"].items())
    build = f", built in {report['build_seconds']} s" if "build_seconds" in report else ""
    console.print(f"[bold]bench store[/bold] {report['store']}: {report['size_mb']} MB{build}")
    console.print(f"rows: {rows}")
    table = Table("tool", "calls", "p50 ms", "p95 ms")
    for name, t in report["tools"].items():
        table.add_row(name, str(t["calls"]), f"{t['p50_ms']:.1f}", f"{t['p95_ms']:.1f}")
    console.print(table)
    inv = report["investigation"]
    console.print(
        f"rules investigation: p50 {inv['p50_ms']} ms, p95 {inv['p95_ms']} ms "
        f"over {inv['evaluations']} evaluations"
    )
    for name, g in report.get("gate", {}).items():
        console.print(
            f"gate on the {name}: {g['evaluations_per_s']} evaluations/s sustained over "
            f"{g['seconds']} s ({g['evaluations']} POSTs about {g['distinct_outputs']} outputs, "
            f"{g['concurrency']} clients, {g['workers']} workers); POST latency "
            f"p50 {g['p50_ms']} ms, p95 {g['p95_ms']} ms; statuses {g['statuses']}"
        )
        console.print(
            f"  CPU per evaluation: server {g['server_cpu_ms_per_evaluation']} ms, load "
            f"generator {g['client_cpu_ms_per_evaluation']} ms; on {g['cores']} cores that "
            f"work alone caps the gate at {g['cpu_ceiling_per_s']}/s"
        )
    t = report["targets"]
    if t["gate_per_s_best"] is not None:
        console.print(
            f"gate throughput {t['gate_per_s_best']}/s (target {t['gate_per_s']:g}/s): "
            f"{'met' if t['gate_met'] else 'MISSED'}"
        )
    console.print(
        f"worst tool p95 {t['worst_tool_p95_ms']} ms (target {t['tool_p95_ms']} ms): "
        f"{'met' if t['tool_p95_met'] else 'MISSED'}"
    )
