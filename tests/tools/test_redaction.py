"""Secrets in logs, comments and change notes never leave a tool."""

from __future__ import annotations

import pytest
from stores import FAKE_KEY

from tools.registry import TOOLS

SECRETS = (
    FAKE_KEY,
    "abc.def.ghijklmnop",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "BEGIN PRIVATE KEY",
    "hunter2secret",
)
CALLS = [
    ("search_logs", {"output_id": "out-005", "min_level": "DEBUG"}),
    ("search_logs", {"run_id": "out-005/tracker"}),
    ("search_logs", {"component_id": "snapshot-api", "start": "2025-03-10T11:00:00Z"}),
    ("get_evaluation", {"evaluation_id": "ev-003"}),
    ("get_output", {"output_id": "out-003"}),
    ("get_config_in_force", {"output_id": "out-005"}),
    ("get_config_history", {"output_id": "out-005"}),
]


@pytest.mark.parametrize(("name", "arguments"), CALLS)
def test_secrets_never_appear_in_tool_output(call, name, arguments):
    result = call(name, **arguments)
    assert result.status == "ok"
    text = result.model_dump_json()
    for secret in SECRETS:
        assert secret not in text
    assert "[REDACTED" in text


def test_every_tool_output_on_the_secret_output_is_clean(call):
    for name in TOOLS:
        args = (
            {"output_id": "out-005"} if "output_id" in TOOLS[name].args_model.model_fields else {}
        )
        if not args:
            continue
        text = call(name, **args).model_dump_json()
        assert not any(secret in text for secret in SECRETS), name


def test_redacted_log_line_keeps_its_non_secret_text(call):
    result = call("search_logs", output_id="out-005")
    error = next(line for line in result.data["lines"] if line["level"] == "ERROR")
    assert error["message"].startswith("track store write failed")
    snapshot = next(line for line in result.data["lines"] if line["component_id"] == "snapshot-api")
    assert snapshot["attributes"] == {"auth": "Bearer [REDACTED]"}
