"""How the gate fails: what it refuses at the door, a row the store cannot take, and two
bodies racing under one id."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from test_service import BODY, settings, store_verdicts

from agent.schemas import RECORDED, Evaluation, Override, Verdict
from agent.service import create_app

POISON = "0001-01-01T00:00:00+01:00"  # valid ISO 8601; in UTC it is before year 1


@pytest.fixture
def store(small_store: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(small_store, tmp_path / "gate.duckdb"))


def _until(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _gauge(metrics: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", metrics, re.M)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


def _post(client: TestClient, **fields: Any) -> Any:
    return client.post("/v1/evaluations", json={**BODY, **fields})


@pytest.mark.parametrize(
    "created_at",
    [
        POISON,
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:59:59-01:00",
        (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat(),
        1741608720,  # pydantic would take a number for Unix seconds
        "1741608720",
        True,
    ],
)
def test_a_created_at_outside_the_range_is_422_and_not_journaled(
    store: Path, created_at: Any
) -> None:
    with TestClient(create_app(settings(store))) as client:
        r = _post(client, created_at=created_at)
        assert r.status_code == 422 and r.json()["fields"] == ["created_at"], r.text
        assert client.get("/v1/evaluations/api-001/status").status_code == 404
        # the edges of the range are let in
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)).isoformat()
        assert _post(client, evaluation_id="api-soon", created_at=soon).status_code == 200
        epoch = "1970-01-01T00:00:00Z"
        assert _post(client, evaluation_id="api-epoch", created_at=epoch).status_code == 200
    assert {"api-soon", "api-epoch"} <= set(store_verdicts(store))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("evaluation_id", "team/a"),
        ("evaluation_id", "a b"),
        ("evaluation_id", "   "),
        ("evaluation_id", "a?b"),
        ("evaluation_id", "a%2Fb"),
        ("evaluation_id", ".."),
        ("evaluation_id", "ev-1\n"),
        ("evaluation_id", "é"),
        ("evaluation_id", "e" * 201),
        ("output_id", "  "),
        ("source_id", "\t"),
    ],
)
def test_an_unsafe_or_blank_id_is_422_and_not_journaled(
    store: Path, field: str, value: str
) -> None:
    with TestClient(create_app(settings(store))) as client:
        r = _post(client, **{field: value})
        assert r.status_code == 422 and r.json()["fields"] == [field], r.text
        gate = client.app.state.gate
        assert gate.journal.find_evaluation(value) is None
        assert gate.journal.find_evaluation("api-001") is None


def test_every_allowed_id_character_round_trips_through_the_verdict_url(store: Path) -> None:
    evaluation_id = "Team.A_b:c@d-0123456789"
    with TestClient(create_app(settings(store))) as client:
        answer = _post(client, evaluation_id=evaluation_id)
        assert answer.status_code == 200
        url = answer.json()["verdict_url"]
        assert url.endswith("/v1/verdicts/" + quote(evaluation_id, safe=""))
        verdict = client.get(url)
        assert verdict.status_code == 200 and verdict.json()["evaluation_id"] == evaluation_id


def test_an_odd_id_journaled_before_the_id_rule_stays_reachable(store: Path) -> None:
    """A journal written before ids were checked may hold any id; on restart the gate
    decides it, serves its status and verdict at the encoded URL, and flushes it."""
    odd = "team/a b#1?%"
    with TestClient(create_app(settings(store))) as client:
        old = Evaluation.model_validate({**BODY, "evaluation_id": odd}, context=RECORDED)
        assert client.app.state.gate.journal.accept(old) is None  # pending, undecided
    with TestClient(create_app(settings(store))) as client:  # decided on start
        path = quote(odd, safe="")
        _until(
            lambda: client.get(f"/v1/evaluations/{path}/status").json().get("status") == "decided",
            "the journaled evaluation to be decided",
        )
        status = client.get(f"/v1/evaluations/{path}/status").json()
        assert (status["evaluation_id"], status["verdicts"]) == (odd, 1)
        verdict = client.get(f"/v1/verdicts/{path}")
        assert verdict.status_code == 200 and verdict.json()["evaluation_id"] == odd
        assert _post(client, evaluation_id=odd).status_code == 422  # no new ones like it
    assert store_verdicts(store)[odd] == ["rules"]


def _inject(gate: Any, evaluation_id: str, created_at: str, verdict: Verdict, **bad: Any) -> None:
    """Journal an evaluation and a verdict for it (with ``bad`` fields), in one transaction
    and past the door's validation, as an older gate might have."""
    body = {**BODY, "evaluation_id": evaluation_id, "created_at": created_at}
    evaluation = Evaluation.model_validate(body, context=RECORDED)
    copy = {**verdict.model_dump(mode="json"), **bad}
    copy.update(verdict_id=f"vd-{evaluation_id}", evaluation_id=evaluation_id)
    with gate.journal._tx() as con:
        con.execute(
            "INSERT INTO intake (evaluation_id, body, received_at, status)"
            " VALUES (?, ?, ?, 'recorded')",
            (evaluation_id, evaluation.model_dump_json(), time.time()),
        )
        con.execute(
            "INSERT INTO verdicts (verdict_id, evaluation_id, reasoner, body)"
            " VALUES (?, ?, 'rules', ?)",
            (copy["verdict_id"], evaluation_id, json.dumps(copy)),
        )


