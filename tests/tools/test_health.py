"""get_device_health: baselines, onset, before/after capture, nominal specs."""

from __future__ import annotations

CAM_A, CAM_B, CAM_C = "cam-t01-s01-c01", "cam-t01-s02-c01", "cam-t02-s01-c01"


def test_focus_drop_before_capture_is_major_with_onset(call):
    result = call("get_device_health", device_id=CAM_B, at="2025-03-10T12:00:00Z")
    assert result.status == "ok"
    assert [(f.node, f.signal, f.severity, f.relative) for f in result.flags] == [
        (CAM_B, "health.focus_score.low", "major", "before_capture")
    ]
    assert result.flags[0].at == "2025-03-10T11:20:00Z"
    focus = next(m for m in result.data["metrics"] if m["metric"] == "focus_score")
    assert abs(focus["baseline"] - 0.8) < 0.01 and focus["pre_capture"] == 0.32


def test_blip_after_capture_is_flagged_after_capture(call):
    result = call("get_device_health", device_id=CAM_A, at="2025-03-10T00:00:00Z")
    assert [(f.signal, f.severity, f.relative) for f in result.flags] == [
        ("health.dropped_frames.high", "major", "after_capture")
    ]
    assert result.flags[0].at == "2025-03-10T00:20:00Z"


def test_healthy_device_has_no_flags(call):
    for device in (CAM_A, CAM_C):
        result = call("get_device_health", device_id=device, at="2025-03-10T12:00:00Z")
        assert result.status == "ok" and result.flags == []
        assert {m["metric"] for m in result.data["metrics"]} == {
            "focus_score", "exposure", "fps", "dropped_frames", "resolution_h", "bitrate_kbps"
        }  # fmt: skip


def test_nominal_spec_is_the_reference_for_fps(call):
    result = call("get_device_health", device_id=CAM_A, at="2025-03-10T12:00:00Z")
    fps = next(m for m in result.data["metrics"] if m["metric"] == "fps")
    assert (fps["reference"], fps["reference_source"]) == (15.0, "nominal")
    assert len(fps["series"]) <= 13


def test_window_is_bounded_and_parameterised(call):
    result = call("get_device_health", device_id=CAM_B, at="2025-03-10T12:00:00Z", window_minutes=5)
    focus = next(m for m in result.data["metrics"] if m["metric"] == "focus_score")
    assert focus["window"]["n"] == 3


def test_device_without_samples_is_no_data(call):
    door = call("get_device_health", device_id="door-t01-s01-1", at="2025-03-10T12:00:00Z")
    assert door.status == "no_data" and "door-t01-s01-1" in door.message
    assert door.data["device"]["kind"] == "door_sensor"
    unknown = call("get_device_health", device_id="cam-zz", at="2025-03-10T12:00:00Z")
    assert unknown.status == "no_data" and "cam-zz" in unknown.message


def test_timestamps_with_offsets_are_converted_to_utc(call):
    result = call("get_device_health", device_id=CAM_B, at="2025-03-10T13:00:00+01:00")
    assert result.data["at"] == "2025-03-10T12:00:00Z"
    assert [f.signal for f in result.flags] == ["health.focus_score.low"]


def test_bad_arguments_are_errors(call):
    bad_time = call("get_device_health", device_id=CAM_A, at="not a time")
    assert bad_time.status == "error" and "at" in bad_time.message
    missing = call("get_device_health", device_id=CAM_A)
    assert missing.status == "error"
    too_wide = call("get_device_health", device_id=CAM_A, at="2025-03-10T12:00:00Z",
                    window_minutes=10_000)  # fmt: skip
    assert too_wide.status == "error" and "window_minutes" in too_wide.message
