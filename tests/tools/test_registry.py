"""The registry: stable names, valid OpenAI function schemas, a tool-set version."""

from __future__ import annotations

import inspect
import re

import pytest

from tools.errors import NotFoundError
from tools.registry import TOOLS, TOOLSET_VERSION, _toolset_version, get_tool, openai_tools

EXPECTED = [
    "get_evaluation",
    "get_output",
    "get_lineage",
    "get_run",
    "search_logs",
    "get_device_health",
    "get_config_in_force",
    "get_config_history",
    "get_component_changes",
    "get_evaluator_reliability",
    "get_input_drift",
]
# a valid id for each tool's required argument, and an unknown one
KNOWN = {
    "get_evaluation": {"evaluation_id": "ev-001"},
    "get_output": {"output_id": "out-001"},
    "get_lineage": {"output_id": "out-001"},
    "get_run": {"run_id": "out-001/detector"},
    "search_logs": {"output_id": "out-005"},
    "get_device_health": {"device_id": "cam-t01-s01-c01", "at": "2025-03-10T12:00:00Z"},
    "get_config_in_force": {"output_id": "out-001"},
    "get_config_history": {"output_id": "out-005"},
    "get_component_changes": {"output_id": "out-001"},
    "get_evaluator_reliability": {"source_id": "rev-alice"},
    "get_input_drift": {"output_id": "out-001"},
}


def _keys(schema):
    if isinstance(schema, dict):
        for key, value in schema.items():
            yield key
            yield from _keys(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _keys(value)


def test_names_are_stable_and_verb_object():
    assert list(TOOLS) == EXPECTED
    assert all(re.fullmatch(r"(get|search)_[a-z_]+", name) for name in TOOLS)


@pytest.mark.parametrize("name", EXPECTED)
def test_each_tool_renders_a_valid_openai_function(name):
    schema = TOOLS[name].openai_schema()
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == name
    assert function["description"] == inspect.cleandoc(TOOLS[name].args_model.__doc__ or "")
    assert len(function["description"]) > 80
    params = function["parameters"]
    assert params["type"] == "object"
    assert params["properties"]
    assert params["additionalProperties"] is False
    assert "title" not in set(_keys(params))
    assert all(prop.get("description") for prop in params["properties"].values())
    assert set(params.get("required", [])) <= set(params["properties"])


@pytest.mark.parametrize(
    "name",
    ["get_evaluation", "get_output", "search_logs", "get_config_in_force", "get_config_history"],
)
def test_tools_returning_free_text_say_it_is_untrusted(name):
    assert "untrusted" in TOOLS[name].description


def test_openai_tools_all_and_subset():
    assert [t["function"]["name"] for t in openai_tools()] == EXPECTED
    assert [t["function"]["name"] for t in openai_tools(["get_run"])] == ["get_run"]


def test_get_tool_unknown_names_the_known_tools():
    with pytest.raises(NotFoundError, match="get_lineage"):
        get_tool("drop_tables")
    with pytest.raises(NotFoundError):
        openai_tools(["nope"])


def test_toolset_version_is_a_short_stable_hash():
    assert re.fullmatch(r"[0-9a-f]{12}", TOOLSET_VERSION)
    assert _toolset_version() == TOOLSET_VERSION


@pytest.mark.parametrize("name", EXPECTED)
def test_every_tool_works_rejects_unknown_fields_and_reports_unknown_ids(call, name):
    assert call(name, **KNOWN[name]).status == "ok"
    bad = call(name, **KNOWN[name], bogus_field=1)
    assert bad.status == "error" and "bogus_field" in bad.message
    unknown = {k: (v if k == "at" else "zz-unknown") for k, v in KNOWN[name].items()}
    missing = call(name, **unknown)
    assert missing.status == "no_data" and "zz-unknown" in missing.message
