"""The signals that must hold on real fleets: each fires on its planted case and stays
silent on a clean day with a normal daily cycle, integer counters and unrelated config
churn.

One small world, built in code: an outdoor camera ``cam-out`` whose exposure follows the
sun (bright by day, dark by night) for eight days, two peers at its site with the same
cycle, a detector whose runs carry integer counters and a param, and config churn on keys
no stage of the lineage consumes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tools.registry import get_tool
from tools.store.connection import open_readonly, open_writable
from tools.store.contract import columns

T0 = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)  # capture: 02:00 UTC, night there
RUNS = 600  # detector runs, one every 5 minutes up to T0 (50 h)
SITE = "site-1"
CAMS = ("cam-out", "peer-1", "peer-2")


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """One INSERT per table, each column bound as a list and unnested (naive UTC)."""
    cols = columns(table)
    values = [
        [
            r.get(c).replace(tzinfo=None) if isinstance(r.get(c), dt.datetime) else r.get(c)
            for r in rows
        ]
        for c in cols
    ]
    unnests = ", ".join("unnest(?)" for _ in cols)
    con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {unnests}", values)


def _exposure(ts: dt.datetime) -> float:
    """A daily cycle: about 80 at midday, about 8 at night (a 10x swing), 16 h of light."""
    hour = ts.hour + ts.minute / 60
    daylight = max(0.0, math.sin((hour - 4) / 16 * math.pi))
    return 8 + 72 * daylight + 0.5 * math.sin(ts.minute)


def _world(
    path: Path,
    *,
    stuck: bool = False,
    peers_dip: bool = False,
    counter_now: int = 0,
    events_now: int = 120,
    param_now: float = 0.65,
    ended_override: bool = False,
    plc_now: int = 0,
    retries_since: int = 0,
    battery_now: float | None = None,
    released_since: int = 0,
    released_clean: int = 0,
    health_days: float = 8,
    indoor: int = 0,
) -> Path:
    con = open_writable(path)
    try:
        facts = [
            {"device_id": c, "tenant_id": "t", "site_id": SITE, "kind": "camera"} for c in CAMS
        ]
        _insert(con, "device_facts", facts)
        health = []
        start = T0 - dt.timedelta(days=health_days)
        for cam in CAMS:
            ts = start
            while ts <= T0 + dt.timedelta(minutes=30):
                value = _exposure(ts)
                if cam in CAMS[len(CAMS) - indoor :]:
                    value = 30 + 0.5 * math.sin(ts.minute)  # lit indoors, no daily cycle
                near = abs((ts - T0).total_seconds()) <= 45 * 60
                if near and ((stuck and cam == "cam-out") or (peers_dip and cam != "cam-out")):
                    value = value * 4  # stuck IR cut filter: day-level exposure at night
                if near and peers_dip and cam == "cam-out":
                    value = value * 4  # the whole site at once (floodlights)
                health.append({"device_id": cam, "ts": ts, "metric": "exposure", "value": value})
                battery = 80 + 2 * math.sin(ts.hour)  # a metric the contract does not name
                if near and battery_now is not None and cam == "cam-out":
                    battery = battery_now
                health.append(
                    {"device_id": cam, "ts": ts, "metric": "battery_pct", "value": battery}
                )
                ts += dt.timedelta(minutes=5)
        _insert(con, "device_health", health)
        runs, outputs = [], []
        for i in range(RUNS):  # one output every 5 minutes before T0, then the featured one
            at = T0 - dt.timedelta(minutes=5 * (RUNS - i))
            last = i == RUNS - 1
            oid = "out-x" if last else f"bg-{i}"
            capture = T0 if last else at
            outputs.append(
                {
                    "output_id": oid,
                    "tenant_id": "t",
                    "site_id": SITE,
                    "device_id": "cam-out",
                    "captured_at": capture,
                    "decision": "no_alert",
                    "model_id": "det",
                    "model_version": "v1",
                    "score": 0.2,
                }
            )
            regressed = i >= RUNS - 1 - released_since and released_since > 0
            # a release that changed nothing the detector measures
            released = regressed or (i >= RUNS - 1 - released_clean and released_clean > 0)
            metrics = {
                # a fault that began retries_since runs ago and has lasted since
                "retries": counter_now if last else (9 if i >= RUNS - 1 - retries_since else 0),
                # a zero-inflated counter: mostly 0, a burst of 6 in one run in ten
                "plc_events": plc_now if last else (6 if i % 10 == 3 else 0),
                "events_seen": events_now if last else 120,
                "mean_confidence": (0.5 if regressed else 0.8) + 0.01 * math.sin(i),
                # what the detector finds follows the day: many boxes by day, few at night
                "boxes": round(3 * _exposure(capture)),
            }
            runs.append(
                {
                    "run_id": f"{oid}/cam",
                    "output_id": oid,
                    "component_id": "cam-out",
                    "kind": "sensor",
                    "started_at": capture,
                    "ended_at": capture,
                    "status": "ok",
                    "params": "{}",
                    "metrics": "{}",
                }
            )
            runs.append(
                {
                    "run_id": f"{oid}/det",
                    "output_id": oid,
                    "component_id": "detector",
                    "kind": "model",
                    "version": "v2" if released else "v1",
                    "started_at": capture,
                    "ended_at": capture + dt.timedelta(seconds=1),
                    "status": "ok",
                    "params": f'{{"min_conf": {param_now if last else 0.65}}}',
                    "metrics": json.dumps(metrics),
                }
            )
        _insert(con, "outputs", outputs)
        _insert(con, "runs", runs)
        edges = [{"output_id": "out-x", "parent_run_id": "out-x/cam", "child_run_id": "out-x/det"}]
        _insert(con, "lineage_edges", edges)
        configs = [  # churn on keys no lineage stage consumes
            {
                "config_id": f"c{i}",
                "key": f"telemetry.k{i}",
                "scope": scope,
                "scope_id": sid,
                "value": str(i),
                "valid_from": T0 - dt.timedelta(hours=3 * i + 1),
                "author": "ops",
                "component_id": None,
            }
            for i, (scope, sid) in enumerate(
                [("global", "*"), ("tenant", "t"), ("site", SITE), ("device", "cam-out")]
            )
        ]
        configs.append(
            {
                "config_id": "g-min",
                "key": "detector.min_conf",
                "scope": "global",
                "scope_id": "*",
                "value": "0.3",
                "valid_from": T0 - dt.timedelta(days=30),
                "author": "ops",
                "component_id": "detector",
            }
        )
        configs.append(
            {
                "config_id": "t-min",
                "key": "detector.min_conf",
                "scope": "tenant",
                "scope_id": "t",
                "value": "0.65",
                "valid_from": T0 - dt.timedelta(days=20),
                "valid_to": T0 - dt.timedelta(hours=6) if ended_override else None,
                "author": "ops",
                "component_id": "detector",
            }
        )
        _insert(con, "config_versions", configs)
    finally:
        con.close()
    return path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Callable[..., Callable[..., Any]]]:
    opened: list[duckdb.DuckDBPyConnection] = []

    def make(**planted: Any) -> Callable[..., Any]:
        path = _world(tmp_path / f"w{len(opened)}.duckdb", **planted)
        con = open_readonly(path)
        opened.append(con)
        return lambda name, **args: get_tool(name).call(con, args)

    yield make
    for con in opened:
        con.close()


AT = T0.isoformat()


def _health_flags(call: Callable[..., Any]) -> list[tuple[str, str]]:
    result = call("get_device_health", device_id="cam-out", at=AT)
    assert result.status == "ok"
    return [(f.signal, f.severity) for f in result.flags]


def test_a_night_frame_is_compared_with_previous_nights(world) -> None:
    call = world()
    result = call("get_device_health", device_id="cam-out", at=AT)
    exposure = next(m for m in result.data["metrics"] if m["metric"] == "exposure")
    assert exposure["reference_source"] == "seasonal" and exposure["reference_days"] == 7
    # the trailing 24 h median (mostly daylight) would call the night "major low"
    assert exposure["baseline"] > 3 * exposure["reference"]
    assert result.flags == []


def test_an_exposure_stuck_at_night_is_major(world) -> None:
    assert _health_flags(world(stuck=True)) == [("health.exposure.high", "major")]


def test_a_deviation_the_site_shares_is_minor(world) -> None:
    call = world(peers_dip=True)
    result = call("get_device_health", device_id="cam-out", at=AT)
    assert [(f.signal, f.severity) for f in result.flags] == [("health.exposure.high", "minor")]
    assert "shared by 2 of 2 peer devices" in result.flags[0].detail


def test_peers_in_another_regime_are_not_compared(world) -> None:
    # one outdoor peer dips with the camera; the other peer is indoors (30 ms all day, the
    # night outdoors is 8 ms) and sees none of it: the change is still the scene's
    call = world(peers_dip=True, indoor=1)
    result = call("get_device_health", device_id="cam-out", at=AT)
    assert [(f.signal, f.severity) for f in result.flags] == [("health.exposure.high", "minor")]
    exposure = next(m for m in result.data["metrics"] if m["metric"] == "exposure")
    assert exposure["peers"] == {"deviating_alike": 1, "compared": 1, "shared": True}
    # a fault of its own stays major beside the same peers, and a clean night stays silent
    assert _health_flags(world(stuck=True, indoor=1)) == [("health.exposure.high", "major")]
    assert _health_flags(world(indoor=1)) == []


def _run_flags(call: Callable[..., Any]) -> list[tuple[str, str]]:
    result = call("get_run", run_id="out-x/det")
    assert result.status == "ok"
    return [(f.signal, f.severity) for f in result.flags]


def test_counters_are_counts_not_noise_free(world) -> None:
    assert _run_flags(world()) == []
    assert _run_flags(world(counter_now=1)) == []  # retries 0 -> 1: within Poisson noise
    assert ("run.metric.retries", "major") in _run_flags(world(counter_now=9))
    assert ("run.metric.events_seen", "major") in _run_flags(world(events_now=60))


def test_a_param_that_left_its_usual_value(world) -> None:
    call = world(param_now=0.3)
    result = call("get_run", run_id="out-x/det")
    changed = [f for f in result.flags if f.signal == "param.changed"]
    assert len(changed) == 1 and "min_conf=0.3 differs from the usual 0.65" in changed[0].detail
    assert result.data["baseline"]["params"]["differs"]["min_conf"] == {"used": 0.3, "usual": 0.65}


def test_an_ended_override_is_a_change_in_force(world) -> None:
    quiet = world()("get_config_history", output_id="out-x")
    assert not [f for f in quiet.flags if f.node == "detector"]
    call = world(ended_override=True)
    result = call("get_config_history", output_id="out-x")
    mine = [f for f in result.flags if f.node == "detector"]
    assert [(f.signal, f.severity) for f in mine] == [("config.changed", "minor")]
    assert "0.65 -> 0.3" in mine[0].detail
    entry = next(c for c in result.data["changes"] if c["key"] == "detector.min_conf")
    assert entry["in_force_at_capture"] and "ended" in entry["change_note"]


def test_a_value_the_older_runs_often_show_is_ordinary(world) -> None:
    # plc_events is 0 in most runs and 6 in one in ten, all day long: 6 is not a change
    assert _run_flags(world(plc_now=6)) == []
    assert ("run.metric.plc_events", "major") in _run_flags(world(plc_now=40))


def test_a_fault_inside_the_window_is_not_absorbed_by_it(world) -> None:
    # retries have been 9 for the last 100 runs (8 h of the 24 h window): the older half
    # of the window never shows it, so the current 9 still stands out
    assert ("run.metric.retries", "major") in _run_flags(world(counter_now=9, retries_since=100))


def test_a_metric_the_contract_does_not_name_is_judged_too(world) -> None:
    assert not [f for f in _health_flags(world()) if "battery" in f[0]]
    assert ("health.battery_pct.low", "major") in _health_flags(world(battery_now=3.0))


def test_a_release_is_compared_with_what_came_before_it(world) -> None:
    # v2 has run (worse) for the last 200 runs, most of the 24 h window: against its own
    # runs the drop is ordinary, against the runs before the release it is a regression
    call = world(released_since=200)
    result = call("get_run", run_id="out-x/det")
    assert ("run.metric.mean_confidence", "major") in _run_flags(call)
    assert "last run of another version" in result.data["baseline"]["window"]
    assert _run_flags(world()) == []


def _change_flags(call: Callable[..., Any]) -> list[tuple[str, str]]:
    result = call("get_component_changes", output_id="out-x")
    return [(f.signal, f.severity) for f in result.flags]


def test_a_release_that_changed_what_the_component_measures(world) -> None:
    """The new version's runs against the previous version's at the same hours of the
    day: a release that lowered the detector's confidence changed its behaviour; one that
    ran only at night (few boxes, as at night before it) changed nothing."""
    assert ("release.behaviour_changed", "major") in _change_flags(world(released_since=300))
    clean = world(released_clean=100)
    assert _change_flags(clean) == [("version.changed", "minor")]
    effects = clean("get_component_changes", output_id="out-x").data["components"][1]
    boxes = next(e for e in effects["release_effect"] if e["metric"] == "boxes")
    assert boxes["runs_after"] >= 100 and abs(boxes["z"]) < 5


def test_a_measured_release_says_what_it_found(world) -> None:
    """The tool says whether the comparison found a change, found none on enough runs, or
    could not be made (too few runs of the new version at matching hours)."""

    def check(call: Callable[..., Any]) -> str | None:
        entries = call("get_component_changes", output_id="out-x").data["components"]
        return next((e.get("release_check") for e in entries if e.get("changed")), None)

    assert check(world(released_since=300)) == "changed"
    assert check(world(released_clean=100)) == "unchanged"
    assert check(world(released_clean=5)) == "unmeasured"


def test_a_release_before_the_weekend_is_compared_with_weekdays_only(tmp_path: Path) -> None:
    """A counter that follows the week (busier at the weekend): the new version ran from
    Friday noon to Sunday, the old one Tuesday to Friday. Compared hour by hour with the
    weekdays before it, the weekend's traffic would read as a change; on the same kind of
    day (the Friday afternoon runs against the weekday runs) nothing moved."""
    from tools.changes import _changed_behaviour, _release_effect

    release = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)  # a Friday
    con = open_writable(tmp_path / "week.duckdb")
    try:
        runs = []
        at = release - dt.timedelta(hours=72)
        while at < release + dt.timedelta(hours=60):
            weekend = at.weekday() >= 5
            count = (150 if weekend else 100) + 3 * math.sin(at.minute + at.hour)
            runs.append(
                {
                    "run_id": f"r-{at.isoformat()}",
                    "output_id": f"o-{at.isoformat()}",
                    "component_id": "counter",
                    "kind": "transform",
                    "version": "v2" if at >= release else "v1",
                    "started_at": at,
                    "ended_at": at,
                    "status": "ok",
                    "params": "{}",
                    "metrics": json.dumps({"crossings": round(count, 1)}),
                }
            )
            at += dt.timedelta(minutes=10)
        _insert(con, "runs", runs)
        entry = {"node_id": "counter", "version": "v2", "previous_version": "v1"}
        effects = _release_effect(con, entry | {"changed_at": release}, at)
    finally:
        con.close()
    (crossings,) = effects
    assert crossings["median_after"] < 110 and crossings["runs_after"] == 72  # Friday only
    assert not _changed_behaviour(crossings)


def test_under_two_days_of_history_a_value_the_device_showed_is_ordinary(world) -> None:
    """With one day of health there is no seasonal reference: the night is far from the
    24 h median (mostly day), but the night 24-12 h before already reached it; a battery
    reading the device never showed is still major."""
    short = world(health_days=1)
    assert _health_flags(short) == []
    result = short("get_device_health", device_id="cam-out", at=AT)
    exposure = next(m for m in result.data["metrics"] if m["metric"] == "exposure")
    assert exposure["reference_source"] == "baseline" and exposure["seen_before"]["reached"] > 0
    assert ("health.battery_pct.low", "major") in _health_flags(
        world(health_days=1, battery_now=3.0)
    )


OLD_PARAMS = {"tracker.max_age": 90, "tracker.min_frames": 10}


def _tracker_store(
    path: Path, new_params: dict[str, Any], old_params: dict[str, Any] | None = OLD_PARAMS
) -> duckdb.DuckDBPyConnection:
    """A tracker with config keys `tracker.max_age` and `tracker.min_frames` (tenant) whose
    runs of the last four days reported ``old_params``; its latest 10 runs (a release)
    report ``new_params`` instead."""
    con = open_writable(path)
    outputs, runs = [], []
    for i in range(60):
        at = T0 - dt.timedelta(minutes=90 * (59 - i))
        new = i >= 50
        oid = "out-x" if i == 59 else f"bg-{i}"
        outputs.append(
            {
                "output_id": oid,
                "tenant_id": "t",
                "site_id": SITE,
                "device_id": "cam-out",
                "captured_at": at,
                "decision": "count",
            }
        )
        params = new_params if new else old_params
        runs.append(
            {
                "run_id": f"{oid}/trk",
                "output_id": oid,
                "component_id": "tracker",
                "kind": "tracker",
                "version": "0.9" if new else "0.8",
                "started_at": at,
                "ended_at": at,
                "status": "ok",
                "params": None if params is None else json.dumps(params),
                "metrics": "{}",
            }
        )
    _insert(con, "outputs", outputs)
    _insert(con, "runs", runs)
    configs = [
        {
            "config_id": f"c-{key}",
            "key": key,
            "scope": "tenant",
            "scope_id": "t",
            "value": value,
            "valid_from": T0 - dt.timedelta(days=30),
            "author": "ops",
            "component_id": "tracker",
        }
        for key, value in (("tracker.max_age", "90"), ("tracker.min_frames", "10"))
    ]
    _insert(con, "config_versions", configs)
    con.close()
    return open_readonly(path)


def test_a_renamed_key_that_fell_back_to_its_default(tmp_path: Path) -> None:
    """The release renamed max_age to track_buffer: the key in force no longer reaches the
    tracker (its runs carried it before), and the run used a param no config sets. A
    release that adds an unconfigured param but still takes every key is silent."""
    renamed = {"tracker.track_buffer": 30, "tracker.min_frames": 10}
    con = _tracker_store(tmp_path / "renamed.duckdb", renamed)
    try:
        result = get_tool("get_config_in_force").call(con, {"output_id": "out-x"})
        found = {(f.signal, f.severity, f.node) for f in result.flags}
        assert ("param.missing", "minor", "tracker") in found
        assert ("param.default_used", "major", "tracker") in found
        assert "tracker.track_buffer=30" in next(
            f.detail for f in result.flags if f.signal == "param.default_used"
        )
    finally:
        con.close()
    added = {"tracker.max_age": 90, "tracker.min_frames": 10, "tracker.iou": 0.5}
    con = _tracker_store(tmp_path / "added.duckdb", added)
    try:
        assert get_tool("get_config_in_force").call(con, {"output_id": "out-x"}).flags == []
    finally:
        con.close()


def test_new_params_after_runs_that_reported_none(tmp_path: Path) -> None:
    """Runs that reported no params say nothing about a key: when the release starts
    reporting params, none of them a key in force, the key most likely did not reach it.
    Runs that reported params but never `tracker.max_age` show it is not a param they
    report: a new param beside it is silent."""
    renamed = {"tracker.track_buffer": 30, "tracker.min_frames": 10}
    con = _tracker_store(tmp_path / "none-before.duckdb", renamed, old_params=None)
    try:
        flags = get_tool("get_config_in_force").call(con, {"output_id": "out-x"}).flags
        assert ("param.default_used", "major") in {(f.signal, f.severity) for f in flags}
    finally:
        con.close()
    con = _tracker_store(
        tmp_path / "never-reported.duckdb",
        {"tracker.min_frames": 10, "tracker.watermark": 5},
        old_params={"tracker.min_frames": 10},
    )
    try:
        assert get_tool("get_config_in_force").call(con, {"output_id": "out-x"}).flags == []
    finally:
        con.close()


def test_a_return_to_an_earlier_version_is_a_rollback(tmp_path: Path) -> None:
    """A model back on the version the registry released before the one it replaced, and
    a component back on a version the device ran before: a rollback restores behaviour
    known before, so its measuring differently from the bad release is no new change."""
    from tools.changes import _ran_before

    t = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    con = open_writable(tmp_path / "back.duckdb")
    try:
        _insert(
            con,
            "models",
            [
                {"model_id": "det", "version": "v1", "released_at": t - dt.timedelta(days=90)},
                {"model_id": "det", "version": "v2", "released_at": t - dt.timedelta(days=2)},
            ],
        )
        outputs, runs = [], []
        for i, version in enumerate(["v1", "v2", "v1"]):
            at = t - dt.timedelta(days=3 - i)
            outputs.append({"output_id": f"o{i}", "tenant_id": "t", "site_id": SITE,
                            "device_id": "cam-out", "captured_at": at, "decision": "x",
                            "model_id": "det", "model_version": "v1"})  # fmt: skip
            runs.append({"run_id": f"r{i}", "output_id": f"o{i}", "component_id": "norm",
                         "kind": "transform", "version": version, "started_at": at,
                         "ended_at": at, "status": "ok"})  # fmt: skip
        _insert(con, "outputs", outputs)
        _insert(con, "runs", runs)
        seen = [{"version": "v2", "first_seen": t - dt.timedelta(days=2)}]
        back = {"node_id": "norm", "version": "v1", "previous_version": "v2", "versions": seen}
        assert _ran_before(con, back, "cam-out")
        ahead = back | {"version": "v3"}
        assert not _ran_before(con, ahead, "cam-out")
        registry = {"model_id": "det", "released_at": t - dt.timedelta(days=90)}
        assert _ran_before(con, back | {"node_id": "det-node", "model": registry}, "x")
        newer = {"model_id": "det", "released_at": t}
        assert not _ran_before(con, back | {"node_id": "det-node", "model": newer}, "x")
    finally:
        con.close()
