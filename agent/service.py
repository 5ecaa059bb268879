"""The ingestion-gate HTTP service: ``create_app(settings) -> FastAPI`` (``forest serve``).

Durability and the single writer. DuckDB cannot hold one file read-only and writable in
the same process, and investigations need the hardened read-only connection. So:

- every accepted evaluation, its state and every verdict go first to an append-only SQLite
  journal next to the store (``<store stem>.intake.db``, WAL, ``synchronous=FULL``); a
  POST is answered only after its decision is committed there, and on start-up the
  service resumes whatever the journal holds as pending (rules decisions and queued LLM
  investigations);
- investigations run on read-only :class:`~agent.api.Investigator` connections, one per
  worker thread;
- a flusher copies journaled evaluations and verdicts into the store every
  ``flush_interval`` seconds: it waits for running investigations, closes the read-only
  connections, writes (skipping rows already there, so a crash mid-flush never duplicates)
  and lets readers reopen. The service is the store's only writer; between flushes other
  processes may open the store read-only.

Backpressure: rules decisions in flight plus queued LLM investigations never exceed
``queue_size``; past it a POST gets 429 with ``Retry-After`` and nothing is journaled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from agent.api import Investigator
from agent.llm import ChatModel
from agent.persist import append_verdicts
from agent.schemas import Evaluation, Verdict
from agent.settings import Settings
from tools.errors import ForestError
from tools.store import open_writable

__all__ = ["create_app", "journal_path"]

log = logging.getLogger(__name__)

_JOURNAL_DDL = """
CREATE TABLE IF NOT EXISTS intake (
    evaluation_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    received_at REAL NOT NULL,
    status TEXT NOT NULL,            -- pending | decided
    answer TEXT,                     -- the POST answer once decided
    llm TEXT NOT NULL DEFAULT 'none' -- none | queued | done | failed
);
CREATE TABLE IF NOT EXISTS verdicts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    verdict_id TEXT NOT NULL UNIQUE,
    evaluation_id TEXT NOT NULL,
    reasoner TEXT NOT NULL,
    body TEXT NOT NULL,
    flushed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS verdicts_evaluation ON verdicts (evaluation_id, seq);
