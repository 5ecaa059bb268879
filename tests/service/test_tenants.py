"""Who may see what over HTTP: bearer tokens scoped to tenants (``FOREST_API_TOKENS``).

In ``small_store`` out-001..out-003 and out-005 are tenant t01's, out-004 and out-006 t02's.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from agent.service import create_app
from agent.service.tenants import EVERY_TENANT, TokenTable, token_digest
from agent.settings import Settings

OPS, T01, T02, ANY = "ops-" + "token", "t01-" + "token", "t02-" + "token", "star-" + "token"


def body(evaluation_id: str, output_id: str, claim: str = "false_positive") -> dict[str, str]:
    return {
        "evaluation_id": evaluation_id,
        "output_id": output_id,
        "source_kind": "human",
        "source_id": "rev-bob",
        "claim": claim,
        "created_at": "2025-03-10T12:12:00Z",
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def store(small_store: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(small_store, tmp_path / "tenants.duckdb"))


@pytest.fixture
def client(store: Path) -> Iterator[TestClient]:
    settings = Settings(
        store=store,
        api_token=SecretStr(OPS),
        api_tokens={sha(T01): ["t01"], sha(T02): ["t02"], sha(ANY): ["*"]},
    )
    with TestClient(create_app(settings)) as client:
        for evaluation_id, output_id in (("api-t01", "out-002"), ("api-t02", "out-004")):
            r = client.post(
                "/v1/evaluations", json=body(evaluation_id, output_id), headers=bearer(OPS)
            )
            assert r.status_code == 200
        yield client


def test_a_scoped_token_posts_and_reads_only_its_tenants_outputs(client: TestClient) -> None:
    t01, t02 = bearer(T01), bearer(T02)
    assert (
        client.post("/v1/evaluations", json=body("a-1", "out-003"), headers=t01).status_code == 200
    )
    assert client.get("/v1/verdicts/a-1", headers=t01).status_code == 200
    assert client.get("/v1/evaluations/a-1/status", headers=t01).json()["status"] == "decided"
    assert client.get("/v1/verdicts/api-t01", headers=t01).json()["output_id"] == "out-002"
    assert client.get("/v1/verdicts/api-t02", headers=t02).json()["output_id"] == "out-004"
    # another tenant's output, and an output the store does not hold: refused, nothing journaled
    for output_id in ("out-004", "out-006", "out-nope"):
        r = client.post("/v1/evaluations", json=body("a-2", output_id), headers=t01)
        assert r.status_code == 403, output_id
    assert client.get("/v1/evaluations/a-2/status", headers=bearer(OPS)).status_code == 404
    assert (
        client.post("/v1/evaluations", json=body("a-3", "out-002"), headers=t02).status_code == 403
    )


def test_other_tenants_ids_and_unknown_ids_get_the_same_403(client: TestClient) -> None:
    t01 = bearer(T01)
    answers = [
        client.get(path, headers=t01)
        for path in (
            "/v1/verdicts/api-t02",  # t02's evaluation, posted here
            "/v1/verdicts/ev-004",  # t02's evaluation in the store, no verdict yet
            "/v1/verdicts/nope",
            "/v1/evaluations/api-t02/status",
            "/v1/evaluations/ev-004/status",
            "/v1/evaluations/nope/status",
        )
    ]
    assert [a.status_code for a in answers] == [403] * len(answers)
    assert len({a.content for a in answers}) == 1
    assert "api-t02" not in answers[0].text
    # t02's id, with a t01 output: not a 409 that would tell the id is taken
    taken = client.post("/v1/evaluations", json=body("api-t02", "out-002"), headers=t01)
    assert taken.status_code == 403 and taken.content == answers[0].content
    # ... while the owner learns of the conflict
    conflict = body("api-t02", "out-004", claim="wrong_class")
    assert client.post("/v1/evaluations", json=conflict, headers=bearer(T02)).status_code == 409


def test_the_single_token_and_star_keep_every_tenant(client: TestClient) -> None:
    for token in (OPS, ANY):
        for evaluation_id in ("api-t01", "api-t02"):
            assert (
                client.get(f"/v1/verdicts/{evaluation_id}", headers=bearer(token)).status_code
                == 200
            )
        assert client.get("/v1/verdicts/nope", headers=bearer(token)).status_code == 404
        assert client.get("/metrics", headers=bearer(token)).status_code == 200
    # metrics count across tenants: not for a scoped token
    assert client.get("/metrics", headers=bearer(T01)).status_code == 403
    for wrong in ({}, bearer("nope"), bearer(sha(T01)), {"Authorization": f"Basic {T01}"}):
        assert client.get("/v1/verdicts/api-t01", headers=wrong).status_code == 401


def test_scoped_tokens_alone_turn_on_auth_and_are_stored_hashed(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREST_API_TOKENS", f'{{"{sha(T01).upper()}": ["t01"]}}')
    settings = Settings(store=store)
    assert settings.api_tokens == {token_digest(T01): ["t01"]}  # normalised to lower case
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/evaluations", json=body("h-1", "out-002")).status_code == 401
        r = client.post("/v1/evaluations", json=body("h-1", "out-002"), headers=bearer(T01))
        assert r.status_code == 200
    monkeypatch.delenv("FOREST_API_TOKENS")  # pydantic-settings merges env and init dicts
    with pytest.raises(ValidationError, match="sha256 hex digests"):
        Settings(store=store, api_tokens={T01: ["t01"]})  # the token itself: refused
    assert not TokenTable(Settings(store=store, api_tokens=None)).enabled
    table = TokenTable(Settings(store=store, api_tokens={sha(ANY): ["t01", "*"]}))
    assert table.lookup(ANY) is EVERY_TENANT and table.lookup(T01) is None
