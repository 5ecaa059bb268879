"""The demo-world simulator: speed, determinism, honest truth, signatures the tools detect."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from evals.worlds import build_bench_store, build_demo, truth_path_for
from evals.worlds.plan import CLASSES
from tools.store.connection import open_readonly
from tools.store.contract import DATA_TABLES, SORT_KEYS

REPO = Path(__file__).resolve().parents[2]
TRUTH_FIELDS = {
    "evaluation_id",
    "category",
    "failing_node",
    "causal_path",
    "action",
    "route_to_training",
    "tags",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("sim") / "demo.duckdb"
    steps: list[tuple[str, float]] = []
    began = time.perf_counter()
    summary = build_demo(path, seed=7, progress=lambda s, f: steps.append((s, f)))
    seconds = time.perf_counter() - began
    print(f"small demo built in {seconds:.1f} s")
    truth = [json.loads(line) for line in truth_path_for(path).read_text().splitlines()]
    return {"path": path, "summary": summary, "seconds": seconds, "steps": steps, "truth": truth}


def one(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...]:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None, sql
    return row


def fingerprint(path: Path) -> dict[str, tuple[Any, ...]]:
    """Per-table row count and order-independent row hashes, computed in SQL."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            t: one(con, f"SELECT count(*), bit_xor(hash(x)), sum(hash(x) % 1000003) FROM {t} x")
            for t in DATA_TABLES
        }
    finally:
        con.close()


def test_small_demo_builds_fast_with_progress(demo: dict[str, Any]) -> None:
    assert demo["seconds"] < 60
    assert demo["steps"][-1] == ("done", 1.0)
    s = demo["summary"]
    assert (s.tenants, s.sites, s.cameras) == (5, 10, 30)
    assert s.outputs > 3000 and s.runs == 11 * s.outputs and s.health_rows > 1_000_000
    assert s.evaluations == len(demo["truth"]) and dict(s.rows())["evaluations"]


def test_truth_covers_every_class_with_red_herrings(demo: dict[str, Any]) -> None:
    truth = demo["truth"]
    assert all(set(line) == TRUTH_FIELDS for line in truth)
    per_class = Counter(line["tags"][1] for line in truth)
    assert set(per_class) == set(CLASSES)
    assert min(per_class.values()) >= 5
    assert sum("red_herring" in line["tags"] for line in truth) / len(truth) >= 0.25
    multi = [line for line in truth if "multi_fault" in line["tags"]]
    assert len(multi) >= 4 and all(line["tags"][2] in CLASSES for line in multi)
    assert {line["tags"][0] for line in truth} == {"easy", "medium", "hard"}
    for line in truth:
        cls = line["tags"][1]
        assert (line["category"], line["action"]) == CLASSES[cls][:2]
        assert line["route_to_training"] is (cls == "model_error")


def test_same_seed_same_store_other_seed_differs(
    demo: dict[str, Any],
    tmp_path: Path,
) -> None:
    build_demo(tmp_path / "again.duckdb", seed=7)
    build_demo(tmp_path / "other.duckdb", seed=8)
    first = fingerprint(demo["path"])
    assert fingerprint(tmp_path / "again.duckdb") == first
    assert (
        truth_path_for(tmp_path / "again.duckdb").read_text()
        == truth_path_for(demo["path"]).read_text()
    )
    other = fingerprint(tmp_path / "other.duckdb")
    assert {t for t in DATA_TABLES if other[t] != first[t]} >= {
        "outputs",
        "runs",
        "logs",
        "device_health",
        "evaluations",
    }


def test_truth_nodes_follow_the_lineage(demo: dict[str, Any]) -> None:
    con = open_readonly(demo["path"])
    ids = {r[0] for r in con.execute("SELECT evaluation_id FROM evaluations").fetchall()}
    assert ids == {line["evaluation_id"] for line in demo["truth"]}
    for line in demo["truth"]:
        nodes = {
            r[0]
            for r in con.execute(
                "SELECT r.component_id FROM evaluations e JOIN runs r USING (output_id) "
                "WHERE e.evaluation_id = ?",
                [line["evaluation_id"]],
            ).fetchall()
        }
        edges = set(
            con.execute(
                "SELECT p.component_id, c.component_id FROM evaluations e "
                "JOIN lineage_edges g USING (output_id) JOIN runs p ON p.run_id = g.parent_run_id "
                "JOIN runs c ON c.run_id = g.child_run_id WHERE e.evaluation_id = ?",
                [line["evaluation_id"]],
            ).fetchall()
        )
        path = line["causal_path"]
        if line["failing_node"] is None:
            assert path == []
            continue
        assert line["failing_node"] in nodes and line["failing_node"] in path
        assert path[-1] == "alert-sink" and set(path) <= nodes
        assert all((a, b) in edges for a, b in itertools.pairwise(path))
    con.close()


def test_store_never_names_a_class(demo: dict[str, Any]) -> None:
    con = open_readonly(demo["path"])
    texts = con.execute("""
        SELECT evaluation_id || ' ' || output_id || ' ' || source_id || ' ' || coalesce(comment, '')
            FROM evaluations
        UNION ALL SELECT DISTINCT message || ' ' || coalesce(attributes::VARCHAR, '') FROM logs
        UNION ALL SELECT config_id || ' ' || coalesce(change_note, '') || ' '
                         || coalesce(author, '') FROM config_versions
        UNION ALL SELECT version || ' ' || coalesce(notes, '') FROM models
        UNION ALL SELECT DISTINCT run_id FROM runs
        UNION ALL SELECT DISTINCT evaluation_id || source_id FROM evaluator_history
    """).fetchall()
    con.close()
    blob = "\n".join(t[0] for t in texts).lower()
    forbidden = (
        set(CLASSES) | {c[0] for c in CLASSES.values()} | {"truth", "red_herring", "multi_fault"}
    )
    assert not [word for word in forbidden if word in blob]
    assert "ignore previous instructions" in blob  # hostile text is there, just not labels
    assert "password=hunter2" in blob and "api_key=sk-" in blob


