"""Redaction of secrets in untrusted text (log lines, comments, change notes) before it is
shown to a person or a model, or quoted in an error."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact"]

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "[REDACTED PEM]",
    ),
    (re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.S), "[REDACTED PEM]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "Bearer [REDACTED]"),
    (re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{16,}"), "[REDACTED KEY]"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "[REDACTED KEY]"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "[REDACTED KEY]"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), "[REDACTED KEY]"),
    (
        re.compile(
            r"(?i)\b((?:api[_-]?key|apikey|access[_-]?key|secret|token|passw(?:or)?d|pwd)"
            r"[\"']?\s*[=:]\s*[\"']?)([^\s\"',;&]+)"
        ),
        r"\1[REDACTED]",
    ),
)


def redact(value: Any) -> Any:
    """Replace secrets (API keys, bearer tokens, key=value passwords, PEM blocks) in strings."""
    if isinstance(value, str):
        for pattern, repl in _SECRET_PATTERNS:
            value = pattern.sub(repl, value)
        return value
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
