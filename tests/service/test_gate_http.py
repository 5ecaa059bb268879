"""The gate's HTTP surface: the body size limit, the one error shape, and an OpenAPI
document that tells the truth (checked by property-based fuzzing with schemathesis)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent.service import create_app
from agent.service.errors import ErrorBody
from agent.settings import Settings

BODY = {
    "evaluation_id": "http-001",
    "output_id": "out-002",
    "source_kind": "human",
    "source_id": "rev-bob",
    "claim": "false_positive",
    "comment": "wrong!!",
    "created_at": "2025-03-10T12:12:00Z",
}
TOKEN = "s3cret-token"
MIB = 1024 * 1024


@pytest.fixture
def store(small_store: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(small_store, tmp_path / "gate.duckdb"))


def settings(store: Path, **kw: Any) -> Settings:
    return Settings(store=store, llm_structured_output="json_object", **kw)


def error_of(response: Any, status: int, code: str) -> ErrorBody:
    """The response's body as the one documented error shape (extra keys fail)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = ErrorBody.model_validate(response.json())
    assert body.status == status and body.code == code, body
    return body


# ---- 4. the request size limit ---------------------------------------------------------


async def _asgi_post(
    app: FastAPI, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, Any], int]:
    """POST ``chunks`` straight into the ASGI app; (status, JSON body, chunks it pulled)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {
                "type": "http.request",
                "body": chunks[pulled - 1],
                "more_body": pulled < len(chunks),
            }
        await asyncio.sleep(3600)  # a client that has sent everything waits for the answer
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/evaluations",
        "raw_path": b"/v1/evaluations",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), 30)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_a_body_over_the_declared_limit_gets_413_without_being_read(store: Path) -> None:
    app = create_app(settings(store))
    chunks = [b" " * (64 * 1024)] * 320  # 20 MiB that is never sent
    status, body, pulled = asyncio.run(
        _asgi_post(app, chunks, [(b"content-length", str(20 * MIB).encode())])
    )
    assert status == 413 and pulled == 0
    err = ErrorBody.model_validate(body)
    assert err.code == "body_too_large" and "1048576" in err.error


def test_a_chunked_body_is_cut_off_at_the_limit(store: Path) -> None:
    app = create_app(settings(store))
    chunks = [b" " * (64 * 1024)] * 320  # 20 MiB, no Content-Length (chunked)
    status, body, pulled = asyncio.run(_asgi_post(app, chunks, []))
    assert status == 413 and ErrorBody.model_validate(body).code == "body_too_large"
    assert pulled <= MIB // (64 * 1024) + 1  # stopped reading at the limit, not at 20 MiB


def test_the_limit_is_a_setting_and_bodies_under_it_pass(store: Path) -> None:
    assert Settings.model_fields["serve_max_body_bytes"].default == MIB
    with TestClient(create_app(settings(store, serve_max_body_bytes=1024))) as client:
        small = client.post("/v1/evaluations", json={**BODY, "comment": None})
        assert small.status_code == 200, small.text
        r = client.post("/v1/evaluations", json={**BODY, "comment": "x" * 1100})
        error_of(r, 413, "body_too_large")
        assert 'status="413"} 1' in client.get("/metrics").text  # counted, not lost
    with TestClient(create_app(settings(store))) as client:  # 1 MiB: a 9 KB comment is fine
        bigger = {**BODY, "evaluation_id": "http-002", "comment": "x" * 9000}
        assert client.post("/v1/evaluations", json=bigger).is_success


# ---- 5. one error shape ----------------------------------------------------------------


def test_malformed_json_says_so_with_its_position_not_as_a_field(store: Path) -> None:
    with TestClient(create_app(settings(store))) as client:
        r = client.post(
            "/v1/evaluations",
            content=b'{"evaluation_id": "x",\n "claim": }',
            headers={"content-type": "application/json"},
        )
        err = error_of(r, 400, "malformed_json")
        assert err.fields == []
        assert "malformed JSON" in err.error and "line 2, column 11" in err.error, err.error


def test_invalid_utf8_and_deep_nesting_get_the_same_shape(store: Path) -> None:
    with TestClient(create_app(settings(store))) as client:
        for content, words in (
            (b'{"evaluation_id": "\xff\xfe"}', "UTF-8"),
            (b"[" * 100_000, "nested"),
        ):
            r = client.post(
                "/v1/evaluations", content=content, headers={"content-type": "application/json"}
            )
            assert words in error_of(r, 400, "malformed_json").error


def test_every_4xx_has_the_one_documented_body(store: Path) -> None:
    app = create_app(settings(store, api_token=SecretStr(TOKEN)))
    auth = {"authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        error_of(client.get("/v1/verdicts/nope"), 401, "unauthorized")
        error_of(client.get("/v1/verdicts/nope", headers=auth), 404, "not_found")
        error_of(client.get("/v1/evaluations/nope/status", headers=auth), 404, "not_found")
        error_of(client.get("/no/such/route"), 404, "not_found")
        error_of(client.delete("/v1/evaluations", headers=auth), 405, "method_not_allowed")
        bad = {**BODY, "claim": "blurry", "output_id": ""}
        del bad["created_at"]
        err = error_of(
            client.post("/v1/evaluations", json=bad, headers=auth), 422, "invalid_evaluation"
        )
        assert err.fields == ["claim", "created_at", "output_id"]
        assert err.error.startswith("bad or missing fields: claim (")
        assert client.post("/v1/evaluations", json=BODY, headers=auth).status_code == 200
        other = {**BODY, "claim": "false_negative"}
        err = error_of(client.post("/v1/evaluations", json=other, headers=auth), 409, "conflict")
        assert "http-001" in err.error


def test_a_full_queue_answers_429_in_the_same_shape(store: Path) -> None:
    app = create_app(settings(store))
    with TestClient(app) as client:
        gate = app.state.gate
        gate.queue_size = 0  # nothing more fits
        r = client.post("/v1/evaluations", json=BODY)
        error_of(r, 429, "queue_full")
        assert r.headers["Retry-After"] == "1"


# ---- 6. the OpenAPI document ------------------------------------------------------------


def test_the_openapi_document_declares_every_status_the_gate_sends(store: Path) -> None:
    doc = create_app(settings(store, api_token=SecretStr(TOKEN))).openapi()
    paths = doc["paths"]
    error_ref = "#/components/schemas/ErrorBody"

    def statuses(path: str, method: str) -> set[str]:
        responses = paths[path][method]["responses"]
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": error_ref}, (path, status, schema)
        return set(responses)

    assert statuses("/v1/evaluations", "post") >= {
        "200", "400", "401", "409", "413", "422", "429", "503"
    }  # fmt: skip
    assert statuses("/v1/verdicts/{evaluation_id}", "get") >= {"200", "401", "404", "413"}
    assert statuses("/v1/evaluations/{evaluation_id}/status", "get") >= {"200", "401", "404"}
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert paths["/v1/verdicts/{evaluation_id}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"] == {"$ref": "#/components/schemas/Verdict"}
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert paths["/v1/evaluations"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in paths["/healthz"]["get"]
    assert "/slack/events" not in paths
    # without a token nothing asks for one
    open_doc = create_app(settings(store)).openapi()
    assert "security" not in open_doc["paths"]["/v1/evaluations"]["post"]
    assert "401" not in open_doc["paths"]["/v1/evaluations"]["post"]["responses"]


PROPERTY_CASES = 200
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def test_fuzzed_requests_get_no_5xx_and_only_documented_answers(
    store: Path, record_property: Any
) -> None:
    """Schemathesis generates valid and invalid requests for every documented operation
    from /openapi.json and runs them against the ASGI app (its lifespan started once):
    no 5xx, and every answer's status, content type and body are the documented ones."""
    app = create_app(settings(store, api_token=SecretStr(TOKEN)))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    assert "/slack/events" not in schema.raw_schema["paths"]  # Slack is not mounted here
    cases = st.one_of(
        schema.as_strategy(schemathesis.GenerationMode.POSITIVE),
        schema.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )
    seen: dict[str, int] = {}

    @seed(20250310)
    @hypothesis_settings(
        max_examples=PROPERTY_CASES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, authed=st.sampled_from([True, True, True, False]))
    def run(case: schemathesis.Case, authed: bool) -> None:
        headers = {"authorization": f"Bearer {TOKEN}"} if authed else {}
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        key = f"{case.method} {case.path} {response.status_code}"
        seen[key] = seen.get(key, 0) + 1

    run()
    total = sum(seen.values())
    record_property("property_cases", total)
    print(f"\nschemathesis: {total} cases run; by operation and status: {sorted(seen.items())}")
    assert total >= PROPERTY_CASES // 2
    statuses = {key.rsplit(" ", 1)[1] for key in seen}
    assert {"200", "401", "404", "422"} <= statuses, seen
