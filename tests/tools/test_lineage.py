"""get_evaluation, get_output, get_lineage, get_run on the small store."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tools.registry import get_tool

CAM_A = "cam-t01-s01-c01"


def _flags(result):
    return {(f.node, f.signal, f.severity) for f in result.flags}


def test_get_evaluation_ok_names_the_output(call):
    result = call("get_evaluation", evaluation_id="ev-002")
    assert result.status == "ok"
    assert result.data["output_id"] == "out-002"
    assert result.data["source_id"] == "rev-bob"


def test_get_evaluation_unknown_id_is_no_data_naming_it(call):
    result = call("get_evaluation", evaluation_id="ev-nope")
    assert result.status == "no_data"
    assert "ev-nope" in result.message


def test_get_evaluation_missing_argument_is_error(call):
    result = call("get_evaluation")
    assert result.status == "error"
    assert "evaluation_id" in result.message


def test_get_output_lists_its_evaluations(call):
    result = call("get_output", output_id="out-001")
    assert result.status == "ok"
    assert result.data["device_id"] == CAM_A
    assert result.data["captured_at"] == "2025-03-10T00:00:00Z"
    assert sorted(e["evaluation_id"] for e in result.data["evaluations"]) == ["ev-001", "ev-007"]
    assert result.truncated is False


def test_get_output_unknown_is_no_data(call):
    result = call("get_output", output_id="out-999")
    assert (result.status, "out-999" in result.message) == ("no_data", True)


def test_get_lineage_nodes_edges_and_topological_order(call):
    result = call("get_lineage", output_id="out-005")
    assert result.status == "ok"
    order = [n["node_id"] for n in result.data["nodes"]]
    assert len(order) == 11
    assert order[0] == CAM_A and order[-1] == "alert-sink"
    for parent, child in result.data["edges"]:
        assert order.index(parent) < order.index(child)
    assert ["door-t01-s01-1", "fusion"] in result.data["edges"]
    node = next(n for n in result.data["nodes"] if n["node_id"] == "tracker")
    assert node == {
        "node_id": "tracker",
        "kind": "tracker",
        "run_id": "out-005/tracker",
        "version": "0.9.1",
        "status": "failed",
        "started_at": "2025-03-10T12:00:00.500000Z",
    }


def test_get_lineage_unknown_output_is_no_data(call):
    result = call("get_lineage", output_id="nope")
    assert result.status == "no_data" and "nope" in result.message


def test_get_run_decodes_params_and_compares_with_baseline(call):
    result = call("get_run", run_id="out-001/detector")
    assert result.status == "ok"
    assert result.data["params"] == {"detector.min_box_px": 16}
    metric = result.data["baseline"]["metrics"]["mean_confidence"]
    assert metric["n"] >= 15 and abs(metric["median"] - 0.8) < 0.02
    assert result.flags == []


def test_get_run_flags_deviating_metrics_major(call):
    result = call("get_run", run_id="out-003/snapshot-api")
    assert _flags(result) == {
        ("snapshot-api", "run.metric.resolution_h", "major"),
        ("snapshot-api", "run.metric.bytes", "major"),
    }
    assert all(f.relative == "before_capture" for f in result.flags)


def test_get_run_flags_low_confidence_detector(call):
    result = call("get_run", run_id="out-002/detector")
    assert _flags(result) == {("detector", "run.metric.mean_confidence", "major")}


def test_get_run_status_failed_major_degraded_minor(call):
    assert ("tracker", "run.status", "major") in _flags(call("get_run", run_id="out-005/tracker"))
    assert _flags(call("get_run", run_id="out-006/fusion")) == {("fusion", "run.status", "minor")}


def test_get_run_unknown_is_no_data(call):
    result = call("get_run", run_id="out-001/nothing")
    assert result.status == "no_data" and "out-001/nothing" in result.message


def test_get_run_unknown_field_is_error(call):
    result = call("get_run", run_id="out-001/detector", verbose=True)
    assert result.status == "error"
    assert "verbose" in result.message


def test_get_run_in_a_batch_gives_exactly_the_single_call_results(store_con):
    """The sweep runs a lineage's get_run calls as one batch; grounding re-runs them singly."""
    run_ids = [
        r[0] for r in store_con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()
    ]
    many = [{"run_id": i} for i in run_ids]
    many += [{"run_id": run_ids[0]}, {"run_id": "out-001/nothing"}, {"run": "x"}]
    tool = get_tool("get_run")
    assert tool.batch is not None
    batched = tool.call_many(store_con, many)
    assert batched == [tool.call(store_con, args) for args in many]
    assert [r.status for r in batched[-3:]] == ["ok", "no_data", "error"]
    assert sum(bool(r.flags) for r in batched) >= 4  # the flagged runs above are among them


