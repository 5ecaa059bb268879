"""The gate's one error body, the handlers that produce it, and the request size limit.

Every error the gate answers (4xx and 5xx, except on ``/slack/events``, which answers Slack
in Slack's own format) has the body :class:`ErrorBody`::

    {"status": 422, "code": "invalid_evaluation",
     "error": "bad or missing fields: claim (Input should be ...)", "fields": ["claim"]}

``install_error_handlers(app)`` makes FastAPI's and Starlette's own errors (validation,
unparseable bodies, unknown routes, wrong methods, uncaught exceptions) answer it and puts
it in ``/openapi.json``; :class:`BodyLimitMiddleware` answers 413 for bodies over
``settings.serve_max_body_bytes`` without reading them.
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BodyLimitMiddleware",
    "ErrorBody",
    "error_response",
    "error_responses",
    "install_error_handlers",
]

# the code each status gets unless the raiser names another
CODES = {
    400: "malformed_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_evaluation",
    429: "queue_full",
    500: "internal_error",
    503: "unavailable",
}
DESCRIPTIONS = {
    400: "the body is not JSON (malformed, not UTF-8, or nested too deeply)",
    401: "missing or wrong bearer token (only when FOREST_API_TOKEN(S) is set)",
    403: "the token is scoped to other tenants (FOREST_API_TOKENS): the evaluation, its "
    "output or its verdict is not theirs, or the id is unknown; /metrics needs every tenant",
    404: "no such evaluation, verdict or route",
    409: "the evaluation_id is already used for a different evaluation",
    413: "the body is over FOREST_SERVE_MAX_BODY_BYTES",
    422: "the body is JSON but not a valid evaluation; `fields` names the bad ones",
    429: "the queue is full; retry after `Retry-After` seconds",
    503: "the store or journal cannot be used right now",
}
_MAX_NAMED = 20  # fields described one by one in the message


class ErrorBody(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(extra="forbid")

    status: int = Field(description="the HTTP status, repeated")
    code: str = Field(
        description="stable machine-readable code: " + ", ".join(sorted(set(CODES.values())))
    )
    error: str = Field(description="what went wrong, for people")
    fields: list[str] = Field(
        default_factory=list, description="the bad or missing body fields (422), else empty"
    )


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    fields: Iterable[str] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(status=status, code=code or _code(status), error=message, fields=list(fields))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for ``statuses``, all with :class:`ErrorBody`."""
    return {s: {"model": ErrorBody, "description": _description(s)} for s in statuses}


def _description(status: int) -> str:
    if status in DESCRIPTIONS:
        return DESCRIPTIONS[status]
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _code(status: int) -> str:
    if status in CODES:
        return CODES[status]
    try:
        return http.HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return f"http_{status}"


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` past the limit; FastAPI passes HTTPExceptions through body
    parsing, so the app's handler answers it (the middleware answers it otherwise)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes (FOREST_SERVE_MAX_BODY_BYTES)")


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes``: up front from ``Content-Length``, without
    reading any of it; for a chunked body, as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(limit)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> JSONResponse:
    exc = BodyTooLarge(limit)
    # the rest of the body is never read: tell the client this connection is done
    return error_response(413, str(exc.detail), headers={"Connection": "close"})


def install_error_handlers(app: FastAPI) -> None:
    """Make every error ``app`` answers an :class:`ErrorBody` and document it so."""
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    _document(app)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        pos = bad_json["loc"][-1] if isinstance(bad_json["loc"][-1], int) else 0
        reason = (bad_json.get("ctx") or {}).get("error", "invalid JSON")
        return error_response(400, f"malformed JSON at {_where(exc.body, pos)}: {reason}")
    problems: dict[str, str] = {}
    for e in errors:
        field = ".".join(str(p) for p in e["loc"] if p != "body") or "body"
        problems.setdefault(field, str(e.get("msg", "invalid")))
    fields = sorted(problems)
    named = ", ".join(f"{f} ({problems[f]})" for f in fields[:_MAX_NAMED])
    more = f" and {len(fields) - _MAX_NAMED} more" if len(fields) > _MAX_NAMED else ""
    code = "invalid_evaluation" if request.url.path == "/v1/evaluations" else "invalid_request"
    return error_response(422, f"bad or missing fields: {named}{more}", code=code, fields=fields)


def _where(doc: Any, pos: int) -> str:
    if isinstance(doc, bytes | bytearray):
        doc = doc.decode("utf-8", "replace")
    if not isinstance(doc, str):
        return f"character {pos}"
    line = doc.count("\n", 0, pos) + 1
    column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column} (character {pos})"


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    cause = exc.__cause__
    if status == 400 and isinstance(cause, UnicodeDecodeError):
        message = (
            f"malformed JSON: the body is not valid UTF-8 ({cause.reason} at byte {cause.start})"
        )
    elif status == 400 and isinstance(cause, RecursionError):
        message = "malformed JSON: nested too deeply"
    elif status == 400:
        message = f"malformed JSON: {message}"
    elif status == 404 and message == "Not Found":
        message = f"no route {request.url.path}"
    elif status == 405 and message == "Method Not Allowed":
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(status, message, headers=exc.headers)


async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the exception and re-raises it after this answer is sent
    return error_response(500, f"internal error ({type(exc).__name__})")


def _document(app: FastAPI) -> None:
    """FastAPI documents its own 422 as ``HTTPValidationError`` and a text/plain route's
    errors as text/plain; the gate answers JSON :class:`ErrorBody`, so the document says that."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = generate()
        ours = {"$ref": "#/components/schemas/ErrorBody"}
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    content = str(answer.get("content"))
                    if status == "422" and "HTTPValidationError" in content:
                        answer["description"] = DESCRIPTIONS[422]
                    elif "ErrorBody" not in content:
                        continue
                    # a text/plain route's errors are JSON all the same
                    answer["content"] = {"application/json": {"schema": ours}}
        schemas = doc.get("components", {}).get("schemas", {})
        schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
