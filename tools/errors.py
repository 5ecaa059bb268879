"""Forest's exception hierarchy, every class in this one module (the bottom layer: it
imports nothing of Forest). Every error a user can see says what was wrong and what to do.

::

    ForestError                 base; the CLI prints it as one line and exits non-zero
    ├── StoreError              the store file is missing, corrupt, locked or not a Forest store
    │   └── StoreBusyError      investigations held the store past a flush's wait; retry later
    ├── IngestError             a file to ingest is malformed (names file, row and field)
    ├── NotFoundError           an id (evaluation, output, tool) does not exist
    ├── InputError              a malformed evaluation, tool arguments or CLI input
    ├── LLMError                the LLM endpoint failed or kept answering garbage
    ├── ConflictError           an evaluation id re-posted with another body (HTTP 409)
    └── QueueFullError          too much work in flight (HTTP 429 + Retry-After)
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "ForestError",
    "IngestError",
    "InputError",
    "LLMError",
    "NotFoundError",
    "QueueFullError",
    "StoreBusyError",
    "StoreError",
]


class ForestError(Exception):
    """Base class of every error Forest raises on purpose."""


class StoreError(ForestError):
    """The incident store cannot be opened or read."""


class StoreBusyError(StoreError):
    """Investigations kept the store busy past the writer's drain timeout; retry later."""


class IngestError(ForestError):
    """A file could not be loaded into the store; nothing was written."""


class NotFoundError(ForestError):
    """An id given by the caller does not exist."""


class InputError(ForestError):
    """Input from a caller failed validation."""


class LLMError(ForestError):
    """The LLM endpoint failed in a way retries did not fix."""


class ConflictError(ForestError):
    """The evaluation id is already used for a different evaluation."""


class QueueFullError(ForestError):
    """Too much work in flight; the client should retry after a while."""
