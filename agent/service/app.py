"""The ingestion-gate HTTP service: ``create_app(settings) -> FastAPI`` (``forest serve``).

Routes: ``POST /v1/evaluations`` (the gate), ``GET /v1/verdicts/{evaluation_id}``,
``GET /v1/evaluations/{id}/status``, ``GET /healthz``, ``GET /metrics`` and, when Slack
is configured, ``POST /slack/events``. The work behind them is in
:class:`~agent.service.gatekeeper.Gatekeeper`.
"""

from __future__ import annotations

import asyncio
import secrets
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from agent.llm import ChatModel
from agent.schemas import Evaluation
from agent.service.gatekeeper import Gatekeeper
from agent.settings import Settings
from tools.errors import ConflictError, ForestError, QueueFullError

__all__ = ["create_app"]


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
        body = await asyncio.to_thread(gate.latest_verdict, evaluation_id)
        if body is None:
            raise HTTPException(404, f"no verdict for evaluation {evaluation_id!r}")
        return PlainTextResponse(body, media_type="application/json")

    @app.get("/v1/evaluations/{evaluation_id}/status", dependencies=secured)
    async def get_status(evaluation_id: str) -> dict[str, Any]:
        status = await asyncio.to_thread(gate.journal.status, evaluation_id)
        if status is None:
            raise HTTPException(404, f"evaluation {evaluation_id!r} was never posted")
        return status

    if settings.slack_configured:
        from agent.service.slack import mount_slack

        mount_slack(app, gate, settings)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "queue_depth": gate.depth, "queue_capacity": gate.queue_size}

    @app.get("/metrics", dependencies=secured)
    async def metrics() -> PlainTextResponse:
        unflushed = await asyncio.to_thread(gate.journal.unflushed_count)
        text = gate.metrics.render(gate.depth, gate.queue_size, unflushed)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return app