CREATE INDEX IF NOT EXISTS verdicts_unflushed ON verdicts (flushed, seq);
"""
_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def journal_path(store: Path) -> Path:
    return store.with_name(f"{store.stem}.intake.db")


class ConflictError(ForestError):
    """The evaluation id is already journaled with a different body."""


class Journal:
    """The SQLite intake journal; one connection shared under a lock, every commit fsynced."""

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.executescript(_JOURNAL_DDL)
        self.lock = threading.Lock()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.con.execute("BEGIN IMMEDIATE")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self.lock:
            return self.con.execute(sql, params).fetchone()

    def accept(self, evaluation: Evaluation) -> dict[str, Any] | None:
        """Journal ``evaluation`` as pending; returns the stored answer if already decided."""
        body = evaluation.model_dump_json()
        with self._tx() as con:
            row = con.execute(
                "SELECT body, answer FROM intake WHERE evaluation_id = ?",
                (evaluation.evaluation_id,),
            ).fetchone()
            if row is None:
                con.execute(
                    "INSERT INTO intake (evaluation_id, body, received_at, status)"
                    " VALUES (?, ?, ?, 'pending')",
                    (evaluation.evaluation_id, body, time.time()),
                )
                return None
        if Evaluation.model_validate_json(row[0]) != evaluation:
            raise ConflictError(
                f"evaluation {evaluation.evaluation_id!r} was already posted with another body"
            )
        return json.loads(row[1]) if row[1] else None

    def decide(self, verdict: Verdict, answer: dict[str, Any], escalate: bool) -> None:
        with self._tx() as con:
            con.execute(
                "INSERT INTO verdicts (verdict_id, evaluation_id, reasoner, body)"
                " VALUES (?, ?, ?, ?)",
                (
                    verdict.verdict_id,
                    verdict.evaluation_id,
                    verdict.provenance.reasoner,
                    verdict.model_dump_json(),
                ),
            )
            con.execute(
                "UPDATE intake SET status = 'decided', answer = ?, llm = ? WHERE evaluation_id = ?",
                (json.dumps(answer), "queued" if escalate else "none", verdict.evaluation_id),
            )

    def finish_llm(self, evaluation_id: str, verdict: Verdict | None) -> bool:
        """Record the LLM verdict (or a failure) once; False if it was already recorded."""
        with self._tx() as con:
            done = con.execute(
                "UPDATE intake SET llm = ? WHERE evaluation_id = ? AND llm = 'queued'",
                ("done" if verdict else "failed", evaluation_id),
            ).rowcount
            if done and verdict is not None:
                con.execute(
                    "INSERT INTO verdicts (verdict_id, evaluation_id, reasoner, body)"
                    " VALUES (?, ?, 'llm', ?)",
                    (verdict.verdict_id, evaluation_id, verdict.model_dump_json()),
                )
        return bool(done)

    def evaluation(self, evaluation_id: str) -> Evaluation:
        row = self._one("SELECT body FROM intake WHERE evaluation_id = ?", (evaluation_id,))
        return Evaluation.model_validate_json(row[0])

    def status(self, evaluation_id: str) -> dict[str, Any] | None:
        row = self._one(
            "SELECT status, answer, llm, (SELECT count(*) FROM verdicts v"
            " WHERE v.evaluation_id = i.evaluation_id) FROM intake i WHERE evaluation_id = ?",
            (evaluation_id,),
        )
        if row is None:
            return None
        answer = json.loads(row[1]) if row[1] else {}
        return {
            "evaluation_id": evaluation_id,
            "status": row[0],
            "decision": answer.get("decision"),
            "llm_investigation": row[2],
            "verdicts": row[3],
        }

    def latest_verdict(self, evaluation_id: str) -> str | None:
        row = self._one(
            "SELECT body FROM verdicts WHERE evaluation_id = ? ORDER BY seq DESC LIMIT 1",
            (evaluation_id,),
        )
        return row[0] if row else None

    def pending(self) -> tuple[list[str], list[str]]:
        """Ids still awaiting a rules decision, and ids with a queued LLM investigation."""
        with self.lock:
            rows = self.con.execute(
                "SELECT evaluation_id, status, llm FROM intake"
                " WHERE status = 'pending' OR llm = 'queued' ORDER BY received_at"
            ).fetchall()
        return [r[0] for r in rows if r[1] == "pending"], [r[0] for r in rows if r[2] == "queued"]

    def unflushed(self, limit: int = 5000) -> list[tuple[int, str, str]]:
        """(seq, evaluation body, verdict body) of verdicts not yet copied into the store."""
        with self.lock:
            return self.con.execute(
                "SELECT v.seq, i.body, v.body FROM verdicts v JOIN intake i USING (evaluation_id)"
                " WHERE v.flushed = 0 ORDER BY v.seq LIMIT ?",
                (limit,),
            ).fetchall()

    def mark_flushed(self, up_to_seq: int) -> None:
        with self._tx() as con:
            con.execute(
                "UPDATE verdicts SET flushed = 1 WHERE flushed = 0 AND seq <= ?", (up_to_seq,)
            )

    def close(self) -> None:
        with self.lock:
            self.con.close()


class StoreGate:
    """Read-only investigators for the workers, and brief exclusive windows to write."""

    def __init__(self, store: Path, settings: Settings, model: ChatModel | None) -> None:
        self.store = store
        self.rules_settings = settings.model_copy(update={"reasoner": "rules"})
        self.llm_settings = settings.model_copy(update={"reasoner": "llm"})
        self.model = model
        self._cv = threading.Condition()
        self._readers = 0
        self._writing = False
        self._idle: dict[bool, list[Investigator]] = {False: [], True: []}
        self._idle[False].append(self._open(llm=False))  # fail fast on a bad store

    def _open(self, *, llm: bool) -> Investigator:
        if llm:
            return Investigator(self.store, settings=self.llm_settings, model=self.model)
        return Investigator(self.store, settings=self.rules_settings)

    @contextmanager
    def investigator(self, *, llm: bool) -> Iterator[Investigator]:
        with self._cv:
            while self._writing:
                self._cv.wait()
            self._readers += 1
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
                self._cv.notify_all()

    @contextmanager
    def writing(self) -> Iterator[Path]:
        """Wait for running investigations, close every read-only connection, then write."""
        with self._cv:
            while self._writing:
                self._cv.wait()
            self._writing = True
            while self._readers:
                self._cv.wait()
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


class Metrics:
    """Counters, a gauge and a histogram, rendered in the Prometheus text format by hand."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.decisions: Counter[str] = Counter()
        self.llm: Counter[str] = Counter()
        self.latency: dict[str, list[float]] = {}  # tier -> bucket counts + [sum, count]

    def request(self, method: str, route: str, status: int) -> None:
        with self.lock:
            self.requests[(method, route, status)] += 1

    def observe(self, tier: str, seconds: float) -> None:
        with self.lock:
            h = self.latency.setdefault(tier, [0.0] * (len(_BUCKETS) + 2))
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self, depth: int, capacity: int) -> str:
        out = [
            "# HELP forest_http_requests_total HTTP requests by method, route and status.",
            "# TYPE forest_http_requests_total counter",
        ]
        with self.lock:
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(
                    f'forest_http_requests_total{{method="{method}",route="{route}",'
                    f'status="{status}"}} {n}'
                )
            out += [
                "# HELP forest_gate_decisions_total Gate decisions by the rules tier.",
                "# TYPE forest_gate_decisions_total counter",
            ]
            for decision in ("train", "hold", "discard"):
                out.append(
                    f'forest_gate_decisions_total{{decision="{decision}"}} '
                    f"{self.decisions[decision]}"
                )
            out += [
                "# HELP forest_llm_investigations_total LLM investigations by result.",
                "# TYPE forest_llm_investigations_total counter",
            ]
            for result in ("done", "failed"):
                out.append(
                    f'forest_llm_investigations_total{{result="{result}"}} {self.llm[result]}'
                )
            out += [
                "# HELP forest_queue_depth Rules decisions in flight plus queued LLM work.",
                "# TYPE forest_queue_depth gauge",
                f"forest_queue_depth {depth}",
                "# HELP forest_queue_capacity Queue depth past which POSTs get 429.",
                "# TYPE forest_queue_capacity gauge",
                f"forest_queue_capacity {capacity}",
                "# HELP forest_investigation_seconds Investigation latency by tier.",
                "# TYPE forest_investigation_seconds histogram",
            ]
            for tier, h in sorted(self.latency.items()):
                name = "forest_investigation_seconds_bucket"
                for bound, count in zip(_BUCKETS, h, strict=False):
                    out.append(f'{name}{{tier="{tier}",le="{bound}"}} {count:g}')
                out.append(
                    f'forest_investigation_seconds_bucket{{tier="{tier}",le="+Inf"}} {h[-1]:g}'
                )
                out.append(f'forest_investigation_seconds_sum{{tier="{tier}"}} {h[-2]:.6f}')
                out.append(f'forest_investigation_seconds_count{{tier="{tier}"}} {h[-1]:g}')
        return "\n".join(out) + "\n"


