"""get_config_in_force / get_config_history: precedence, shadowing, staleness, changes."""

from __future__ import annotations

import datetime as dt

from tools.configs import _replay_threshold, resolve

CAM_C = "cam-t02-s01-c01"


def _flags(result):
    return {(f.node, f.signal, f.severity) for f in result.flags}


def _key(result, key):
    return next(k for k in result.data["keys"] if k["key"] == key)


def test_device_override_shadows_tenant_value(call):
    result = call("get_config_in_force", output_id="out-004", key="policy.night_mode")
    entry = _key(result, "policy.night_mode")
    assert (entry["scope"], entry["scope_id"], entry["value"]) == ("device", CAM_C, False)
    assert entry["config_id"] == "cfg-006"
    assert [(s["config_id"], s["scope"], s["value"]) for s in entry["shadowed"]] == [
        ("cfg-005", "tenant", True),
        ("cfg-003", "global", False),
    ]
    assert _flags(result) == {("policy-engine", "config.shadowed_recent_change", "major")}


def test_threshold_stale_fires_for_old_global_value_only(call):
    # 0.5 predates the model whose recommended threshold is 0.7, but out-004's score 0.72
    # passes both: stale, yet the decision would not have flipped, so only minor
    stale = call("get_config_in_force", output_id="out-004", key="threshold.person")
    assert _flags(stale) == {("threshold", "threshold.stale", "minor")}
    assert "0.72 passes both, so the decision would not have flipped" in stale.flags[0].detail
    fresh = call("get_config_in_force", output_id="out-001", key="threshold.person")
    entry = _key(fresh, "threshold.person")
    assert (entry["scope"], entry["value"]) == ("tenant", 0.7)
    assert fresh.flags == []


def test_precedence_mismatch_when_run_used_another_value(call):
    result = call("get_config_in_force", output_id="out-005")
    assert _flags(result) == {("policy-engine", "config.precedence_mismatch", "major")}
    entry = _key(result, "policy.min_dwell_s")
    assert (entry["value"], entry["run_value"], entry["run_id"]) == (
        3,
        5,
        "out-005/policy-engine",
    )
    box = _key(result, "detector.min_box_px")
    assert (box["scope"], box["value"], box["run_value"]) == ("site", 96, 96)


def test_clean_output_has_no_config_flags(call):
    result = call("get_config_in_force", output_id="out-001")
    assert result.status == "ok"
    assert {k["key"] for k in result.data["keys"]} == {
        "threshold.person",
        "policy.night_mode",
        "policy.min_dwell_s",
        "detector.min_box_px",
    }
    assert result.flags == []


def test_in_force_limit_truncates(call):
    result = call("get_config_in_force", output_id="out-001", limit=2)
    assert result.truncated is True and len(result.data["keys"]) == 2
    assert "showing 2 of 4" in result.message


def test_in_force_unknown_key_and_output(call):
    missing_key = call("get_config_in_force", output_id="out-001", key="no.such.key")
    assert missing_key.status == "no_data" and "no.such.key" in missing_key.message
    missing_output = call("get_config_in_force", output_id="out-zzz")
    assert missing_output.status == "no_data" and "out-zzz" in missing_output.message


def test_history_big_change_in_force_is_major(call):
    result = call("get_config_history", output_id="out-005")
    change = next(c for c in result.data["changes"] if c["config_id"] == "cfg-009")
    assert (change["old"], change["new"], change["in_force_at_capture"]) == (16, 96, True)
    assert _flags(result) == {("detector", "config.changed", "major")}
    # the other tenant's change is not in out-005's scope chain
    assert all(c["config_id"] != "cfg-010" for c in result.data["changes"])


def test_history_small_change_minor_and_shadowed_change_not_flagged(call):
    result = call("get_config_history", output_id="out-004")
    by_id = {c["config_id"]: c for c in result.data["changes"]}
    assert by_id["cfg-005"]["in_force_at_capture"] is False
    assert by_id["cfg-010"]["in_force_at_capture"] is True
    assert _flags(result) == {("detector", "config.changed", "minor")}


def test_history_window_and_key_filters(call):
    assert call("get_config_history", output_id="out-001").status == "no_data"
    narrow = call("get_config_history", output_id="out-004", window_hours=24)
    assert [c["config_id"] for c in narrow.data["changes"]] == ["cfg-010"]
    keyed = call("get_config_history", output_id="out-004", key="policy.night_mode")
    assert [c["config_id"] for c in keyed.data["changes"]] == ["cfg-005"]


def test_history_rejects_bad_window(call):
    result = call("get_config_history", output_id="out-004", window_hours=-3)
    assert result.status == "error" and "window_hours" in result.message


def test_resolve_prefers_specific_scope_then_latest_version():
    t = dt.datetime(2025, 1, 10, tzinfo=dt.UTC)

    def version(cid, scope, days, end=None):
        start = t - dt.timedelta(days=days)
        return {"config_id": cid, "scope": scope, "valid_from": start, "valid_to": end}

    versions = [
        version("g", "global", 9),
        version("t-old", "tenant", 8),
        version("t-new", "tenant", 2),
        version("s-future", "site", -1),
        version("d-expired", "device", 5, end=t - dt.timedelta(days=1)),
    ]
    res = resolve(versions, t)
    assert res is not None
    assert res.winner["config_id"] == "t-new"
    assert [v["config_id"] for v in res.shadowed] == ["t-old", "g"]
    assert resolve(versions, t - dt.timedelta(days=20)) is None


def test_history_flags_do_not_depend_on_the_page_size(call):
    result = call("get_config_history", output_id="out-004", limit=1)
    assert result.truncated is True and "showing 1 of 2" in result.message
    assert [c["config_id"] for c in result.data["changes"]] == ["cfg-010"]
    assert {(f.node, f.signal) for f in result.flags} == {("detector", "config.changed")}


def test_threshold_replay_flips_only_between_the_two_thresholds():
    assert _replay_threshold(0.5, 0.7, {"metrics": {}}, 0.6) == (
        True,
        "the score 0.6 would have missed the recommended threshold: the decision flips",
    )
    assert _replay_threshold(0.7, 0.5, {"metrics": {}}, 0.6)[0] is True  # passes the new one
    assert _replay_threshold(0.5, 0.7, {"metrics": {}}, 0.72)[0] is False
    assert _replay_threshold(0.5, 0.7, {"metrics": {}}, 0.3)[1].endswith(
        "misses both, so the decision would not have flipped"
    )
    # the output's score wins; the threshold run's own score stands in when there is none
    assert _replay_threshold(0.5, 0.7, {"metrics": {"score": 0.6}}, 0.9)[0] is False
    assert _replay_threshold(0.5, 0.7, {"metrics": {"score": 0.6}}, None)[0] is True
    assert _replay_threshold(0.5, 0.7, {"metrics": {"score": True}}, None) == (
        False,
        "no score to replay the decision with",
    )


def test_only_a_key_on_the_scores_scale_is_a_stale_threshold():
    """A distance, a count or a duration on a threshold stage is not the score threshold
    the model recommends a value for."""
    from tools.configs import _same_scale

    assert _same_scale(0.5, 0.7) and _same_scale(0.0, 0.3)
    assert not _same_scale(3.0, 0.5)  # metres against a probability
    assert not _same_scale(-0.2, 0.5)
    assert _same_scale(40.0, 55.0)  # a score on a 0..100 scale
    assert not _same_scale(4000.0, 55.0) and not _same_scale(-40.0, 55.0)
