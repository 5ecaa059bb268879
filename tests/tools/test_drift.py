"""get_input_drift: tail share of the output's own input and PSI of recent inputs."""

from __future__ import annotations

import pytest

from tools.drift import psi


def _feature(result, name):
    return next(f for f in result.data["features"] if f["feature"] == name)


def test_out_of_distribution_input(call):
    result = call("get_input_drift", output_id="out-006")
    assert [(f.node, f.signal, f.severity) for f in result.flags] == [
        ("detector", "input.out_of_distribution", "major")
    ]
    brightness = _feature(result, "brightness")
    assert (brightness["bin"], brightness["tail_share"]) == (5, 0.005)


def test_drifted_device_window(call):
    result = call("get_input_drift", output_id="out-002")
    # the store holds no earlier days of cam B's inputs: a window unlike the model's
    # baseline may be how this camera always looks, so it is unusual (minor), not a shift
    assert [(f.signal, f.severity) for f in result.flags] == [("input.drift", "minor")]
    assert _feature(result, "brightness")["history_n"] < 40
    brightness = _feature(result, "brightness")
    assert brightness["psi"] > 0.25 and brightness["window_n"] >= 70
    assert brightness["tail_share"] == 0.05


def test_clean_inputs_have_no_flags(call):
    for output_id in ("out-001", "out-004", "out-005"):
        result = call("get_input_drift", output_id=output_id)
        assert result.status == "ok" and result.flags == [], output_id
        assert all(f["psi"] < 0.1 for f in result.data["features"])


def test_unknown_output_and_bad_window(call):
    assert call("get_input_drift", output_id="out-q").status == "no_data"
    assert call("get_input_drift", output_id="out-001", window_hours=1000).status == "error"


def test_psi_is_zero_for_identical_shares_and_grows_with_shift():
    assert psi([0.2, 0.8], [0.2, 0.8]) == pytest.approx(0.0)
    assert psi([0.5, 0.5], [0.2, 0.8]) > psi([0.3, 0.7], [0.2, 0.8]) > 0
