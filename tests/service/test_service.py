"""The ingestion-gate service through the real app (TestClient) and a real `forest serve`."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from fakes import sensor_model
from fastapi.testclient import TestClient
from pydantic import SecretStr

from agent.schemas import Verdict
from agent.service import create_app
from agent.settings import Settings

BODY = {
    "evaluation_id": "api-001",
    "output_id": "out-002",
    "source_kind": "human",
    "source_id": "rev-bob",
    "claim": "false_positive",
    "comment": "wrong!!",
    "created_at": "2025-03-10T12:12:00Z",
}


@pytest.fixture
def store(small_store: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(small_store, tmp_path / "gate.duckdb"))


def settings(store: Path, **kw: Any) -> Settings:
    return Settings(store=store, llm_structured_output="json_object", **kw)


def store_verdicts(store: Path) -> dict[str, list[str]]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.execute("SELECT evaluation_id, reasoner FROM verdicts").fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for evaluation_id, reasoner in rows:
        out.setdefault(evaluation_id, []).append(reasoner)
    return out


def test_bad_bodies_get_422_naming_the_fields(store: Path) -> None:
    with TestClient(create_app(settings(store))) as client:
        bad = {**BODY, "claim": "blurry", "output_id": ""}
        del bad["created_at"]
        r = client.post("/v1/evaluations", json=bad)
        assert r.status_code == 422
        assert r.json()["fields"] == ["claim", "created_at", "output_id"]
        r = client.post("/v1/evaluations", json={**BODY, "extra": 1})
        assert r.status_code == 422 and r.json()["fields"] == ["extra"]
        r = client.post(
            "/v1/evaluations", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["code"] == "malformed_json"  # test_gate_http


def test_a_retry_gets_the_same_answer_and_no_second_verdict(store: Path) -> None:
    with TestClient(create_app(settings(store))) as client:
        first = client.post("/v1/evaluations", json=BODY)
        again = client.post("/v1/evaluations", json=BODY)
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        answer = first.json()
        assert (answer["decision"], answer["category"]) == ("hold", "sensor_fault")
        assert answer["verdict_url"].endswith("/v1/verdicts/api-001")
        other = client.post("/v1/evaluations", json={**BODY, "claim": "wrong_class"})
        assert other.status_code == 409
        status = client.get("/v1/evaluations/api-001/status").json()
        assert status == {
            "evaluation_id": "api-001",
            "status": "decided",
            "decision": "hold",
            "llm_investigation": "none",
            "verdicts": 1,
        }
        verdict = client.get("/v1/verdicts/api-001").json()
        assert verdict["verdict_id"] == answer["verdict_id"]
        assert verdict["provenance"]["reasoner"] == "rules"
        assert client.get("/v1/verdicts/nope").status_code == 404
        assert client.get("/v1/evaluations/nope/status").status_code == 404
    assert store_verdicts(store)["api-001"] == ["rules"]  # flushed once on shutdown


def test_bearer_token_is_required_when_set(store: Path) -> None:
    app = create_app(settings(store, api_token=SecretStr("s3cret")))
    with TestClient(app) as client:
        assert client.post("/v1/evaluations", json=BODY).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.get("/v1/verdicts/api-001", headers=wrong).status_code == 401
        assert client.get("/metrics").status_code == 401
        assert client.get("/healthz").status_code == 200
        ok = {"Authorization": "Bearer s3cret"}
        assert client.post("/v1/evaluations", json=BODY, headers=ok).status_code == 200


def _counter(metrics: str) -> int:
    pattern = r'^forest_llm_investigations_total\{result="done"\} (\d+)(?:\.0)?$'
    found = re.search(pattern, metrics, re.M)
    return int(found.group(1)) if found else 0


def test_a_full_queue_answers_429_with_retry_after(store: Path) -> None:
    release = threading.Event()
    # every rules verdict is below 0.99, so each one queues an LLM investigation
    app = create_app(
        settings(store, train_confidence=0.99, serve_queue_size=1), model=sensor_model(release)
    )
    with TestClient(app) as client:
        assert client.post("/v1/evaluations", json=BODY).json()["llm_investigation"] == "queued"
        r = client.post("/v1/evaluations", json={**BODY, "evaluation_id": "api-002"})
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert client.get("/v1/evaluations/api-002/status").status_code == 404  # not accepted
        assert "forest_queue_depth 1" in client.get("/metrics").text
        release.set()
        deadline = time.monotonic() + 30
        while client.get("/v1/evaluations/api-001/status").json()["llm_investigation"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (
            client.post("/v1/evaluations", json={**BODY, "evaluation_id": "api-002"}).status_code
            == 200
        )
        latest = client.get("/v1/verdicts/api-001").json()
        assert latest["provenance"]["reasoner"] == "llm" and latest["category"] == "sensor_fault"
        # counters move just after the journal commit the status shows; api-002's own LLM
        # investigation may have finished by now as well
        while (llm_done := _counter(metrics := client.get("/metrics").text)) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert llm_done in (1, 2)
    for line in (
        'forest_http_requests_total{method="POST",route="/v1/evaluations",status="429"} 1',
        'forest_gate_decisions_total{decision="hold"} 2',
        'forest_investigation_seconds_count{tier="rules"} 2',
    ):
        assert line in metrics


def test_a_queued_llm_investigation_resumes_after_a_crash_exactly_once(store: Path) -> None:
    stuck = threading.Event()
    crashed = create_app(
        settings(store, train_confidence=0.99, serve_flush_interval_s=3600),
        model=sensor_model(stuck),
    )
    client = TestClient(crashed).__enter__()  # never shut down cleanly: a crash
    assert client.post("/v1/evaluations", json=BODY).status_code == 200
    restarted = create_app(settings(store, train_confidence=0.99), model=sensor_model())
    with TestClient(restarted) as again:
        deadline = time.monotonic() + 30
        while again.get("/v1/evaluations/api-001/status").json()["llm_investigation"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # the crashed process's model answers late; its verdict must not be recorded
        stuck.set()
        old = crashed.state.gate
        old._llm.shutdown(wait=True)
        old.store.close()
        assert again.get("/v1/evaluations/api-001/status").json()["verdicts"] == 2
    assert sorted(store_verdicts(store)["api-001"]) == ["llm", "rules"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(store: Path, port: int) -> subprocess.Popen[bytes]:
    forest = Path(sys.executable).with_name("forest")
    proc = subprocess.Popen(
        [str(forest), "serve", "--store", str(store), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "forest serve did not come up"
        time.sleep(0.2)


def test_killing_the_server_mid_burst_loses_no_accepted_evaluation(store: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    bodies = [
        {**BODY, "evaluation_id": f"burst-{i:03d}", "output_id": f"out-00{1 + i % 6}"}
        for i in range(60)
    ]
    accepted: list[str] = []
    proc = _serve(store, port)

    def post(body: dict[str, Any]) -> None:
        try:
            r = httpx.post(f"{base}/v1/evaluations", json=body, timeout=10)
        except httpx.TransportError:
            return
        if r.is_success:
            accepted.append(body["evaluation_id"])

    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, b) for b in bodies]
            deadline = time.monotonic() + 60
            while len(accepted) < 10 and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            for f in futures:
                f.result()
    finally:
        proc.kill()
        proc.wait()
    assert 10 <= len(accepted) < len(bodies)
    proc = _serve(store, port)
    try:
        for evaluation_id in accepted:
            status = httpx.get(f"{base}/v1/evaluations/{evaluation_id}/status").json()
            assert (status["status"], status["verdicts"]) == ("decided", 1), status
        for body in bodies:  # clients retry whatever got no answer
            assert httpx.post(f"{base}/v1/evaluations", json=body, timeout=30).is_success
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    verdicts = store_verdicts(store)
    assert all(verdicts.get(b["evaluation_id"]) == ["rules"] for b in bodies)


def test_posting_every_demo_evaluation_gates_each_and_train_matches_the_verdict(
    tmp_path: Path,
) -> None:
    """The issue's acceptance: `forest serve` on the demo store, every evaluation posted."""
    from agent.api import Investigator
    from evals.truth import load_truth, score
    from evals.worlds import build_demo

    store = tmp_path / "demo.duckdb"
    build_demo(store, seed=7, size="small")
    with Investigator(store) as inv:
        bodies = [inv.load_evaluation(i).model_dump(mode="json") for i in inv.evaluation_ids()]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(store, port)
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda b: httpx.post(f"{base}/v1/evaluations", json=b, timeout=60), bodies)
            )
        assert [a.status_code for a in answers] == [200] * len(bodies)
        verdicts = []
        for body, answer in zip(bodies, answers, strict=True):
            decision = answer.json()
            assert decision["evaluation_id"] == body["evaluation_id"]
            assert decision["decision"] in ("train", "hold", "discard")
            verdict = httpx.get(decision["verdict_url"]).json()
            assert verdict["verdict_id"] == decision["verdict_id"]
            assert (decision["decision"] == "train") == verdict["route_to_training"]
            verdicts.append(Verdict.model_validate(verdict))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert len(bodies) >= 65
    decisions = Counter(v.gate for v in verdicts)
    assert decisions["train"] > 0 and decisions["hold"] + decisions["discard"] > 0
    result = score(verdicts, load_truth(store)).as_dict()
    assert result["training_precision"] >= 0.97 and result["training_recall"] > 0.5
    flushed = store_verdicts(store)
    assert all(flushed.get(b["evaluation_id"]) == ["rules"] for b in bodies)