class QueueFullError(ForestError):
    """Too much work in flight; the client should retry after a while."""


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
        self.store = StoreGate(Path(settings.store), settings, model)
        self.journal = Journal(journal_path(Path(settings.store)))
        self.metrics = Metrics()
        self.queue_size = queue_size
        self.flush_interval = flush_interval
        self._rules = ThreadPoolExecutor(workers, thread_name_prefix="forest-rules")
        self._llm = ThreadPoolExecutor(llm_workers, thread_name_prefix="forest-llm")
        self._lock = threading.Lock()
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
        answer = self.journal.accept(evaluation)
        if answer is not None:
            return answer
        started = time.perf_counter()
        with self.store.investigator(llm=False) as inv:
            verdict = inv.investigate(evaluation)
        self.metrics.observe("rules", time.perf_counter() - started)
        escalate = self.llm_enabled and (
            verdict.category == "inconclusive"
            or verdict.confidence < self.settings.train_confidence
        )
        answer = {
            "evaluation_id": evaluation.evaluation_id,
            "decision": verdict.gate,
            "verdict_id": verdict.verdict_id,
            "category": verdict.category,
            "confidence": verdict.confidence,
            "llm_investigation": "queued" if escalate else "none",
        }
        self.journal.decide(verdict, answer, escalate)
        with self.metrics.lock:
            self.metrics.decisions[verdict.gate] += 1
        if escalate:
            with self._lock:
                self._enqueue_llm_locked(evaluation.evaluation_id)
        return answer

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
            with self.metrics.lock:
                self.metrics.llm["done" if verdict else "failed"] += 1

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except ForestError as exc:
                log.warning("flushing verdicts into the store failed (will retry): %s", exc)

    def flush(self) -> int:
        """Copy journaled evaluations and verdicts into the store; returns verdicts written."""
        rows = self.journal.unflushed()
        if not rows:
            return 0
        evaluations = {
            e.evaluation_id: e for e in (Evaluation.model_validate_json(r[1]) for r in rows)
        }
        verdicts = [Verdict.model_validate_json(r[2]) for r in rows]
        with self.store.writing() as path:
            con = open_writable(path)
            try:
                con.executemany(
                    "INSERT OR IGNORE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            e.evaluation_id,
                            e.output_id,
                            e.source_kind,
                            e.source_id,
                            e.claim,
                            e.comment,
                            e.created_at.astimezone(dt.UTC).replace(tzinfo=None),
                        )
                        for e in evaluations.values()
                    ],
                )
                ids = [v.verdict_id for v in verdicts]
                there = {
                    r[0]
                    for r in con.execute(
                        "SELECT verdict_id FROM verdicts WHERE list_contains(?, verdict_id)", [ids]
                    ).fetchall()
                }
            finally:
                con.close()
            written = append_verdicts(path, [v for v in verdicts if v.verdict_id not in there])
        self.journal.mark_flushed(rows[-1][0])
        return written


