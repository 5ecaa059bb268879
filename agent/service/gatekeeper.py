"""The gatekeeper: accepts evaluations, decides them with the rules tier, escalates to the
LLM tier, answers Slack's requests, and is the store's single writer.

Backpressure: rules decisions in flight plus queued LLM investigations never exceed
``queue_size``; past it a POST gets 429 with ``Retry-After`` and nothing is journaled.
A flusher copies journaled evaluations, verdicts and overrides into the store every
``flush_interval`` seconds, skipping rows already there (a crash mid-flush never
duplicates); between flushes other processes may open the store read-only. A flush does
not start while an LLM investigation holds the store (minutes) and waits at most
``FLUSH_DRAIN_S`` for rules investigations; otherwise it tries again later, so the gate
never stalls behind it. ``forest_unflushed_rows`` in /metrics shows the backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from agent.api import Investigator
from agent.llm import ChatModel
from agent.persist import verdict_row, write_evaluations, write_overrides, write_verdict_rows
from agent.schemas import Evaluation, Override, Verdict
from agent.service.journal import Journal, journal_path
from agent.service.metrics import Metrics
from agent.service.store_access import StoreAccess
from agent.settings import Settings
from tools.errors import ConflictError, ForestError, NotFoundError, QueueFullError, StoreBusyError
from tools.store.connection import open_writable

__all__ = ["Gatekeeper", "QueueFullError"]

log = logging.getLogger(__name__)

# how long a periodic flush waits for running investigations before trying again later
FLUSH_DRAIN_S = 1.0


class Gatekeeper:
    """Accepts evaluations, decides them with the rules tier, escalates to the LLM tier."""

    def __init__(
        self,
        settings: Settings,
        *,
        model: ChatModel | None,
        workers: int,
        llm_workers: int,
        queue_size: int,
        flush_interval: float,
    ) -> None:
        self.settings = settings
        self.llm_enabled = model is not None or settings.llm_configured
        self.journal = Journal(journal_path(Path(settings.store)))
        try:
            self.store = StoreAccess(Path(settings.store), settings, model)
            with self.store.investigator(llm=False) as inv:
                # ids the store already holds (kept current by flush): most posts are new,
                # and a set lookup spares them a store query
                self._in_store = set(inv.evaluation_ids())
        except ForestError:
            self.journal.close()
            raise
        self.metrics = Metrics()
        self.queue_size = queue_size
        self.flush_interval = flush_interval
        self._rules = ThreadPoolExecutor(workers, thread_name_prefix="forest-rules")
        self._llm = ThreadPoolExecutor(llm_workers, thread_name_prefix="forest-llm")
        # re-entrant: a decision that finishes before add_done_callback runs its callback
        # (which takes this lock) at once, in the submitting thread that holds it
        self._lock = threading.RLock()
        self._inflight: dict[str, Future[dict[str, Any]]] = {}
        self._llm_queued = 0
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="forest-flush", daemon=True)

    @property
    def depth(self) -> int:
        return len(self._inflight) + self._llm_queued

    def start(self) -> None:
        pending, queued = self.journal.pending()
        with self._lock:
            for evaluation_id in pending:
                self._submit_locked(self.journal.evaluation(evaluation_id))
            for evaluation_id in queued:
                if self.llm_enabled:
                    self._enqueue_llm_locked(evaluation_id)
        self._flusher.start()

    def stop(self) -> None:
        self._stop.set()
        self._rules.shutdown(wait=True, cancel_futures=True)
        self._llm.shutdown(wait=True, cancel_futures=True)
        self._flusher.join()
        self.flush()
        self.store.close()
        self.journal.close()

    def submit(self, evaluation: Evaluation) -> Future[dict[str, Any]]:
        """The future answer; joins an in-flight one for the same id; QueueFullError if full."""
        with self._lock:
            future = self._inflight.get(evaluation.evaluation_id)
            if future is not None:
                return future
            if self.depth >= self.queue_size:
                raise QueueFullError(f"{self.depth} evaluations in flight")
            return self._submit_locked(evaluation)

    def _submit_locked(self, evaluation: Evaluation) -> Future[dict[str, Any]]:
        future = self._rules.submit(self._decide, evaluation)
        evaluation_id = evaluation.evaluation_id
        self._inflight[evaluation_id] = future

        def done(_: Future[dict[str, Any]]) -> None:
            with self._lock:
                self._inflight.pop(evaluation_id, None)

        future.add_done_callback(done)
        return future

    def _decide(self, evaluation: Evaluation) -> dict[str, Any]:
        with self.store.investigator(llm=False) as inv:
            self._check_against_store(inv, evaluation)
            answer = self.journal.accept(evaluation)
            if answer is not None:
                return answer
            started = time.perf_counter()
            verdict = inv.investigate(evaluation)
        self.metrics.observe("rules", time.perf_counter() - started)
        escalate = self.should_escalate(verdict)
        answer = {
            "evaluation_id": evaluation.evaluation_id,
            "decision": verdict.gate,
            "verdict_id": verdict.verdict_id,
            "category": verdict.category,
            "confidence": verdict.confidence,
            "reason": verdict.summary[:500],
            "llm_investigation": "queued" if escalate else "none",
        }
        self.journal.decide(verdict, answer, escalate)
        self.metrics.count("decision", verdict.gate)
        if escalate:
            with self._lock:
                self._enqueue_llm_locked(evaluation.evaluation_id)
        return answer

    def _check_against_store(self, inv: Investigator, evaluation: Evaluation) -> None:
        """ConflictError if the store holds another evaluation under the same id: its
        verdict would otherwise be flushed next to the wrong evaluation."""
        if evaluation.evaluation_id not in self._in_store:
            return
        try:
            stored = inv.load_evaluation(evaluation.evaluation_id)
        except NotFoundError:
            return
        if stored != evaluation:
            raise ConflictError(
                f"evaluation {evaluation.evaluation_id!r} is already in the store with another body"
            )

    def should_escalate(self, verdict: Verdict) -> bool:
        """Whether a rules verdict deserves an LLM investigation (when an LLM is set up).

        Not when the lineage could not be walked at all (an unknown output: no components
        assessed); the LLM tier would hit the same wall.
        """
        return (
            self.llm_enabled
            and bool(verdict.components)
            and (
                verdict.category == "inconclusive"
                or verdict.confidence < self.settings.train_confidence
            )
        )

    def _enqueue_llm_locked(self, evaluation_id: str) -> None:
        self._llm_queued += 1
        self._llm.submit(self._investigate_llm, evaluation_id)

    def _investigate_llm(self, evaluation_id: str) -> None:
        started = time.perf_counter()
        verdict: Verdict | None = None
        try:
            evaluation = self.journal.evaluation(evaluation_id)
            with self.store.investigator(llm=True) as inv:
                verdict = inv.investigate(evaluation)
        except ForestError as exc:
            log.warning("LLM investigation of %s failed: %s", evaluation_id, exc)
        finally:
            with self._lock:
                self._llm_queued -= 1
        if self._stop.is_set() and verdict is None:
            return  # shutting down: leave it queued in the journal for the next start
        self.metrics.observe("llm", time.perf_counter() - started)
        if self.journal.finish_llm(evaluation_id, verdict):
            self.metrics.count("llm", "done" if verdict else "failed")

    def investigate_now(self, evaluation_id: str, tier: Literal["rules", "llm"]) -> Verdict:
        """Investigate a known evaluation (posted here or in the store) and journal it.

        Raises NotFoundError for an unknown id. Blocks for as long as the tier takes.
        """
        started = time.perf_counter()
        evaluation = self.journal.find_evaluation(evaluation_id)
        with self.store.investigator(llm=tier == "llm") as inv:
            if evaluation is None:
                try:
                    evaluation = inv.load_evaluation(evaluation_id)
                except NotFoundError:  # its message names the store's path: not for Slack
                    raise NotFoundError(
                        f"evaluation {evaluation_id!r} was neither posted to the gate nor "
                        "loaded into the store"
                    ) from None
            verdict = inv.investigate(evaluation, strict=True)
        self.metrics.observe(tier, time.perf_counter() - started)
        self.journal.record(evaluation, verdict)
        return verdict

    def find_verdict(self, verdict_id: str) -> Verdict | None:
        """A verdict by id, from the journal or else the store."""
        verdict = self.journal.verdict(verdict_id)
        if verdict is not None:
            return verdict
        body = self._from_store("SELECT verdict FROM verdicts WHERE verdict_id = ?", verdict_id)
        return Verdict.model_validate_json(body) if body else None

    def latest_verdict(self, evaluation_id: str) -> str | None:
        """The newest verdict JSON for an evaluation: the journal's (this service is the
        store's only writer, so it holds the newest), else the store's (`forest
        investigate`, `forest demo` or an earlier deployment wrote it)."""
        return self.journal.latest_verdict(evaluation_id) or self._from_store(
            "SELECT verdict FROM verdicts WHERE evaluation_id = ?"
            " ORDER BY created_at DESC, verdict_id DESC LIMIT 1",
            evaluation_id,
        )

    def _from_store(self, sql: str, key: str) -> str | None:
        with self.store.investigator(llm=False) as inv:
            row = inv.con.execute(sql, [key]).fetchone()
        return str(row[0]) if row else None

    def override(self, override: Override) -> bool:
        """Journal a human's correction of a known verdict; False if already journaled."""
        verdict = self.find_verdict(override.verdict_id)
        if verdict is None or verdict.evaluation_id != override.evaluation_id:
            raise NotFoundError(
                f"no verdict {override.verdict_id!r} for evaluation {override.evaluation_id!r}"
            )
        added = self.journal.add_override(override)
        if added:
            self.metrics.count("feedback", "override")
        return added

    def agree(self, verdict_id: str, author: str) -> bool:
        """Journal that ``author`` agrees with a known verdict; False if they already had."""
        if self.find_verdict(verdict_id) is None:
            raise NotFoundError(f"no verdict {verdict_id!r}")
        added = self.journal.add_agreement(verdict_id, author)
        if added:
            self.metrics.count("feedback", "agree")
        return added

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush(drain_timeout=FLUSH_DRAIN_S)
            except StoreBusyError as exc:
                log.info("store busy, flushing later: %s", exc)
            except ForestError as exc:
                log.warning("flushing into the store failed (will retry): %s", exc)

    def flush(self, drain_timeout: float | None = None) -> int:
        """Copy journaled evaluations, verdicts and overrides into the store in one
        transaction; returns the rows written. StoreBusyError if investigations hold the
        store past ``drain_timeout`` seconds (nothing is lost: the journal keeps it all)."""
        rows = self.journal.unflushed()
        overrides = self.journal.unflushed_overrides()
        if not rows and not overrides:
            return 0
        evaluations = {
            e.evaluation_id: e for e in (Evaluation.model_validate_json(r[1]) for r in rows)
        }
        verdicts = [verdict_row(r[2]) for r in rows]  # the journal's JSON, not re-validated
        corrections = [Override.model_validate_json(r[1]) for r in overrides]
        with self.store.writing(drain_timeout) as path:
            con = open_writable(path)
            try:
                con.execute("BEGIN")
                write_evaluations(con, evaluations.values())
                ids = [v[0] for v in verdicts]
                there = {
                    r[0]
                    for r in con.execute(
                        "SELECT verdict_id FROM verdicts WHERE list_contains(?, verdict_id)", [ids]
                    ).fetchall()
                }
                written = write_verdict_rows(con, [v for v in verdicts if v[0] not in there])
                written += write_overrides(con, corrections)
                con.execute("COMMIT")
            finally:
                con.close()
        self._in_store.update(evaluations)
        if rows:
            self.journal.mark_flushed(rows[-1][0])
        if overrides:
            self.journal.mark_overrides_flushed(overrides[-1][0])
        return written