def test_the_gate_bench_measures_a_real_server(store: Path) -> None:
    from evals.benchmarks.gate import run_gate_bench

    report = run_gate_bench(store, seconds=2, concurrency=2)
    assert report["evaluations"] > 0 and set(report["statuses"]) == {"200"}
    assert report["evaluations_per_s"] == pytest.approx(
        report["evaluations"] / report["seconds"], rel=0.05
    )
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"]
    # each POST is about another output until all had a turn; the CPU it cost is counted
    outputs = duckdb.connect(str(store), read_only=True)
    try:
        row = outputs.execute("SELECT count(*) FROM outputs").fetchone()
    finally:
        outputs.close()
    assert row is not None
    assert report["distinct_outputs"] == min(report["evaluations"], row[0])
    assert report["server_cpu_ms_per_evaluation"] > 0
    assert report["client_cpu_ms_per_evaluation"] > 0
    assert report["cpu_ceiling_per_s"] > 0


def test_the_gate_bench_bodies_follow_the_store_and_can_miss_it(store: Path) -> None:
    from evals.benchmarks.gate import _bodies
    from tools.store.connection import open_readonly

    con = open_readonly(store)
    try:
        outputs = dict(con.execute("SELECT output_id, captured_at FROM outputs").fetchall())
    finally:
        con.close()
    bodies = _bodies(store, unknown_outputs=False)
    assert sorted(b["output_id"] for b in bodies) == sorted(outputs)
    for body in bodies:  # reviewed after the output was captured, like the store's own
        created = dt.datetime.fromisoformat(body["created_at"]).replace(tzinfo=None)
        assert created >= outputs[body["output_id"]]
    unknown = _bodies(store, unknown_outputs=True)
    assert len(unknown) == len(bodies) and not {b["output_id"] for b in unknown} & set(outputs)


