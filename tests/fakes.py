"""The one scripted stand-in for the LLM every test module uses (no network, no cassette)."""

from __future__ import annotations

import json
import threading
from typing import Any

from agent.llm import ChatResult

__all__ = ["SENSOR_DRAFT", "ScriptedModel", "sensor_model"]

# A valid verdict draft blaming the small store's camera cam-t01-s02-c01 (evidence E4).
SENSOR_DRAFT: dict[str, Any] = {
    "category": "sensor_fault",
    "failing_node": "cam-t01-s02-c01",
    "causal_path": [],
    "action": {"kind": "hardware_maintenance"},
    "confidence": 0.8,
    "summary": "focus dropped before capture (E4)",
    "evidence_ids": ["E4"],
}


class ScriptedModel:
    """A fake :class:`agent.llm.ChatModel`, like simonw/llm's ``MockModel``.

    Each ``chat`` answers the next enqueued response, then ``default`` once the queue is empty.
    A response is a ``ChatResult`` (returned as is), a ``str`` (the answer's content), a
    ``dict`` (content: its JSON) or an exception (raised by that call). ``history`` holds each
    call's keyword view ``{"messages", "tools", "tool_choice", "response_format"}``, the
    messages list as passed (not copied). With ``gate``, every call waits for the test to set
    the event (and fails after ``gate_timeout`` seconds). Safe to call from several threads.

        model = ScriptedModel(default=SENSOR_DRAFT)      # the same answer forever
        model = ScriptedModel().enqueue(tool_result, "{}", LLMError("boom"))
    """

    def __init__(
        self,
        *responses: Any,
        default: Any = "",
        gate: threading.Event | None = None,
        gate_timeout: float = 30.0,
        model: str = "fake-1",
    ) -> None:
        self.model = model
        self.default = default
        self.gate = gate
        self.gate_timeout = gate_timeout
        self.history: list[dict[str, Any]] = []
        self._queue: list[Any] = []
        self._lock = threading.Lock()
        self.enqueue(*responses)

    def enqueue(self, *responses: Any) -> ScriptedModel:
        """Queue responses for the next calls, in order; returns the model."""
        with self._lock:
            self._queue.extend(responses)
        return self

    @property
    def pending(self) -> int:
        """Responses enqueued and not yet answered."""
        with self._lock:
            return len(self._queue)

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        response_format: dict[str, Any] | None = None,
    ) -> ChatResult:
        with self._lock:
            self.history.append(
                {
                    "messages": messages,
                    "tools": tools,
                    "tool_choice": tool_choice,
                    "response_format": response_format,
                }
            )
            step = self._queue.pop(0) if self._queue else self.default
        if self.gate is not None:
            assert self.gate.wait(self.gate_timeout), "test never released the fake model"
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, ChatResult):
            return step
        if isinstance(step, str):
            return ChatResult(content=step)
        if isinstance(step, dict):
            return ChatResult(content=json.dumps(step))
        raise TypeError(f"ScriptedModel cannot answer with {type(step).__name__}")


def sensor_model(gate: threading.Event | None = None) -> ScriptedModel:
    """A model answering every chat with ``SENSOR_DRAFT`` (with ``gate``: once it is set)."""
    return ScriptedModel(default=SENSOR_DRAFT, gate=gate)
