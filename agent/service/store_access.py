"""Read-only investigators for the service's workers, and brief exclusive windows to write.

DuckDB cannot hold one file read-only and writable in the same process, and investigations
need the hardened read-only connection; so a write waits for running investigations,
closes every idle read-only connection, writes, and lets readers reopen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.api import Investigator
from agent.llm import ChatModel
from agent.settings import Settings
from tools.errors import StoreBusyError
from tools.runs import BaselineCache

__all__ = ["StoreAccess"]


class StoreAccess:
    """Read-only investigators for the workers, and brief exclusive windows to write."""

    def __init__(self, store: Path, settings: Settings, model: ChatModel | None) -> None:
        self.store = store
        self.rules_settings = settings.model_copy(update={"reasoner": "rules"})
        self.llm_settings = settings.model_copy(update={"reasoner": "llm"})
        self.model = model
        self.baselines = BaselineCache()  # the runs table never changes under the gate
        self._cv = threading.Condition()
        self._readers = 0
        self._llm_readers = 0  # LLM investigations hold their connection for minutes
        self._writing = False
        self._idle: dict[bool, list[Investigator]] = {False: [], True: []}
        self._idle[False].append(self._open(llm=False))  # fail fast on a bad store

    def _open(self, *, llm: bool) -> Investigator:
        if llm:
            return Investigator(
                self.store, settings=self.llm_settings, model=self.model, baselines=self.baselines
            )
        return Investigator(self.store, settings=self.rules_settings, baselines=self.baselines)

    @contextmanager
    def investigator(self, *, llm: bool) -> Iterator[Investigator]:
        with self._cv:
            while self._writing:
                self._cv.wait()
            self._readers += 1
            self._llm_readers += llm
            pool = self._idle[llm]
            inv = pool.pop() if pool else None
        try:
            if inv is None:
                inv = self._open(llm=llm)
            yield inv
        finally:
            with self._cv:
                if inv is not None:
                    self._idle[llm].append(inv)
                self._readers -= 1
                self._llm_readers -= llm
                self._cv.notify_all()

    @contextmanager
    def writing(self, drain_timeout: float | None = None) -> Iterator[Path]:
        """Wait for running investigations, close every read-only connection, then write.

        New investigations wait meanwhile, so with ``drain_timeout`` the writer does not
        wait at all while an LLM investigation (minutes) holds the store, and gives up after
        ``drain_timeout`` seconds otherwise (StoreBusyError either way): the gate never
        stalls behind a write that cannot start.
        """
        with self._cv:
            while self._writing:
                self._cv.wait()
            if drain_timeout is not None and self._llm_readers:
                raise StoreBusyError(f"{self._llm_readers} LLM investigation(s) reading")
            self._writing = True
            drained = self._cv.wait_for(lambda: self._readers == 0, drain_timeout)
            if not drained:
                self._writing = False
                self._cv.notify_all()
                raise StoreBusyError(
                    f"{self._readers} investigation(s) still reading after {drain_timeout:g} s"
                )
            self._close_idle()
        try:
            yield self.store
        finally:
            with self._cv:
                self._writing = False
                self._cv.notify_all()

    def _close_idle(self) -> None:
        for pool in self._idle.values():
            for inv in pool:
                inv.close()
            pool.clear()

    def close(self) -> None:
        with self._cv:
            self._close_idle()