def test_tables_are_written_in_sort_key_order(demo: dict[str, Any]) -> None:
    con = open_readonly(demo["path"])
    for table in DATA_TABLES:
        first = SORT_KEYS[table][0]
        (out_of_order,) = one(
            con,
            f"SELECT count(*) FROM (SELECT {first} AS k, lag({first}) OVER (ORDER BY rowid) AS p "
            f"FROM {table}) WHERE k < p",
        )
        assert out_of_order == 0, table
    con.close()


# class -> (node, signal prefix) its evaluation must be flagged with; "failing" = the truth node
SIGNATURE: dict[str, tuple[str | None, str]] = {
    "defocus": ("failing", "health.focus_score.low"),
    "dropped_frames": ("frame-capture", "run.metric.frames_received"),
    "snapshot_downgrade": ("snapshot-api", "run.metric.resolution_h"),
    "preprocess_regression": ("preprocess", "version.changed"),
    "model_regression": ("detector", "version.changed"),
    "stale_threshold": ("threshold", "threshold.stale"),
    "policy_misresolution": ("policy-engine", "config."),
    "config_drift": ("failing", "config.changed"),
    "edge_case": ("detector", "input.out_of_distribution"),
    "unreliable_reviewer": (None, "evaluator.unreliable"),
    "buggy_judge": (None, "evaluator.degrading"),
    "interaction": ("failing", "run.metric."),
}


def _flags(con: duckdb.DuckDBPyConnection, evaluation_id: str) -> list[Any]:
    from tools.registry import get_tool

    oid, src, created = one(
        con,
        "SELECT output_id, source_id, created_at FROM evaluations WHERE evaluation_id = ?",
        [evaluation_id],
    )
    dev, cap = one(con, "SELECT device_id, captured_at FROM outputs WHERE output_id = ?", [oid])
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_run", {"run_id": r[0]})
        for r in con.execute("SELECT run_id FROM runs WHERE output_id = ?", [oid]).fetchall()
    ]
    calls += [
        ("search_logs", {"output_id": oid}),
        ("get_device_health", {"device_id": dev, "at": cap.isoformat() + "Z"}),
        ("get_config_in_force", {"output_id": oid}),
        ("get_config_history", {"output_id": oid}),
        ("get_component_changes", {"output_id": oid}),
        ("get_evaluator_reliability", {"source_id": src, "at": created.isoformat() + "Z"}),
        ("get_input_drift", {"output_id": oid}),
    ]
    return [f for name, args in calls for f in get_tool(name).call(con, args).flags]


def test_signatures_raise_the_intended_flags(demo: dict[str, Any]) -> None:
    pytest.importorskip("tools.registry")
    con = open_readonly(demo["path"])
    checked: set[str] = set()
    for line in demo["truth"]:
        cls = line["tags"][1]
        if cls in checked or "multi_fault" in line["tags"]:
            continue
        flags = _flags(con, line["evaluation_id"])
        before = [f for f in flags if f.relative != "after_capture"]
        if cls == "model_error":
            # a clean model error: nothing but releases and in-spec config changes (an
            # override that ended restores an earlier value: a minor change in force)
            noise = {"version.changed"}
            assert not [
                f
                for f in before
                if f.signal not in noise
                and not (f.signal == "config.changed" and f.severity == "minor")
            ], line
        else:
            role, signal = SIGNATURE[cls]
            node = line["failing_node"] if role == "failing" else role
            assert any(f.node == node and f.signal.startswith(signal) for f in before), (
                line,
                [(f.node, f.signal) for f in flags],
            )
        if cls == "interaction":
            changed = [f for f in before if f.signal == "config.changed"]
            assert len(changed) == 2 and {f.severity for f in changed} == {"minor"}
            assert len({f.node for f in changed}) == 2
        if cls == "snapshot_downgrade":
            assert not [
                f
                for f in before
                if f.node == "snapshot-api" and re.match(r"log\.|version\.", f.signal)
            ]
        checked.add(cls)
    con.close()
    assert checked == set(CLASSES)


def test_only_the_simulator_reads_truth() -> None:
    """The simulator (evals/worlds) writes the truth file; nothing the investigator runs
    (agent/, tools/) reads it."""
    offenders = []
    for folder in ("agent", "tools"):
        for path in (REPO / folder).rglob("*.py"):
            if re.search(r"truth\.jsonl|\.truth\b", path.read_text()):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_bench_store_path_at_small_scale(tmp_path: Path) -> None:
    info = build_bench_store(tmp_path / "bench.duckdb", seed=1, scale=0.01)
    rows = info["rows"]
    assert rows["runs"] == 11 * rows["outputs"] and rows["evaluations"] >= 13
    assert rows["logs"] > 10 * rows["runs"] and rows["device_health"] > 1_000_000
    assert info["seconds"] < 60 and info["bytes"] > 0


def test_the_import_contract_holds() -> None:
    """The reasoners see tool results only: nothing in agent/ or tools/ imports evals or its
    simulator (evals.worlds), except the CLI entry point, which delegates `forest demo`/
    `eval`/`bench` to evals/; and every layer imports only those below it. The contracts
    are import-linter's, in pyproject.toml ([tool.importlinter])."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
            "--no-logo",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert re.search(r"Contracts: [1-9]\d* kept, 0 broken\.", out), out
