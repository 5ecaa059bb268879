"""Scripted stand-ins for the LLM shared by the test modules (no network, no cassette)."""

from __future__ import annotations

import json
import threading
from typing import Any

from agent.llm import ChatResult

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


class SensorModel:
    """Answers every chat with ``SENSOR_DRAFT``; with ``gate``, only once the test sets it."""

    model = "fake-1"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate

    def chat(self, messages: Any, *, tools=None, tool_choice=None, response_format=None):
        if self.gate is not None:
            assert self.gate.wait(30), "test never released the fake model"
        return ChatResult(content=json.dumps(SENSOR_DRAFT))
