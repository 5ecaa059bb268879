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


def test_a_value_far_past_the_outermost_decile_is_out_of_distribution():
    """Decile baselines put 10 % in each outer bin, so the bins alone never show a tail
    under 1 %: past the outermost edge the tail is extrapolated (scale 1.5 median inner
    widths) and held to 0.1 %. A camera knocked out of position (alignment 0.66 against a
    baseline of 0.93-0.97) is far out; a value a few widths past the edge is not."""
    import datetime as dt

    from tools.drift import _flags, outer_tail

    edges = [0.935, 0.94, 0.944, 0.947, 0.95, 0.952, 0.956, 0.96, 0.965]
    expected = [0.1] * 10
    assert outer_tail(edges, expected, 0.95) is None
    far, near = outer_tail(edges, expected, 0.66), outer_tail(edges, expected, 0.925)
    assert far is not None and far < 1e-6 and near is not None and near > 0.001
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def flags(value: float, own_tail: float | None) -> list[str]:
        entry = {"feature": "alignment", "value": value, "tail_share": 0.1}
        entry["history_tail_share"] = own_tail
        beyond = outer_tail(edges, expected, value)
        return [f.signal for f in _flags("det", entry, None, at, at, beyond)]

    assert flags(0.66, None) == ["input.out_of_distribution"]
    assert flags(0.925, None) == []
    # the device's own history has been there before: how this camera looks, not new
    assert flags(0.66, 0.2) == []
