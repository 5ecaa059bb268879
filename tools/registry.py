"""Every evidence tool by name, their OpenAI function schemas, and a version of the tool set.

Tool names are API: cassettes and recorded verdicts refer to them, so renaming one (or
changing its parameters) changes :data:`TOOLSET_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from tools.base import Tool
from tools.changes import GetComponentChangesArgs, get_component_changes
from tools.configs import (
    GetConfigHistoryArgs,
    GetConfigInForceArgs,
    get_config_history,
    get_config_in_force,
)
from tools.drift import GetInputDriftArgs, get_input_drift
from tools.errors import NotFoundError
from tools.evaluators import GetEvaluatorReliabilityArgs, get_evaluator_reliability
from tools.health import GetDeviceHealthArgs, get_device_health
from tools.lineage import (
    GetEvaluationArgs,
    GetLineageArgs,
    GetOutputArgs,
    get_evaluation,
    get_lineage,
    get_output,
)
from tools.logs import SearchLogsArgs, search_logs
from tools.runs import GetRunArgs, get_run, get_runs

__all__ = ["TOOLS", "TOOLSET_VERSION", "get_tool", "openai_tools"]

_ALL = (
    Tool("get_evaluation", GetEvaluationArgs, get_evaluation),
    Tool("get_output", GetOutputArgs, get_output),
    Tool("get_lineage", GetLineageArgs, get_lineage),
    Tool("get_run", GetRunArgs, get_run, batch=get_runs),
    Tool("search_logs", SearchLogsArgs, search_logs),
    Tool("get_device_health", GetDeviceHealthArgs, get_device_health),
    Tool("get_config_in_force", GetConfigInForceArgs, get_config_in_force),
    Tool("get_config_history", GetConfigHistoryArgs, get_config_history),
    Tool("get_component_changes", GetComponentChangesArgs, get_component_changes),
    Tool("get_evaluator_reliability", GetEvaluatorReliabilityArgs, get_evaluator_reliability),
    Tool("get_input_drift", GetInputDriftArgs, get_input_drift),
)

TOOLS: Final[dict[str, Tool]] = {tool.name: tool for tool in _ALL}


def _toolset_version() -> str:
    signature = [[tool.name, tool.parameters_schema()] for tool in _ALL]
    blob = json.dumps(signature, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


TOOLSET_VERSION: Final = _toolset_version()


def get_tool(name: str) -> Tool:
    """The tool called ``name``; NotFoundError naming the known tools otherwise."""
    try:
        return TOOLS[name]
    except KeyError:
        raise NotFoundError(f"no tool named '{name}'; known tools: {', '.join(TOOLS)}") from None


def openai_tools(names: list[str] | None = None) -> list[dict[str, Any]]:
    """OpenAI Chat Completions ``tools`` entries for ``names`` (all tools when None)."""
    return [get_tool(name).openai_schema() for name in (names if names is not None else TOOLS)]