def test_a_slow_llm_investigation_does_not_stall_the_gate(store: Path) -> None:
    """An LLM investigation holds a store connection for minutes; periodic flushes must not
    make every rules decision wait behind it."""
    config = settings(store, train_confidence=0.99, serve_flush_interval_s=0.1)
    FLUSH_DRAIN_S = config.serve_flush_drain_s

    release = threading.Event()
    app = create_app(config, model=sensor_model(release))
    posts = ThreadPoolExecutor(1)
    try:
        with TestClient(app) as client:
            assert client.post("/v1/evaluations", json=BODY).json()["llm_investigation"] == "queued"
            time.sleep(3 * 0.1)  # flush attempts begin while the model holds its connection
            for i in range(4):
                body = {**BODY, "evaluation_id": f"api-1{i}"}
                answer = posts.submit(client.post, "/v1/evaluations", json=body)
                assert answer.result(timeout=FLUSH_DRAIN_S + 10).status_code == 200
            metrics = client.get("/metrics").text
            backlog = re.search(r"^forest_unflushed_rows (\d+)(?:\.0)?$", metrics, re.M)
            # the four decided while the model held the store could not be flushed yet
            assert backlog is not None and int(backlog.group(1)) >= 4
            release.set()
            deadline = time.monotonic() + 30
            while client.get("/v1/evaluations/api-001/status").json()["verdicts"] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        release.set()
        posts.shutdown()
    verdicts = store_verdicts(store)
    assert sorted(verdicts["api-001"]) == ["llm", "rules"]
    assert all("rules" in verdicts[f"api-1{i}"] for i in range(4))


