"""The service's SQLite intake journal: what was accepted, decided and corrected, durably.

Every accepted evaluation, its state, every verdict and every human override or agreement
go here first (``<store stem>.intake.db``, WAL, ``synchronous=FULL``); the gatekeeper
copies verdicts, evaluations and overrides into the DuckDB store later (see ``flush``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.schemas import RECORDED, Evaluation, Override, Verdict
from tools.errors import ConflictError, StoreError

__all__ = ["Journal", "journal_path", "journaled_overrides"]

_JOURNAL_DDL = """
CREATE TABLE IF NOT EXISTS intake (
    evaluation_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    received_at REAL NOT NULL,
    status TEXT NOT NULL,            -- pending | decided | recorded (investigated, not gated)
    answer TEXT,                     -- the POST answer once decided
    llm TEXT NOT NULL DEFAULT 'none' -- none | queued | done | failed
);
CREATE TABLE IF NOT EXISTS verdicts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    verdict_id TEXT NOT NULL UNIQUE,
    evaluation_id TEXT NOT NULL,
    reasoner TEXT NOT NULL,
    body TEXT NOT NULL,
    flushed INTEGER NOT NULL DEFAULT 0 -- 1 in the store, -1 set aside (flush_failures)
);
CREATE INDEX IF NOT EXISTS verdicts_evaluation ON verdicts (evaluation_id, seq);
CREATE INDEX IF NOT EXISTS verdicts_unflushed ON verdicts (flushed, seq);
CREATE TABLE IF NOT EXISTS overrides (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    override_id TEXT NOT NULL UNIQUE,
    evaluation_id TEXT NOT NULL,
    body TEXT NOT NULL,
    flushed INTEGER NOT NULL DEFAULT 0 -- 1 in the store, -1 set aside (flush_failures)
);
CREATE TABLE IF NOT EXISTS feedback (
    verdict_id TEXT NOT NULL,
    author TEXT NOT NULL,
    kind TEXT NOT NULL,              -- agree
    at REAL NOT NULL,
    PRIMARY KEY (verdict_id, author, kind)
);
CREATE TABLE IF NOT EXISTS flush_failures (
    kind TEXT NOT NULL,              -- verdict (with its evaluation) | override
    seq INTEGER NOT NULL,            -- its row in verdicts or overrides (set aside: flushed = -1)
    evaluation_id TEXT NOT NULL,
    error TEXT NOT NULL,             -- why the store could not take it
    at REAL NOT NULL,
    PRIMARY KEY (kind, seq)
);
CREATE TABLE IF NOT EXISTS seen_events (
    event_id TEXT PRIMARY KEY,       -- Slack event ids already handled (retry dedupe)
    seen_at REAL NOT NULL
);
"""


def _insert_verdict(con: sqlite3.Connection, verdict: Verdict) -> None:
    con.execute(
        "INSERT INTO verdicts (verdict_id, evaluation_id, reasoner, body) VALUES (?, ?, ?, ?)",
        (
            verdict.verdict_id,
            verdict.evaluation_id,
            verdict.provenance.reasoner,
            verdict.model_dump_json(),
        ),
    )


def journal_path(store: Path) -> Path:
    return store.with_name(f"{store.stem}.intake.db")


def journaled_overrides(store: Path, evaluation_id: str | None = None) -> list[Override]:
    """Overrides journaled beside ``store`` but not flushed into it yet (of one evaluation,
    if given), oldest first; read-only, and none if the service never ran. The
    ``agent.overrides.PendingOverrides`` reader `forest overrides` is given."""
    path = journal_path(store)
    if not path.is_file():
        return []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT body FROM overrides WHERE flushed = 0 AND (? IS NULL OR evaluation_id = ?)"
                " ORDER BY seq",
                (evaluation_id, evaluation_id),
            ).fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the service journal {path}: {exc}") from exc
    return [Override.model_validate_json(r[0]) for r in rows]


class Journal:
    """The SQLite intake journal; one connection shared under a lock, every commit fsynced."""

    def __init__(self, path: Path) -> None:
        try:
            self.con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=FULL")
            self.con.executescript(_JOURNAL_DDL)
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot use the intake journal {path}: {exc}. It may hold accepted "
                "evaluations not yet in the store: keep a copy before moving it aside."
            ) from exc
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
        if Evaluation.model_validate_json(row[0], context=RECORDED) != evaluation:
            raise ConflictError(
                f"evaluation {evaluation.evaluation_id!r} was already posted with another body"
            )
        return json.loads(row[1]) if row[1] else None

    def decide(self, verdict: Verdict, answer: dict[str, Any], escalate: bool) -> None:
        with self._tx() as con:
            _insert_verdict(con, verdict)
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
                _insert_verdict(con, verdict)
        return bool(done)

    def evaluation(self, evaluation_id: str) -> Evaluation:
        found = self.find_evaluation(evaluation_id)
        if found is None:
            raise KeyError(evaluation_id)
        return found

    def find_evaluation(self, evaluation_id: str) -> Evaluation | None:
        row = self._one("SELECT body FROM intake WHERE evaluation_id = ?", (evaluation_id,))
        return Evaluation.model_validate_json(row[0], context=RECORDED) if row else None

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

    def unflushed_count(self) -> int:
        """Verdicts and overrides journaled but not yet copied into the store."""
        row = self._one(
            "SELECT (SELECT count(*) FROM verdicts WHERE flushed = 0)"
            " + (SELECT count(*) FROM overrides WHERE flushed = 0)",
            (),
        )
        return int(row[0])

    def set_aside(self, failures: list[tuple[str, int, str]]) -> None:
        """Set aside rows the store could not take, as ``(kind, seq, error)`` with kind
        "verdict" or "override": they stay here (``flushed = -1``), are never flushed again
        and are listed by :meth:`flush_failures`. Call before ``mark_*flushed``."""
        with self._tx() as con:
            for kind, seq, error in failures:
                table = {"verdict": "verdicts", "override": "overrides"}[kind]
                con.execute(f"UPDATE {table} SET flushed = -1 WHERE seq = ?", (seq,))
                con.execute(
                    "INSERT OR REPLACE INTO flush_failures (kind, seq, evaluation_id, error, at)"
                    f" SELECT ?, seq, evaluation_id, ?, ? FROM {table} WHERE seq = ?",
                    (kind, error, time.time(), seq),
                )

    def flush_failures(self) -> list[dict[str, Any]]:
        """The rows set aside because the store could not take them, oldest first."""
        with self.lock:
            rows = self.con.execute(
                "SELECT kind, seq, evaluation_id, error, at FROM flush_failures ORDER BY at, seq"
            ).fetchall()
        keys = ("kind", "seq", "evaluation_id", "error", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def flush_failed_count(self) -> int:
        return int(self._one("SELECT count(*) FROM flush_failures", ())[0])

    def mark_flushed(self, up_to_seq: int) -> None:
        with self._tx() as con:
            con.execute(
                "UPDATE verdicts SET flushed = 1 WHERE flushed = 0 AND seq <= ?", (up_to_seq,)
            )

    def record(self, evaluation: Evaluation, verdict: Verdict) -> None:
        """Journal a verdict made outside the gate (Slack); the evaluation too if unknown."""
        with self._tx() as con:
            con.execute(
                "INSERT OR IGNORE INTO intake (evaluation_id, body, received_at, status)"
                " VALUES (?, ?, ?, 'recorded')",
                (evaluation.evaluation_id, evaluation.model_dump_json(), time.time()),
            )
            _insert_verdict(con, verdict)

    def verdict(self, verdict_id: str) -> Verdict | None:
        row = self._one("SELECT body FROM verdicts WHERE verdict_id = ?", (verdict_id,))
        return Verdict.model_validate_json(row[0]) if row else None

    def add_override(self, override: Override) -> bool:
        """Journal ``override``; False if its id was already journaled."""
        with self._tx() as con:
            return bool(
                con.execute(
                    "INSERT OR IGNORE INTO overrides (override_id, evaluation_id, body)"
                    " VALUES (?, ?, ?)",
                    (override.override_id, override.evaluation_id, override.model_dump_json()),
                ).rowcount
            )

    def add_agreement(self, verdict_id: str, author: str) -> bool:
        """Journal that ``author`` agreed with a verdict; False if they already had."""
        with self._tx() as con:
            return bool(
                con.execute(
                    "INSERT OR IGNORE INTO feedback (verdict_id, author, kind, at)"
                    " VALUES (?, ?, 'agree', ?)",
                    (verdict_id, author, time.time()),
                ).rowcount
            )

    def first_sighting(self, event_id: str) -> bool:
        """True the first time ``event_id`` is seen (Slack retries deliver it again)."""
        with self._tx() as con:
            return bool(
                con.execute(
                    "INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)",
                    (event_id, time.time()),
                ).rowcount
            )

    def unflushed_overrides(self, limit: int = 5000) -> list[tuple[int, str]]:
        with self.lock:
            return self.con.execute(
                "SELECT seq, body FROM overrides WHERE flushed = 0 ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()

    def mark_overrides_flushed(self, up_to_seq: int) -> None:
        with self._tx() as con:
            con.execute(
                "UPDATE overrides SET flushed = 1 WHERE flushed = 0 AND seq <= ?", (up_to_seq,)
            )

    def close(self) -> None:
        with self.lock:
            self.con.close()