def test_a_row_the_store_cannot_take_is_set_aside_and_the_rest_are_flushed(
    store: Path,
) -> None:
    config = settings(store, serve_flush_interval_s=0.05)
    with TestClient(create_app(config)) as client:
        gate = client.app.state.gate
        assert _post(client).status_code == 200
        verdict = Verdict.model_validate_json(client.get("/v1/verdicts/api-001").text)
        # a timestamp that overflows when converted to UTC for the store (OverflowError)
        _inject(gate, "poison-1", POISON, verdict)
        # a verdict whose confidence the store's DOUBLE column refuses (a DuckDB error)
        _inject(gate, "poison-2", BODY["created_at"], verdict, confidence="very")
        # an override the store cannot take either
        gate.journal.add_override(
            Override(
                override_id="ov-poison",
                verdict_id=verdict.verdict_id,
                evaluation_id="api-001",
                created_at=dt.datetime.fromisoformat(POISON),
                author="alice",
                category="sensor_fault",
                action="hardware_maintenance",
            )
        )
        assert _post(client, evaluation_id="api-002").status_code == 200  # after them
        _until(lambda: gate.journal.unflushed_count() == 0, "the flusher to drain the journal")
        assert gate._flusher.is_alive()
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded" and health.json()["flush_failed_rows"] == 3
        metrics = client.get("/metrics").text
        assert _gauge(metrics, "forest_flush_failed_rows") == 3
        assert _gauge(metrics, "forest_unflushed_rows") == 0
        failures = gate.journal.flush_failures()
        assert sorted((f["kind"], f["evaluation_id"]) for f in failures) == [
            ("override", "api-001"),
            ("verdict", "poison-1"),
            ("verdict", "poison-2"),
        ]
        errors = {f["evaluation_id"] + f["kind"]: f["error"] for f in failures}
        assert errors["poison-1verdict"].startswith("OverflowError"), errors
        assert errors["poison-2verdict"].startswith("ConversionException"), errors
        assert gate.journal.verdict("vd-poison-1") is not None  # kept in the journal
        assert client.get("/v1/verdicts/poison-1").status_code == 200
    flushed = store_verdicts(store)
    assert flushed["api-001"] == flushed["api-002"] == ["rules"]
    assert "poison-1" not in flushed and "poison-2" not in flushed
    # after a restart the flusher neither dies nor retries them, and still reports them
    with TestClient(create_app(config)) as client:
        gate = client.app.state.gate
        assert _post(client, evaluation_id="api-003").status_code == 200
        _until(lambda: gate.journal.unflushed_count() == 0, "the flusher after a restart")
        assert gate._flusher.is_alive()
        assert client.get("/healthz").json()["flush_failed_rows"] == 3
    assert store_verdicts(store)["api-003"] == ["rules"]


def test_a_failing_flush_keeps_the_flusher_alive_and_shows_in_healthz(store: Path) -> None:
    """An error that is about the store, not a row: nothing is set aside, it is retried."""
    with TestClient(create_app(settings(store, serve_flush_interval_s=0.05))) as client:
        gate = client.app.state.gate
        assert client.get("/healthz").json()["status"] == "ok"
        real = gate.journal.unflushed
        broken = threading.Event()
        broken.set()

        def unflushed(*args: Any) -> Any:
            if broken.is_set():
                raise RuntimeError("disk on fire")
            return real(*args)

        gate.journal.unflushed = unflushed
        assert _post(client).status_code == 200
        _until(lambda: client.get("/healthz").json()["flush"] == "failing", "a failed flush")
        assert client.get("/healthz").json()["status"] == "degraded"
        assert _gauge(client.get("/metrics").text, "forest_flush_failing") == 1
        broken.clear()
        _until(lambda: gate.journal.unflushed_count() == 0, "the retried flush")
        assert gate._flusher.is_alive()
        _until(lambda: client.get("/healthz").json()["status"] == "ok", "healthz to recover")
        assert gate.journal.flush_failed_count() == 0


def _hold_decisions(gate: Any) -> threading.Event:
    """Rules decisions wait for the returned event: posts stay in flight meanwhile."""
    release = threading.Event()
    decide = gate._decide

    def held(evaluation: Evaluation) -> dict[str, Any]:
        release.wait(30)
        return decide(evaluation)

    gate._decide = held
    return release


def test_a_different_body_under_an_id_in_flight_gets_409(store: Path) -> None:
    with TestClient(create_app(settings(store))) as client, ThreadPoolExecutor(3) as pool:
        gate = client.app.state.gate
        release = _hold_decisions(gate)
        try:
            first = pool.submit(_post, client)
            _until(lambda: gate.depth == 1, "the first post to be in flight")
            same = pool.submit(_post, client)
            other = pool.submit(_post, client, claim="wrong_class")
            wait([other], timeout=10)  # answered at once, without waiting for the first
            assert other.done(), "the conflicting post joined the first one's decision"
        finally:
            release.set()
        assert first.result(30).status_code == 200 and same.result(30).status_code == 200
        assert same.result().json() == first.result().json()
        r = other.result(30)
        assert r.status_code == 409 and "another body" in r.json()["error"], r.text
        # the journal holds the first body, and a later post of the other one is 409 too
        assert gate.journal.find_evaluation("api-001").claim == BODY["claim"]
        assert _post(client, claim="wrong_class").status_code == 409
        assert client.get("/v1/evaluations/api-001/status").json()["verdicts"] == 1
