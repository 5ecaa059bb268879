"""What every evidence tool shares: the result type, anomaly flags, the Tool wrapper.

A tool is a plain function ``fn(con, args) -> ToolResult`` plus a pydantic args model whose
class docstring is the description the model reads and whose ``Field`` descriptions are
the parameter docs. A tool never raises into the investigation loop: bad arguments and
query failures come back as ``status="error"``, "nothing there" as ``status="no_data"``.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tools.errors import ForestError
from tools.store.redact import redact

__all__ = [
    "DEFAULT_ROW_CAP",
    "Flag",
    "Tool",
    "ToolArgs",
    "ToolResult",
    "jsonable",
    "relative_to",
]

DEFAULT_ROW_CAP = 50
MAX_ROW_CAP = 500

Severity = Literal["minor", "major"]
Relative = Literal["before_capture", "after_capture", "unknown"]


class Flag(BaseModel):
    """An anomaly computed by code from store data (never by the LLM)."""

    node: str | None = Field(description="lineage node id (component id) the anomaly concerns")
    signal: str = Field(description="dotted signal name, e.g. 'health.focus_score.low'")
    severity: Severity = Field(description="'major' = out of spec; 'minor' = unusual, within spec")
    at: str | None = Field(default=None, description="when the anomaly began or occurred (UTC)")
    relative: Relative = Field(default="unknown", description="timing relative to capture")
    detail: str = Field(description="one line saying what was measured against what")


class ToolResult(BaseModel):
    """The outcome of one tool call."""

    tool: str
    status: Literal["ok", "no_data", "error"]
    data: Any = None
    flags: list[Flag] = Field(default_factory=list)
    truncated: bool = False
    message: str = ""

    @classmethod
    def ok(
        cls,
        tool: str,
        data: Any,
        *,
        flags: list[Flag] | None = None,
        truncated: bool = False,
        message: str = "",
    ) -> ToolResult:
        return cls(
            tool=tool,
            status="ok",
            data=jsonable(data),
            flags=flags or [],
            truncated=truncated,
            message=message,
        )

    @classmethod
    def no_data(cls, tool: str, message: str, data: Any = None) -> ToolResult:
        return cls(tool=tool, status="no_data", data=jsonable(data), message=message)

    @classmethod
    def error(cls, tool: str, message: str) -> ToolResult:
        return cls(tool=tool, status="error", message=message)


class ToolArgs(BaseModel):
    """Base of every tool's args model: unknown arguments are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Tool:
    """A named evidence tool: args model + implementation."""

    name: str
    args_model: type[ToolArgs]
    fn: Callable[[duckdb.DuckDBPyConnection, Any], ToolResult]
    # optional: the same results for many argument sets in fewer queries
    batch: Callable[[duckdb.DuckDBPyConnection, list[Any]], list[ToolResult]] | None = None

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.args_model.__doc__ or self.name)

    def parameters_schema(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    def openai_schema(self) -> dict[str, Any]:
        """The OpenAI Chat Completions ``tools`` entry for this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters_schema(),
            },
        }

    def call(self, con: duckdb.DuckDBPyConnection, args: dict[str, Any] | ToolArgs) -> ToolResult:
        """Validate ``args``, run the tool, redact secrets; never raises for bad args or SQL."""
        parsed = self._parse(args)
        if isinstance(parsed, ToolResult):
            return parsed
        return self._guarded(lambda: [self.fn(con.cursor(), parsed)], 1)[0]

    def call_many(
        self, con: duckdb.DuckDBPyConnection, many: list[dict[str, Any]]
    ) -> list[ToolResult]:
        """``[call(con, a) for a in many]``, in one go when the tool has a ``batch`` form."""
        if self.batch is None or len(many) < 2:
            return [self.call(con, args) for args in many]
        parsed = [self._parse(args) for args in many]
        valid = [p for p in parsed if not isinstance(p, ToolResult)]
        batch = self.batch
        done = iter(self._guarded(lambda: batch(con.cursor(), valid), len(valid)))
        return [p if isinstance(p, ToolResult) else next(done) for p in parsed]

    def _parse(self, args: dict[str, Any] | ToolArgs) -> ToolArgs | ToolResult:
        try:
            return (
                args if isinstance(args, self.args_model) else self.args_model.model_validate(args)
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in exc.errors()
            )
            return ToolResult.error(self.name, f"invalid arguments: {problems}")

    def _guarded(self, run: Callable[[], list[ToolResult]], n: int) -> list[ToolResult]:
        try:
            results = run()
        except duckdb.Error as exc:
            return [ToolResult.error(self.name, f"query failed: {str(exc).splitlines()[0]}")] * n
        except ForestError as exc:
            return [ToolResult.error(self.name, str(exc))] * n
        return [
            r.model_copy(
                update={
                    "data": redact(r.data),
                    "message": redact(r.message),
                    "flags": [f.model_copy(update={"detail": redact(f.detail)}) for f in r.flags],
                }
            )
            for r in results
        ]


def jsonable(value: Any) -> Any:
    """Convert DuckDB/Python values to JSON-ready ones (UTC ISO timestamps, floats)."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def relative_to(when: dt.datetime | None, capture: dt.datetime) -> Relative:
    """Whether ``when`` lies before or after the capture time."""
    if when is None:
        return "unknown"
    return "before_capture" if when <= capture else "after_capture"