def create_app(
    settings: Settings,
    *,
    model: ChatModel | None = None,
    workers: int = 2,
    llm_workers: int = 1,
    queue_size: int = 256,
    flush_interval: float = 5.0,
) -> FastAPI:
    """The gate service for ``settings.store``; ``model`` overrides the configured LLM.

    The LLM tier runs when a model is given or ``settings.llm_configured``; it is queued
    when the rules verdict is inconclusive or below ``settings.train_confidence``.
    """
    gate = Gatekeeper(
        settings,
        model=model,
        workers=workers,
        llm_workers=llm_workers,
        queue_size=queue_size,
        flush_interval=flush_interval,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        gate.start()
        yield
        await asyncio.to_thread(gate.stop)

    app = FastAPI(title="Forest gate", version="1", lifespan=lifespan)
    app.state.gate = gate
    token = settings.api_token.get_secret_value() if settings.api_token else None

    def authorize(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        route = request.scope.get("route")
        gate.metrics.request(
            request.method, getattr(route, "path", "unmatched"), response.status_code
        )
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        fields = sorted({".".join(str(p) for p in e["loc"] if p != "body") for e in errors})
        return JSONResponse(
            {
                "error": f"bad or missing fields: {', '.join(fields)}",
                "fields": fields,
                "detail": [{k: e[k] for k in ("loc", "msg", "type")} for e in errors],
            },
            status_code=422,
        )

    secured = [Depends(authorize)]

    @app.post("/v1/evaluations", dependencies=secured)
    async def post_evaluation(evaluation: Evaluation, request: Request) -> JSONResponse:
        try:
            future = gate.submit(evaluation)
        except QueueFullError as exc:
            return JSONResponse(
                {"error": f"queue full ({exc}); retry later"},
                status_code=429,
                headers={"Retry-After": "1"},
            )
        try:
            answer = await asyncio.wrap_future(future)
        except ConflictError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except ForestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        url = request.url_for("get_verdict", evaluation_id=evaluation.evaluation_id)
        return JSONResponse({**answer, "verdict_url": str(url)})

    @app.get("/v1/verdicts/{evaluation_id}", dependencies=secured, name="get_verdict")
    async def get_verdict(evaluation_id: str) -> PlainTextResponse:
        body = await asyncio.to_thread(gate.journal.latest_verdict, evaluation_id)
        if body is None:
            raise HTTPException(404, f"no verdict for evaluation {evaluation_id!r}")
        return PlainTextResponse(body, media_type="application/json")

    @app.get("/v1/evaluations/{evaluation_id}/status", dependencies=secured)
    async def get_status(evaluation_id: str) -> dict[str, Any]:
        status = await asyncio.to_thread(gate.journal.status, evaluation_id)
        if status is None:
            raise HTTPException(404, f"evaluation {evaluation_id!r} was never posted")
        return status

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "queue_depth": gate.depth, "queue_capacity": gate.queue_size}

    @app.get("/metrics", dependencies=secured)
    async def metrics() -> PlainTextResponse:
        text = gate.metrics.render(gate.depth, gate.queue_size)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return app
