"""search_logs: lineage scoping, windows, truncation and per-node flags."""

from __future__ import annotations

CAM_A, CAM_B = "cam-t01-s01-c01", "cam-t01-s02-c01"


def _flags(result):
    return {(f.node, f.signal, f.severity) for f in result.flags}


def test_output_scope_returns_lineage_warnings_and_errors_most_severe_first(call):
    result = call("search_logs", output_id="out-005")
    assert result.status == "ok"
    levels = [line["level"] for line in result.data["lines"]]
    assert levels == ["ERROR", "WARN", "WARN"]
    assert {line["component_id"] for line in result.data["lines"]} == {"tracker", "snapshot-api"}
    assert result.truncated is False and result.data["total"] == 3


def test_output_scope_excludes_other_lineages_and_lines_outside_the_window(call):
    result = call("search_logs", output_id="out-005", min_level="DEBUG")
    components = {line["component_id"] for line in result.data["lines"]}
    # door-t02-s01-1 is not in out-005's lineage; the cam A line at T0+30min is past +10 min;
    # the preprocess deploy at T0-5h is before -2 h
    assert "door-t02-s01-1" not in components
    assert all("lens heater" not in line["message"] for line in result.data["lines"])
    assert all("deployed" not in line["message"] for line in result.data["lines"])


def test_explicit_window_widens_the_search(call):
    result = call(
        "search_logs",
        output_id="out-005",
        min_level="INFO",
        start="2025-03-10T06:00:00Z",
        end="2025-03-10T13:00:00Z",
        contains="DEPLOYED",
    )
    assert result.status == "ok"
    assert [line["message"] for line in result.data["lines"]] == ["deployed preprocess 1.5.0"]


def test_flags_aggregate_per_node(call):
    result = call("search_logs", output_id="out-005")
    assert _flags(result) == {
        ("tracker", "log.error", "major"),
        ("tracker", "log.warn", "minor"),
        ("snapshot-api", "log.warn", "minor"),
    }
    assert all(f.relative == "before_capture" for f in result.flags)


def test_component_level_lines_of_lineage_components_count(call):
    result = call("search_logs", output_id="out-002")
    warn = next(f for f in result.flags if f.node == CAM_B)
    assert warn.signal == "log.warn" and "2 WARN" in warn.detail
    assert warn.at == "2025-03-10T11:30:00Z"


def test_truncation_is_said_out_loud(call):
    result = call("search_logs", output_id="out-005", min_level="INFO", limit=3)
    assert result.status == "ok"
    assert result.truncated is True
    assert len(result.data["lines"]) == 3
    assert result.data["total"] == 14
    assert "showing 3 of 14" in result.message
    # flags summarise every matching line, not just the page shown
    assert ("snapshot-api", "log.warn", "minor") in _flags(result)


def test_clean_output_has_no_warnings(call):
    result = call("search_logs", output_id="out-001")
    assert result.status == "no_data"
    assert result.flags == []


def test_run_scope(call):
    result = call("search_logs", run_id="out-005/tracker")
    assert {line["run_id"] for line in result.data["lines"]} == {"out-005/tracker"}
    assert ("tracker", "log.error", "major") in _flags(result)


def test_component_scope_needs_a_window(call):
    result = call("search_logs", component_id=CAM_A)
    assert result.status == "error" and "start" in result.message


def test_component_scope_with_window(call):
    result = call("search_logs", component_id=CAM_A, start="2025-03-10T12:00:00Z")
    assert [line["message"] for line in result.data["lines"]] == ["lens heater cycling"]
    assert result.flags == []


def test_window_too_wide_is_error(call):
    result = call(
        "search_logs", component_id=CAM_A, start="2025-03-01T00:00:00Z", end="2025-03-10T00:00:00Z"
    )
    assert result.status == "error" and "48 h" in result.message


def test_unknown_ids_are_no_data(call):
    assert call("search_logs", output_id="out-x").message == "no output with output_id 'out-x'"
    assert call("search_logs", run_id="run-x").status == "no_data"


def test_bad_arguments_are_errors(call):
    assert call("search_logs", output_id="out-005", min_level="LOUD").status == "error"
    assert call("search_logs", output_id="out-005", limit=0).status == "error"
    assert call("search_logs", output_id="out-005", limit=100_000).status == "error"
    bad_time = call("search_logs", component_id=CAM_A, start="yesterday-ish")
    assert bad_time.status == "error" and "start" in bad_time.message
