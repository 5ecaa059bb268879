"""get_component_changes: versions seen in the window, model releases."""

from __future__ import annotations


def _component(result, node):
    return next(c for c in result.data["components"] if c["node_id"] == node)


def test_deploy_inside_window_is_flagged(call):
    result = call("get_component_changes", output_id="out-005")
    assert [(f.node, f.signal, f.severity, f.relative) for f in result.flags] == [
        ("preprocess", "version.changed", "minor", "before_capture")
    ]
    entry = _component(result, "preprocess")
    assert (entry["version"], entry["previous_version"]) == ("1.5.0", "1.4.0")
    assert [v["version"] for v in entry["versions"]] == ["1.4.0", "1.5.0"]


def test_no_change_before_the_deploy(call):
    result = call("get_component_changes", output_id="out-001")
    assert result.status == "ok"
    assert result.flags == []
    assert len(result.data["components"]) == 11
    assert _component(result, "detector")["model"]["version"] == "v3"


def test_model_release_inside_a_wider_window(call):
    result = call("get_component_changes", output_id="out-001", window_hours=24 * 10)
    flagged = {f.node: f for f in result.flags}
    assert flagged["detector"].at == "2025-03-01T12:00:00Z"
    assert _component(result, "detector")["changed"] is True


def test_unknown_output_and_bad_window(call):
    assert call("get_component_changes", output_id="out-q").status == "no_data"
    result = call("get_component_changes", output_id="out-001", window_hours=0)
    assert result.status == "error" and "window_hours" in result.message
