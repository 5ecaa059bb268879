"""The gatekeeper: accepts evaluations, decides them with the rules tier, escalates to the
LLM tier, answers Slack's requests, and is the store's single writer.

Backpressure: rules decisions in flight plus queued LLM investigations never exceed
``settings.serve_queue_size``; past it a POST gets 429 with ``Retry-After`` and nothing is
journaled. A flusher copies journaled evaluations, verdicts and overrides into the store
every ``settings.serve_flush_interval_s`` seconds, skipping rows already there (a crash
mid-flush never duplicates); between flushes other processes may open the store read-only.
A flush does not start while an LLM investigation holds the store (minutes) and waits at
most ``settings.serve_flush_drain_s`` for rules investigations; otherwise it tries again
later, so the gate never stalls behind it. ``forest_unflushed_rows`` in /metrics shows the backlog.
A row the store cannot take is set aside in the journal, not retried (/healthz says
"degraded", ``forest_flush_failed_rows`` counts them) and the rest are flushed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, NamedTuple

import duckdb

from agent.api import Investigator
from agent.llm import ChatModel
from agent.persist import verdict_row, write_evaluations, write_overrides, write_verdict_rows
from agent.schemas import RECORDED, Evaluation, Override, Verdict
from agent.service.journal import Journal, journal_path
from agent.service.metrics import Metrics
from agent.service.store_access import StoreAccess
from agent.settings import Settings
from tools.errors import ConflictError, ForestError, NotFoundError, QueueFullError, StoreBusyError
from tools.store.connection import open_writable

__all__ = ["Gatekeeper", "QueueFullError"]

log = logging.getLogger(__name__)


class Gatekeeper:
    """Accepts evaluations, decides them with the rules tier, escalates to the LLM tier."""

    def __init__(
        self,
        settings: Settings,
        *,
        model: ChatModel | None,
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
        self.queue_size = settings.serve_queue_size
        self.flush_interval = settings.serve_flush_interval_s
        self._rules = ThreadPoolExecutor(settings.serve_workers, thread_name_prefix="forest-rules")
        self._llm = ThreadPoolExecutor(settings.serve_llm_workers, thread_name_prefix="forest-llm")
        # re-entrant: a decision that finishes before add_done_callback runs its callback
        # (which takes this lock) at once, in the submitting thread that holds it
        self._lock = threading.RLock()
        # id -> (the body being decided, its future answer)
        self._inflight: dict[str, tuple[Evaluation, Future[dict[str, Any]]]] = {}
        self._llm_queued = 0
        self._stop = threading.Event()
        self.flush_error: str | None = None  # why the last periodic flush failed, if it did
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
        """The future answer; joins an in-flight one for the same id and body (a different
        body under that id fails with ConflictError, as once journaled); QueueFullError if
        full."""
        with self._lock:
            inflight = self._inflight.get(evaluation.evaluation_id)
            if inflight is not None:
                if inflight[0] == evaluation:
                    return inflight[1]
                conflict: Future[dict[str, Any]] = Future()
                conflict.set_exception(
                    ConflictError(
                        f"evaluation {evaluation.evaluation_id!r} is being decided with "
                        "another body"
                    )
                )
                return conflict
            if self.depth >= self.queue_size:
                raise QueueFullError(f"{self.depth} evaluations in flight")
            return self._submit_locked(evaluation)

    def _submit_locked(self, evaluation: Evaluation) -> Future[dict[str, Any]]:
        future = self._rules.submit(self._decide, evaluation)
        evaluation_id = evaluation.evaluation_id
        self._inflight[evaluation_id] = (evaluation, future)

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

    def output_tenant(self, output_id: str) -> str | None:
        """The tenant owning an output; None for an output the store does not hold."""
        return self._from_store("SELECT tenant_id FROM outputs WHERE output_id = ?", output_id)

    def evaluation_tenant(self, evaluation_id: str) -> str | None:
        """The tenant owning a known evaluation's output (the evaluation posted here or in
        the store); None for an unknown evaluation or an output the store does not hold."""
        evaluation = self.journal.find_evaluation(evaluation_id)
        if evaluation is not None:
            return self.output_tenant(evaluation.output_id)
        return self._from_store(
            "SELECT o.tenant_id FROM evaluations e JOIN outputs o ON o.output_id = e.output_id"
            " WHERE e.evaluation_id = ?",
            evaluation_id,
        )

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
        # never dies: a row the store cannot take is set aside by flush, anything else
        # (a broken store, a full disk) is retried, shown in /healthz and /metrics meanwhile
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush(drain_timeout=self.settings.serve_flush_drain_s)
            except StoreBusyError as exc:
                log.info("store busy, flushing later: %s", exc)
            except Exception as exc:
                self.flush_error = _describe(exc)
                log.warning(
                    "flushing into the store failed (will retry): %s",
                    self.flush_error,
                    exc_info=not isinstance(exc, ForestError),
                )
            else:
                self.flush_error = None

    def health(self) -> dict[str, Any]:
        """/healthz: "ok", or "degraded" while rows are set aside or flushing fails."""
        failed = self.journal.flush_failed_count()
        flushing = "failing" if self.flush_error else "ok"
        return {
            "status": "degraded" if failed or self.flush_error else "ok",
            "queue_depth": self.depth,
            "queue_capacity": self.queue_size,
            "flush": flushing,
            "flush_failed_rows": failed,
        }

    def flush(self, drain_timeout: float | None = None) -> int:
        """Copy journaled evaluations, verdicts and overrides into the store in one
        transaction; returns the rows written. StoreBusyError if investigations hold the
        store past ``drain_timeout`` seconds (nothing is lost: the journal keeps it all).

        A row the store cannot take (one that no longer parses, a timestamp it cannot hold,
        a value it refuses) is set aside in the journal (``Journal.flush_failures``,
        ``forest_flush_failed_rows``) and the others are written, one transaction each
        once a batch has failed. Any other error fails the whole flush, to be retried.
        """
        rows = self.journal.unflushed()
        overrides = self.journal.unflushed_overrides()
        if not rows and not overrides:
            return 0
        items: list[_Row] = []
        failed: list[tuple[str, int, str]] = []  # (kind, seq, error) for Journal.set_aside
        for seq, evaluation, verdict in rows:
            try:
                items.append(
                    _Row(
                        "verdict",
                        seq,
                        Evaluation.model_validate_json(evaluation, context=RECORDED),
                        verdict_row(verdict),  # the journal's JSON, not re-validated
                        None,
                    )
                )
            except Exception as exc:
                failed.append(("verdict", seq, _describe(exc)))
        for seq, override in overrides:
            try:
                items.append(
                    _Row("override", seq, None, None, Override.model_validate_json(override))
                )
            except Exception as exc:
                failed.append(("override", seq, _describe(exc)))
        written = 0
        if items:
            with self.store.writing(drain_timeout) as path:
                con = open_writable(path)
                try:
                    try:
                        written = _write(con, items)
                    except _ROW_ERRORS:  # one bad row fails them all: find it, write the rest
                        for item in items:
                            try:
                                written += _write(con, [item])
                            except _ROW_ERRORS as exc:
                                failed.append((item.kind, item.seq, _describe(exc)))
                finally:
                    con.close()
        if failed:
            for kind, seq, error in failed:
                log.error("set aside journal %s row %d the store cannot take: %s", kind, seq, error)
            self.journal.set_aside(failed)
        refused = {(kind, seq) for kind, seq, _ in failed}
        self._in_store.update(
            i.evaluation.evaluation_id
            for i in items
            if i.evaluation is not None and (i.kind, i.seq) not in refused
        )
        if rows:
            self.journal.mark_flushed(rows[-1][0])
        if overrides:
            self.journal.mark_overrides_flushed(overrides[-1][0])
        return written


# what a store raises for one row it cannot take (a Python conversion or a DuckDB value
# error); anything else (I/O, a broken store) is about the store, not the row
_ROW_ERRORS = (
    ValueError,
    TypeError,
    ArithmeticError,
    duckdb.DataError,
    duckdb.IntegrityError,
    duckdb.InvalidInputException,
)


class _Row(NamedTuple):
    """One journal row to flush: a verdict with its evaluation, or an override."""

    kind: Literal["verdict", "override"]
    seq: int
    evaluation: Evaluation | None
    verdict: tuple[Any, ...] | None  # a verdict_row
    override: Override | None


def _write(con: duckdb.DuckDBPyConnection, items: list[_Row]) -> int:
    """Write ``items`` in one transaction (rolled back on any error); the rows written."""
    evaluations = {i.evaluation.evaluation_id: i.evaluation for i in items if i.evaluation}
    verdicts = [i.verdict for i in items if i.verdict is not None]
    corrections = [i.override for i in items if i.override is not None]
    con.execute("BEGIN")
    try:
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
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # none left to roll back if COMMIT failed
            con.execute("ROLLBACK")
        raise
    return written


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
