"""get_evaluator_reliability: posterior, Wilson interval, recent vs earlier."""

from __future__ import annotations

import pytest

from tools.evaluators import wilson

AT = "2025-03-10T12:30:00Z"


def test_reliable_reviewer_has_no_flags(call):
    result = call("get_evaluator_reliability", source_id="rev-alice", at=AT)
    assert result.status == "ok"
    assert (result.data["n"], result.data["agreed"]) == (40, 38)
    assert result.data["posterior_mean"] == pytest.approx(39 / 42, abs=1e-6)
    assert result.flags == []


def test_unreliable_reviewer_is_major(call):
    result = call("get_evaluator_reliability", source_id="rev-bob", at=AT)
    assert [(f.signal, f.severity) for f in result.flags] == [("evaluator.unreliable", "major")]
    assert result.data["wilson"][1] < 0.7


def test_degrading_judge(call):
    result = call("get_evaluator_reliability", source_id="judge-llm@v7", at=AT)
    signals = {(f.signal, f.severity) for f in result.flags}
    assert ("evaluator.degrading", "major") in signals
    assert (result.data["recent_30d"]["n"], result.data["recent_30d"]["agreed"]) == (20, 6)
    assert (result.data["earlier"]["n"], result.data["earlier"]["agreed"]) == (60, 54)


def test_history_is_cut_at_the_given_time(call):
    # 40 days back only the judge's good record exists: no degradation yet
    result = call("get_evaluator_reliability", source_id="judge-llm@v7", at="2025-01-29T00:00:00Z")
    assert result.status == "ok"
    assert result.data["n"] < 60
    assert result.flags == []


def test_without_at_uses_the_whole_history(call):
    result = call("get_evaluator_reliability", source_id="rev-bob")
    assert result.data["n"] == 25


def test_unknown_source_is_no_data(call):
    result = call("get_evaluator_reliability", source_id="rev-nobody", at=AT)
    assert result.status == "no_data" and "rev-nobody" in result.message


def test_bad_time_is_error(call):
    result = call("get_evaluator_reliability", source_id="rev-bob", at="13/45/2025")
    assert result.status == "error" and "at" in result.message


def test_wilson_interval_known_values():
    low, high = wilson(8, 25)
    assert low == pytest.approx(0.1721, abs=1e-3)
    assert high == pytest.approx(0.5159, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
