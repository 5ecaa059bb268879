"""Library entry points: ``investigate(evaluation) -> Verdict`` and ``gate(evaluation)``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.graph import build_graph
from agent.llm import ChatModel, OpenAIChatModel
from agent.persist import append_verdicts
from agent.schemas import RECORDED, Evaluation, GateDecision, Verdict
from agent.settings import Settings
from agent.state import InvestigationContext
from tools.errors import InputError, NotFoundError
from tools.runs import BaselineCache, baseline_cache
from tools.store.connection import fetch_dicts, open_readonly, store_snapshot
from tools.store.loaders import memoized

__all__ = ["Investigator", "gate", "investigate", "to_gate_decision"]

_EVALUATION_SQL = """
SELECT evaluation_id, output_id, source_kind, source_id, claim, comment, created_at
FROM evaluations WHERE evaluation_id = ?
"""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Investigator:
    """Investigates evaluations against one store over one hardened read-only connection.

    Verdicts are not written here (DuckDB cannot hold the same file read-only and writable
    in one process): callers hand them to :func:`agent.persist.append_verdicts` once this
    investigator is closed. A long-lived caller shares one
    ``baselines`` cache across its investigators (see :mod:`tools.runs`).
    """

    def __init__(
        self,
        store: str | Path | None = None,
        *,
        settings: Settings | None = None,
        model: ChatModel | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        baselines: BaselineCache | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.store = Path(store or self.settings.store)
        self.clock = clock
        self.con = open_readonly(self.store)
        self.baselines = baselines
        if baselines is not None:
            baselines.check(self.con)
        # one pool per investigator: building a pool per investigation cost ~11 ms each
        self.pool = ThreadPoolExecutor(max_workers=self.settings.sweep_workers)
        self.snapshot = store_snapshot(self.con)
        if model is None and self.settings.reasoner == "llm":
            model = OpenAIChatModel(self.settings)
        self.model = model

    def __enter__(self) -> Investigator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.con.close()

    def load_evaluation(self, evaluation_id: str) -> Evaluation:
        rows = fetch_dicts(self.con.cursor(), _EVALUATION_SQL, [evaluation_id])
        if not rows:
            raise NotFoundError(f"evaluation {evaluation_id!r} not found in {self.store}")
        return Evaluation.model_validate(rows[0], context=RECORDED)

    def evaluation_ids(self) -> list[str]:
        return [
            r[0]
            for r in self.con.execute(
                "SELECT evaluation_id FROM evaluations ORDER BY evaluation_id"
            ).fetchall()
        ]

    def investigate(
        self,
        evaluation: Evaluation | dict[str, Any] | str,
        *,
        strict: bool = False,
    ) -> Verdict:
        """Investigate one evaluation.

        An unknown output or an output without lineage gives an ``inconclusive`` verdict
        with the reason in provenance; with ``strict`` it raises NotFoundError instead.
        """
        evaluation = self._coerce(evaluation)
        ctx = InvestigationContext(
            con=self.con,
            settings=self.settings,
            clock=self.clock,
            started_at=self.clock(),
            store_snapshot=self.snapshot,
            model=self.model,
            pool=self.pool,
        )
        # shared loaders query once per investigation
        with memoized(), baseline_cache(self.baselines):
            result = build_graph().invoke(
                {"evaluation": evaluation, "reasoner": "llm" if self.model else "rules"},
                context=ctx,
                config={"recursion_limit": self.settings.recursion_limit},
            )
        if strict and result.get("intake_error"):
            raise NotFoundError(result["intake_error"])
        return result["verdict"]

    def _coerce(self, evaluation: Evaluation | dict[str, Any] | str) -> Evaluation:
        if isinstance(evaluation, Evaluation):
            return evaluation
        if isinstance(evaluation, str):
            return self.load_evaluation(evaluation)
        try:
            return Evaluation.model_validate(evaluation)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise InputError(f"malformed evaluation: bad or missing {fields}") from exc


def investigate(
    evaluation: Evaluation | dict[str, Any] | str,
    *,
    store: str | Path | None = None,
    settings: Settings | None = None,
    model: ChatModel | None = None,
    persist: bool = True,
) -> Verdict:
    """Investigate one evaluation (object, dict or id in the store) and append its verdict.

    Raises NotFoundError for an unknown evaluation, an unknown output or an output without
    lineage; nothing is written then.
    """
    with Investigator(store, settings=settings, model=model) as inv:
        verdict = inv.investigate(evaluation, strict=True)
        path = inv.store
    if persist:
        append_verdicts(path, [verdict])
    return verdict


def to_gate_decision(verdict: Verdict) -> GateDecision:
    reason = f"{verdict.category} ({verdict.confidence:.2f}): {verdict.action.kind}"
    return GateDecision(
        evaluation_id=verdict.evaluation_id,
        decision=verdict.gate,
        verdict_id=verdict.verdict_id,
        category=verdict.category,
        confidence=verdict.confidence,
        reason=reason,
    )


def gate(
    evaluation: Evaluation | dict[str, Any] | str,
    *,
    store: str | Path | None = None,
    settings: Settings | None = None,
    model: ChatModel | None = None,
) -> GateDecision:
    """Investigate and say what the ingestion pipeline should do: train, hold or discard."""
    return to_gate_decision(investigate(evaluation, store=store, settings=settings, model=model))
