"""The ingestion-gate HTTP service: ``create_app(settings) -> FastAPI`` (``forest serve``).

Routes: ``POST /v1/evaluations`` (the gate), ``GET /v1/verdicts/{evaluation_id}``,
``GET /v1/evaluations/{id}/status``, ``GET /healthz``, ``GET /metrics`` and, when Slack
is configured, ``POST /slack/events``. The work behind them is in
:class:`~agent.service.gatekeeper.Gatekeeper`.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer

from agent.llm import ChatModel
from agent.schemas import Evaluation, Verdict
from agent.service.errors import (
    BodyLimitMiddleware,
    error_response,
    error_responses,
    install_error_handlers,
)
from agent.service.gatekeeper import Gatekeeper
from agent.service.metrics import CONTENT_TYPE_LATEST
from agent.service.responses import EvaluationStatus, GateAnswer, Health
from agent.service.tenants import EVERY_TENANT, Access, TokenTable
from agent.settings import Settings
from tools.errors import ConflictError, ForestError, QueueFullError

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    model: ChatModel | None = None,
) -> FastAPI:
    """The gate service for ``settings.store``; ``model`` overrides the configured LLM.

    The LLM tier runs when a model is given or ``settings.llm_configured``; it is queued
    when the rules verdict is inconclusive or below ``settings.train_confidence``. Worker
    counts, queue size and flush timing are the ``settings.serve_*`` fields.
    """
    gate = Gatekeeper(settings, model=model)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        gate.start()
        yield
        await asyncio.to_thread(gate.stop)

    app = FastAPI(title="Forest gate", version="1", lifespan=lifespan)
    app.state.gate = gate
    tokens = TokenTable(settings)
    token = tokens.enabled  # whether requests must carry a bearer token
    # one error body (ErrorBody) for every error, documented in /openapi.json; added before
    # count_requests, so it runs inside it and 413s are counted too
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.serve_max_body_bytes)
    # what /openapi.json lists per route: 401 only when a token is required, 413 on all
    auth = ((401, 403) if settings.api_tokens else (401,)) if token else ()

    def authorize(request: Request) -> None:
        """Sets ``request.state.access``: the tenants the bearer token opens (all of them
        when no token is configured)."""
        access: Access | None = EVERY_TENANT
        if tokens.enabled:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            access = tokens.lookup(given) if scheme.lower() == "bearer" else None
        if access is None:
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )
        request.state.access = access

    def forbidden() -> HTTPException:
        # one body for another tenant's ids and for unknown ones: no hint which it is
        return HTTPException(403, "this token may not see that evaluation")

    def owns(access: Access, evaluation_id: str) -> bool:
        """Whether ``access`` covers the tenant of a known evaluation (blocks: a thread)."""
        return access.every_tenant or access.allows(gate.evaluation_tenant(evaluation_id))

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        route = request.scope.get("route")
        gate.metrics.request(
            request.method, getattr(route, "path_format", "unmatched"), response.status_code
        )
        return response

    secured = [Depends(authorize)]
    if token:  # declares the bearer scheme; authorize does the checking
        secured.append(Security(HTTPBearer(auto_error=False, scheme_name="bearer")))

    @app.post(
        "/v1/evaluations",
        dependencies=secured,
        responses={
            200: {"model": GateAnswer, "description": "the gate's decision"},
            **error_responses(400, *auth, 409, 413, 422, 429, 503),
        },
    )
    async def post_evaluation(evaluation: Evaluation, request: Request) -> JSONResponse:
        access: Access = request.state.access
        if not access.every_tenant:
            tenant = await asyncio.to_thread(gate.output_tenant, evaluation.output_id)
            if not access.allows(tenant):
                raise forbidden()
        try:
            future = gate.submit(evaluation)
        except QueueFullError as exc:
            return error_response(
                429, f"queue full ({exc}); retry later", headers={"Retry-After": "1"}
            )
        try:
            answer = await asyncio.wrap_future(future)
        except ConflictError as exc:
            # the id is taken: by another tenant's evaluation, this token learns nothing more
            if not await asyncio.to_thread(owns, access, evaluation.evaluation_id):
                raise forbidden() from None
            return error_response(409, str(exc))
        except ForestError as exc:
            return error_response(503, str(exc))
        # a post joins an in-flight one with the same id: the answer must be this tenant's
        if not await asyncio.to_thread(owns, access, evaluation.evaluation_id):
            raise forbidden()
        # ids journaled before the id rule may hold any character: encode them
        url = request.url_for("get_verdict", evaluation_id=quote(evaluation.evaluation_id, safe=""))
        return JSONResponse({**answer, "verdict_url": str(url)})

    # ":path": an id journaled before the id rule may hold a "/" (sent as %2F)
    @app.get(
        "/v1/verdicts/{evaluation_id:path}",
        dependencies=secured,
        name="get_verdict",
        responses={
            200: {"model": Verdict, "description": "the latest verdict"},
            **error_responses(*auth, 404, 413),
        },
    )
    async def get_verdict(evaluation_id: str, request: Request) -> PlainTextResponse:
        body = await asyncio.to_thread(gate.latest_verdict, evaluation_id)
        access: Access = request.state.access
        if not access.every_tenant:
            output_id = json.loads(body)["output_id"] if body else None
            tenant = await asyncio.to_thread(gate.output_tenant, output_id) if output_id else None
            if not access.allows(tenant):
                raise forbidden()
        if body is None:
            raise HTTPException(404, f"no verdict for evaluation {evaluation_id!r}")
        return PlainTextResponse(body, media_type="application/json")

    @app.get(
        "/v1/evaluations/{evaluation_id:path}/status",
        dependencies=secured,
        responses={
            200: {"model": EvaluationStatus, "description": "where the evaluation is"},
            **error_responses(*auth, 404, 413),
        },
    )
    async def get_status(evaluation_id: str, request: Request) -> dict[str, Any]:
        if not await asyncio.to_thread(owns, request.state.access, evaluation_id):
            raise forbidden()
        status = await asyncio.to_thread(gate.journal.status, evaluation_id)
        if status is None:
            raise HTTPException(404, f"evaluation {evaluation_id!r} was never posted")
        return status

    if settings.slack_configured:
        from agent.service.slack import mount_slack

        mount_slack(app, gate, settings)

    @app.get(
        "/healthz",
        responses={200: {"model": Health, "description": "ok | degraded"}, **error_responses(413)},
    )
    async def healthz() -> dict[str, Any]:
        return await asyncio.to_thread(gate.health)

    @app.get(
        "/metrics",
        dependencies=secured,
        response_class=PlainTextResponse,
        responses={200: {"description": "Prometheus text"}, **error_responses(*auth, 413)},
    )
    async def metrics(request: Request) -> Response:
        if not request.state.access.every_tenant:  # the counts span every tenant
            raise HTTPException(403, "metrics need a token for every tenant")

        def render() -> bytes:
            unflushed = gate.journal.unflushed_count()
            return gate.metrics.render(
                gate.depth,
                gate.queue_size,
                unflushed,
                flush_failed=gate.journal.flush_failed_count(),
                flush_failing=gate.flush_error is not None,
            )

        text = await asyncio.to_thread(render)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return app