@pytest.mark.parametrize("max_runs", [10**9, 45])
def test_get_run_with_a_baseline_cache_gives_exactly_the_uncached_results(store_con, max_runs):
    """The gate lends get_run a per-component series cache; nothing it returns may change,
    whether the cache holds every component or (past its budget) asks the store for some."""
    from tools.runs import BaselineCache, baseline_cache

    run_ids = [
        r[0] for r in store_con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()
    ]
    many = [{"run_id": i} for i in run_ids] + [{"run_id": "out-001/nothing"}]
    tool = get_tool("get_run")
    plain = [tool.call(store_con, args) for args in many]
    cache = BaselineCache(max_runs=max_runs)
    cache.check(store_con)
    with baseline_cache(cache):
        cold = [tool.call(store_con, args) for args in many]
        warm = tool.call_many(store_con, many)
    assert cold == plain and warm == plain
    assert sum(bool(r.flags) for r in plain) >= 4
    components = store_con.execute("SELECT count(DISTINCT component_id) FROM runs").fetchone()
    assert cache._series and cache._cached_runs <= max_runs
    assert (len(cache._series) == components[0]) == (max_runs > 10**6)


def test_baseline_cache_forgets_when_the_runs_table_changes(tmp_path):
    from tools.runs import BaselineCache, baseline_cache
    from tools.store.connection import open_readonly

    path = _runs_store(tmp_path, [{"x": float(i % 3)} for i in range(30)])
    cache, tool = BaselineCache(), get_tool("get_run")
    con = open_readonly(path)
    cache.check(con)
    with baseline_cache(cache):
        before = tool.call(con, {"run_id": "r29"}).data["baseline"]["runs"]
    con.close()
    _add_runs(path, [("r-new", _START - dt.timedelta(hours=1), {"x": 1.0})])  # in r29's window
    con = open_readonly(path)
    try:
        cache.check(con)  # what a newly opened investigator does
        with baseline_cache(cache):
            after = tool.call(con, {"run_id": "r29"}).data["baseline"]["runs"]
    finally:
        con.close()
    assert after == before + 1


def test_memoized_loaders_query_once_and_hand_out_private_copies(store_con, monkeypatch):
    from tools.store import loaders as lineage
    from tools.store.loaders import memoized

    calls = []
    real = lineage._load_runs
    monkeypatch.setattr(lineage, "_load_runs", lambda con, oid: calls.append(oid) or real(con, oid))
    lineage.load_runs(store_con, "out-001")
    lineage.load_runs(store_con, "out-001")
    assert len(calls) == 2  # outside an investigation nothing is remembered
    with memoized():
        first = lineage.load_runs(store_con, "out-001")
        first[0]["component_id"] = "tampered"
        second = lineage.load_runs(store_con, "out-001")
        lineage.load_runs(store_con, "out-002")
    assert len(calls) == 4  # out-001 once more, out-002 once
    assert second[0]["component_id"] != "tampered" and second == real(store_con, "out-001")


_START = dt.datetime(2025, 1, 1, 12)  # noqa: DTZ001 - the store holds naive UTC


def _add_runs(path, runs):
    """Insert runs of component 'det', given as (run_id, started_at, metrics)."""
    from tools.store.connection import open_writable

    con = open_writable(path)
    rows = [
        (run_id, f"o-{run_id}", "det", "model", "1", at, None, "ok", "{}", json.dumps(metrics))
        for run_id, at, metrics in runs
    ]
    con.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()


def _runs_store(tmp_path, metrics):
    """A store whose component 'det' ran every 10 minutes with these metrics."""
    path = tmp_path / "runs.duckdb"
    _add_runs(
        path,
        [(f"r{i}", _START + dt.timedelta(minutes=10 * i), m) for i, m in enumerate(metrics)],
    )
    return path


def test_batched_baselines_keep_only_json_numbers_like_the_single_call(tmp_path):
    """The batch form extracts baseline metrics in SQL, the single call and the gate's
    cache in Python: booleans, strings, nulls and non-object metrics must count the same."""
    from tools.runs import BaselineCache, baseline_cache
    from tools.store.connection import open_readonly

    odd = [{"x": True}, {"x": "7"}, {"x": None}, [1, 2], {"x": 2**60, "y": 0.1}, {"y": -3}]
    path = _runs_store(
        tmp_path, [odd[i % len(odd)] if i < 30 else {"x": 5.5, "y": 9} for i in range(32)]
    )
    store_con = open_readonly(path)
    try:
        tool = get_tool("get_run")
        many = [{"run_id": "r30"}, {"run_id": "r31"}]
        batched = tool.call_many(store_con, many)
        assert batched == [tool.call(store_con, args) for args in many]
        cache = BaselineCache()
        cache.check(store_con)
        with baseline_cache(cache):
            assert [tool.call(store_con, args) for args in many] == batched
        baseline = batched[1].data["baseline"]  # r0..r30 fall in the 24 h before r31
        assert baseline["runs"] == 31
        # numbers only: x in r4, r10, r16, r22, r28, r30; y in those and r5, r11, r17, r23, r29
        assert (baseline["metrics"]["x"]["n"], baseline["metrics"]["y"]["n"]) == (6, 11)
    finally:
        store_con.close()