def test_an_unknown_output_is_held_with_the_reason_and_not_sent_to_the_llm(store: Path) -> None:
    app = create_app(settings(store, train_confidence=0.99), model=sensor_model())
    with TestClient(app) as client:
        r = client.post("/v1/evaluations", json={**BODY, "output_id": "out-nope"}).json()
        known = client.post("/v1/evaluations", json={**BODY, "evaluation_id": "api-9"}).json()
    assert (r["decision"], r["category"], r["llm_investigation"]) == (
        "hold",
        "inconclusive",
        "none",
    )
    assert r["reason"].startswith("Not investigated: output 'out-nope'")
    assert known["llm_investigation"] == "queued" and known["reason"]


def test_verdicts_written_before_the_service_started_are_served(store: Path) -> None:
    from agent.api import investigate

    earlier = investigate("ev-002", store=store, settings=settings(store))  # appends it
    with TestClient(create_app(settings(store))) as client:
        served = client.get("/v1/verdicts/ev-002")
        assert served.status_code == 200 and served.json()["verdict_id"] == earlier.verdict_id
        assert client.get("/v1/evaluations/ev-002/status").status_code == 404  # never posted
        assert client.get("/v1/verdicts/ev-404").status_code == 404
        same = {**BODY, "evaluation_id": "ev-002"}  # the store's ev-002, field for field
        other = client.post("/v1/evaluations", json={**same, "claim": "wrong_class"})
        assert other.status_code == 409 and "already in the store" in other.json()["error"]
        assert client.post("/v1/evaluations", json=same).status_code == 200


def test_a_corrupt_journal_is_a_clear_error_and_is_left_alone(store: Path) -> None:
    from agent.service import journal_path
    from tools.errors import StoreError

    journal = journal_path(store)
    garbage = b"not a sqlite file" * 100
    journal.write_bytes(garbage)
    with pytest.raises(StoreError, match="cannot use the intake journal"):
        create_app(settings(store))
    forest = Path(sys.executable).with_name("forest")
    argv = [str(forest), "serve", "--store", str(store), "--port", str(_free_port())]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot use the intake journal {journal}")
    assert journal.read_bytes() == garbage


def test_a_decision_finished_before_its_callback_is_registered_does_not_deadlock(
    store: Path,
) -> None:
    """A fast decision (a 409) can complete before submit registers its done callback;
    the callback then runs at once in the submitting thread, which holds the lock."""
    from concurrent.futures import Future

    class Immediate:
        def submit(self, fn: Any, *args: Any) -> Future[Any]:
            future: Future[Any] = Future()
            try:
                future.set_result(fn(*args))
            except Exception as exc:
                future.set_exception(exc)
            return future

        def shutdown(self, **_: Any) -> None:
            pass

    with TestClient(create_app(settings(store))) as client:
        gate = client.app.state.gate
        gate._rules = Immediate()
        conflicting = {**BODY, "evaluation_id": "ev-002", "claim": "wrong_class"}
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(client.post, "/v1/evaluations", json=conflicting)
            assert answer.result(timeout=20).status_code == 409
        assert gate.depth == 0
