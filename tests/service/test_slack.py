"""The Slack bot through the real app: signed requests in, a fake Slack Web API recording out."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qsl, urlencode

import duckdb
import httpx
import pytest
import yaml
from fakes import sensor_model
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from agent.schemas import (
    RECORDED,
    ActionKind,
    ActionPlan,
    Category,
    Evaluation,
    Evidence,
    Override,
    Verdict,
)
from agent.service import create_app
from agent.service.slack import parse_request
from agent.service.slack_blocks import (
    override_message,
    override_modal,
    verdict_message,
)
from agent.service.slack_limits import check_block_kit_limits
from agent.settings import Settings
from tools.errors import StoreError

TOKEN = "xoxb-" + "test-token"
SIGNING = "signing-" + "secret-for-tests"
PUBLIC = "https://forest.example.com/"
FORM_KIND = "application/x-www-form-urlencoded"
MANIFEST = Path(__file__).resolve().parents[2] / "agent" / "service" / "slack_manifest.yaml"


class FakeSlack:
    """A local Slack Web API: records every call, answers ``ok`` with increasing ``ts``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.tokens: set[str] = set()
        self.fail_channels: dict[str, str] = {}
        self.lock = threading.Lock()
        self._ts = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        serve = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        serve.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                if "json" in (self.headers.get("content-type") or ""):
                    body = json.loads(raw or "{}")
                else:
                    body = dict(parse_qsl(raw))
                token = self.headers.get("authorization", "").removeprefix("Bearer ")
                answer = fake.record(self.path.removeprefix("/api/").lstrip("/"), body, token)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def record(self, method: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        if isinstance(body.get("blocks"), str):
            body["blocks"] = json.loads(body["blocks"])
        with self.lock:
            ts = f"{1700000000 + next(self._ts)}.000100"
            self.calls.append((method, {**body, "answered_ts": ts}))
            if token:
                self.tokens.add(token)
        if method == "auth.test":
            return {"ok": True, "user_id": "UFOREST", "bot_id": "BFOREST", "team_id": "T1"}
        error = self.fail_channels.get(body.get("channel", ""))
        if error:
            return {"ok": False, "error": error}
        return {"ok": True, "ts": ts, "message_ts": ts, "channel": body.get("channel")}

    def posted(self, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        with self.lock:
            return [body for m, body in self.calls if m == method]

    def wait_for(
        self,
        count: int,
        method: str = "chat.postMessage",
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> list[dict[str, Any]]:
        """The ``method`` calls matching ``where`` once there are ``count`` (lazy listeners
        run in threads)."""
        deadline = time.monotonic() + 20
        while True:
            found = [b for b in self.posted(method) if where(b)]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{method}: {len(found)} of {count}: {found}"
            time.sleep(0.02)


@dataclass
class Slack:
    """The app under test and helpers to send it what Slack would send, signed."""

    client: TestClient
    api: FakeSlack
    app: FastAPI

    def send(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = SIGNING,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
        signed = {
            "content-type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or "",
        }
        return self.client.post(
            "/slack/events", content=body.encode(), headers={**signed, **(headers or {})}
        )

    def command(self, text: str, *, channel: str = "C1", user: str = "U1") -> httpx.Response:
        return self.send(self.command_form(text, channel, user), FORM_KIND)

    def command_form(self, text: str, channel: str = "C1", user: str = "U1") -> str:
        form = {
            "command": "/forest",
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "team_id": "T1",
            "response_url": f"{self.api.url}/respond/1",
            "trigger_id": "trigger-cmd",
        }
        return urlencode(form)

    def mention(
        self,
        text: str,
        *,
        ts: str,
        thread_ts: str | None = None,
        event_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        event = {"type": "app_mention", "user": "U1", "text": text, "ts": ts, "channel": "C1"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        body = {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event_id": event_id or f"Ev{ts}",
            "event_time": int(time.time()),
            "event": event,
        }
        return self.send(json.dumps(body), "application/json", headers=headers)

    def interact(self, payload: dict[str, Any]) -> httpx.Response:
        form = urlencode({"payload": json.dumps(payload)})
        return self.send(form, FORM_KIND)

    def click(self, action_id: str, verdict_post: dict[str, Any], user: str = "U2") -> None:
        value = _button(verdict_post, action_id)["value"]
        message = {"ts": "1800000000.000100", "thread_ts": verdict_post["thread_ts"]}
        payload = {
            "type": "block_actions",
            "team": {"id": "T1"},
            "user": {"id": user},
            "api_app_id": "A1",
            "trigger_id": f"trigger-{action_id}",
            "container": {"type": "message", "channel_id": verdict_post["channel"]},
            "channel": {"id": verdict_post["channel"]},
            "message": message,
            "actions": [{"type": "button", "action_id": action_id, "value": value}],
        }
        assert self.interact(payload).status_code == 200


@pytest.fixture
def api() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.server.shutdown()
    for method, body in fake.calls:  # every payload any test made Forest send
        if method in ("chat.postMessage", "chat.postEphemeral"):
            assert check_block_kit_limits(body) == [], body
        if method == "views.open":
            assert check_block_kit_limits(body["view"]) == [], body


@pytest.fixture
def store(small_store: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(small_store, tmp_path / "slack.duckdb"))


@contextmanager
def running(store: Path, api: FakeSlack, model: Any = None, **settings: Any) -> Iterator[Slack]:
    config = Settings(
        store=store,
        slack_bot_token=SecretStr(TOKEN),
        slack_signing_secret=SecretStr(SIGNING),
        slack_api_url=f"{api.url}/api/",
        public_url=PUBLIC,
        llm_structured_output="json_object",
        serve_flush_interval_s=3600,
        **settings,
    )
    app = create_app(config, model=model)
    with TestClient(app) as client:
        yield Slack(client, api, app)


@pytest.fixture
def slack(store: Path, api: FakeSlack) -> Iterator[Slack]:
    with running(store, api) as app:
        yield app


def _button(post: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in post["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no {action_id} button in {post}")


def _texts(payload: Any) -> list[str]:
    """Every string under a ``text`` key, and the top-level fallback."""
    if isinstance(payload, dict):
        own = [payload["text"]] if isinstance(payload.get("text"), str) else []
        return own + [t for v in payload.values() for t in _texts(v)]
    if isinstance(payload, list):
        return [t for v in payload for t in _texts(v)]
    return []


def _investigated(slack: Slack, evaluation_id: str, count: int = 2) -> list[dict[str, Any]]:
    """Run ``/forest investigate`` and return the messages posted (parent first)."""
    assert slack.command(f"investigate {evaluation_id}").status_code == 200
    return slack.api.wait_for(count)


def test_the_slash_command_acks_at_once_then_posts_the_verdict_in_a_thread(slack: Slack) -> None:
    started = time.monotonic()
    r = slack.command("investigate ev-002")
    assert time.monotonic() - started < 3
    assert r.status_code == 200
    assert r.json()["response_type"] == "ephemeral"
    assert "Investigating `ev-002`" in r.json()["text"]
    parent, verdict = slack.api.wait_for(2)
    assert parent["channel"] == "C1" and "thread_ts" not in parent
    assert parent["text"] == "Forest investigation of `ev-002` requested by <@U1>"
    assert verdict["channel"] == "C1" and verdict["thread_ts"] == parent["answered_ts"]
    stored = slack.client.get("/v1/verdicts/ev-002").json()
    assert _button(verdict, "forest_agree")["value"] == stored["verdict_id"]
    assert _button(verdict, "forest_override")["value"] == stored["verdict_id"]
    header, facts, path, summary, evidence, _, context = verdict["blocks"]
    assert header["type"] == "header" and "ev-002" in header["text"]["text"]
    fields = "\n".join(f["text"] for f in facts["fields"])
    for fact in ("`sensor_fault`", "`cam-t01-s02-c01`", "`hold`", "`hardware_maintenance`"):
        assert fact in fields
    assert "route to training: no" in fields
    assert path["text"]["text"].startswith("*Causal path*\n`cam-t01-s02-c01` → `frame-capture`")
    assert summary["text"]["text"].startswith("*Summary*")
    lines = evidence["text"]["text"].splitlines()
    assert len(lines) == 6 and lines[1].startswith("• `E4` `get_device_health`")
    links = [e["text"] for e in context["elements"]]
    assert links[-1] == "<https://forest.example.com/v1/verdicts/ev-002|full verdict>"
    assert any(stored["verdict_id"] in t for t in links) and "reasoner rules" in links[1]
    assert "sensor_fault" in verdict["text"]
    assert slack.api.tokens == {TOKEN}


def test_a_mention_is_answered_in_its_thread_with_or_without_investigate(slack: Slack) -> None:
    assert slack.mention("<@UFOREST> investigate ev-004", ts="100.000001").status_code == 200
    (first,) = slack.api.wait_for(1)
    assert first["thread_ts"] == "100.000001" and first["channel"] == "C1"
    # out-004: its stale threshold would not flip the decision, the shadowed night mode did
    assert "`policy_misresolution`" in first["blocks"][1]["fields"][0]["text"]
    slack.mention("<@UFOREST>  ev-006", ts="200.000001", thread_ts="150.000001")
    second = slack.api.wait_for(1, where=lambda b: b["thread_ts"] == "150.000001")
    assert second[0]["blocks"][0]["text"]["text"].endswith("ev-006")
    slack.mention("<@UFOREST> help", ts="300.000001")
    (usage,) = slack.api.wait_for(1, where=lambda b: b["thread_ts"] == "300.000001")
    assert usage["text"].startswith("Usage:") and "blocks" not in usage


def test_bad_usage_acks_with_the_usage_message_and_does_nothing_else(slack: Slack) -> None:
    for text in ("", "help", "foo", "investigate", "investigate a b"):
        r = slack.command(text)
        assert r.status_code == 200 and r.json()["response_type"] == "ephemeral"
        assert r.json()["text"].startswith("Usage: `/forest investigate &lt;evaluation_id&gt;`")
    parent, _ = _investigated(slack, "ev-001")  # a sentinel: it posts after any stray post
    assert parent["text"].startswith("Forest investigation of `ev-001`")
    assert len(slack.api.posted()) == 2 and slack.api.posted("views.open") == []


def test_an_unknown_evaluation_gets_a_threaded_error(slack: Slack) -> None:
    parent, error = _investigated(slack, "ev-nope")
    assert error["thread_ts"] == parent["answered_ts"] and "blocks" not in error
    assert error["text"].startswith(":warning: Unknown evaluation `ev-nope`")
    assert "neither posted" in error["text"] and ".duckdb" not in error["text"]  # no paths


def test_other_failures_become_threaded_messages(slack: Slack) -> None:
    gate = slack.app.state.gate

    def locked(evaluation_id: str, tier: str) -> Verdict:
        raise StoreError("the store is locked by <another process>")

    gate.investigate_now = locked
    _, error = _investigated(slack, "ev-002")
    assert error["text"] == (
        ":x: The rules investigation of `ev-002` failed: "
        "the store is locked by &lt;another process&gt;"
    )

    def broken(evaluation_id: str, tier: str) -> Verdict:
        raise RuntimeError("a bug")

    gate.investigate_now = broken
    slack.command("investigate ev-003")
    crashed = slack.api.wait_for(1, where=lambda b: "internal error" in b["text"])
    assert "`ev-003`" in crashed[0]["text"] and "a bug" not in crashed[0]["text"]


def test_a_channel_the_bot_is_not_in_gets_a_private_hint(slack: Slack) -> None:
    slack.api.fail_channels["CPRIVATE"] = "not_in_channel"
    assert slack.command("investigate ev-002", channel="CPRIVATE").status_code == 200
    (hint,) = slack.api.wait_for(1, method="respond/1")
    assert hint["response_type"] == "ephemeral"
    assert "not_in_channel" in hint["text"] and "/invite @Forest" in hint["text"]


def test_a_stale_timestamp_gets_401(slack: Slack) -> None:
    # Slack's window is 5 minutes; 30 s of margin so a second ticking over mid-test (the
    # timestamp is whole seconds) cannot bring a request back inside it
    form, now = slack.command_form("investigate ev-002"), int(time.time())
    assert slack.send(form, FORM_KIND, timestamp=now - 330).status_code == 401
    assert slack.send(form, FORM_KIND, timestamp=now + 330).status_code == 401
    assert slack.api.calls == []
    assert slack.send(form, FORM_KIND, timestamp=now - 240).status_code == 200
    slack.api.wait_for(2)  # a 4-minute-old request is still fine


def test_bad_or_missing_signatures_get_401_and_change_nothing(slack: Slack) -> None:
    form, kind = slack.command_form("investigate ev-002"), FORM_KIND
    assert slack.send(form, kind, secret="wrong-" + "secret").status_code == 401
    unsigned = slack.client.post("/slack/events", content=form, headers={"content-type": kind})
    assert unsigned.status_code == 401
    tampered = slack.send(form, kind, headers={"X-Slack-Signature": "v0=" + "0" * 64})
    assert tampered.status_code == 401
    event = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {}})
    assert slack.send(event, "application/json", secret="wrong-" + "secret").status_code == 401
    assert slack.client.get("/v1/evaluations/ev-002/status").status_code == 404
    assert slack.app.state.gate.journal.first_sighting("Ev1")  # never recorded
    assert slack.api.calls == []


def test_a_redelivered_event_is_acked_but_handled_once(slack: Slack) -> None:
    first = slack.mention("<@UFOREST> ev-002", ts="400.000001", event_id="EvSame")
    retry = slack.mention(
        "<@UFOREST> ev-002",
        ts="400.000001",
        event_id="EvSame",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert first.status_code == retry.status_code == 200
    slack.mention("<@UFOREST> ev-004", ts="500.000001", event_id="EvOther")  # a sentinel
    slack.api.wait_for(1, where=lambda b: b["thread_ts"] == "500.000001")
    slack.api.wait_for(1, where=lambda b: b["thread_ts"] == "400.000001")
    assert len([b for b in slack.api.posted() if b["thread_ts"] == "400.000001"]) == 1
    status = slack.client.get("/v1/evaluations/ev-002/status").json()
    assert status["verdicts"] == 1


def test_url_verification_echoes_the_challenge(slack: Slack) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"})
    r = slack.send(body, "application/json")
    assert r.status_code == 200 and r.json() == {"challenge": "abc123"}


def test_hostile_ids_from_slack_and_the_store_are_escaped(slack: Slack) -> None:
    _, error = _investigated(slack, "<!channel>&<https://evil|x>")
    assert "`&lt;!channel&gt;&amp;&lt;https://evil|x&gt;`" in error["text"]
    assert "<!channel>" not in error["text"] and "<https" not in error["text"]
    evaluation = {
        "evaluation_id": "ev-<!here>",
        "output_id": "out-002",
        "source_kind": "human",
        "source_id": "rev-bob",
        "claim": "false_positive",
        "comment": "<!channel> look",
        "created_at": "2025-03-10T12:12:00Z",
    }
    # the gate now refuses such an id (422); one journaled before that rule is still
    # investigated from Slack, and escaped
    assert slack.client.post("/v1/evaluations", json=evaluation).status_code == 422
    old = Evaluation.model_validate(evaluation, context=RECORDED)
    slack.app.state.gate.journal.accept(old)
    slack.command("investigate ev-&lt;!here&gt;")
    (verdict,) = slack.api.wait_for(1, where=lambda b: "blocks" in b)
    mrkdwn = [verdict["text"], *(t for b in verdict["blocks"][1:] for t in _texts(b))]
    assert all("<!here>" not in t for t in mrkdwn)
    assert "&lt;!here&gt;" in verdict["text"]
    assert verdict["blocks"][-1]["elements"][-1]["text"].startswith(
        "<https://forest.example.com/v1/verdicts/ev-%3C%21here%3E|"
    )


def _sample_verdict(slack: Slack) -> Verdict:
    _investigated(slack, "ev-002")
    return Verdict.model_validate(slack.client.get("/v1/verdicts/ev-002").json())


HOSTILE = "<!channel> <https://evil|click> & stuff <@U123>"
URL = "https://forest.example.com/v1/verdicts/ev-002"


def test_verdict_text_from_the_model_and_store_is_escaped(slack: Slack) -> None:
    verdict = _sample_verdict(slack)
    evidence = [
        e.model_copy(update={"finding": HOSTILE, "node": HOSTILE}) for e in verdict.evidence
    ]
    hostile = verdict.model_copy(
        update={
            "summary": HOSTILE,
            "failing_node": HOSTILE,
            "causal_path": [HOSTILE],
            "evidence": evidence,
            "action": ActionPlan(kind="train_model", target=HOSTILE, instructions=HOSTILE),
        }
    )
    message = verdict_message(hostile, URL)
    own_link = re.compile(r"<https://forest\.example\.com/v1/verdicts/ev-002(\|full verdict)?>")
    for text in [message["text"], *(t for b in message["blocks"][1:] for t in _texts(b))]:
        assert "<" not in own_link.sub("", text) and ">" not in own_link.sub("", text), text
    summary = message["blocks"][3]["text"]["text"]
    assert (
        summary
        == "*Summary*\n&lt;!channel&gt; &lt;https://evil|click&gt; &amp; stuff &lt;@U123&gt;"
    )
    override = Override(
        override_id="o1",
        verdict_id=verdict.verdict_id,
        evaluation_id="ev-002",
        created_at=verdict.provenance.started_at,
        author="U2",
        category="model_error",
        failing_node=HOSTILE,
        action="train_model",
        reason=HOSTILE,
    )
    confirmation = override_message(override)["text"]
    assert confirmation.startswith("✎ <@U2> overrode")
    assert "<!channel>" not in confirmation and "&lt;!channel&gt;" in confirmation
    modal = override_modal(hostile, "C1", "1.2")
    assert "<!channel>" not in modal["blocks"][0]["text"]["text"]


def test_block_kit_limits_hold_for_a_huge_verdict(slack: Slack) -> None:
    verdict = _sample_verdict(slack)
    evidence = [
        Evidence(
            id=f"E{i}",
            tool="get_run",
            arguments={},
            status="ok",
            node=f"node-{i:03d}-" + "n" * 100,
            finding="x" * 1000,
            flags=[],
        )
        for i in range(200)
    ]
    huge = verdict.model_copy(
        update={
            "evidence": evidence,
            "summary": "s & " * 5000,
            "causal_path": [f"path-{i}-" + "p" * 60 for i in range(300)],
            "evaluation_id": "e" * 200,
            "failing_node": "f" * 200,  # too long for an option value: left out of the modal
            "action": ActionPlan(kind="train_model", target="t" * 1000, instructions="i" * 1000),
        }
    )
    message = verdict_message(huge, URL)
    assert check_block_kit_limits(message) == []
    summary = message["blocks"][3]["text"]["text"]
    assert len(summary) <= 3000 and "&am…" not in summary
    assert summary.endswith(f"… (truncated; full verdict: <{URL}>)")
    assert message["blocks"][2]["text"]["text"].endswith(f"full verdict: <{URL}>)")
    assert message["blocks"][4]["text"]["text"].startswith("*Evidence* (5 of 200")
    assert len(message["text"]) <= 3000
    modal = override_modal(huge, "C1", "1700000000.000100")
    assert check_block_kit_limits(modal) == []
    nodes = modal["blocks"][2]["element"]["options"]
    assert len(nodes) == 100 and nodes[0]["text"]["text"] == "none"
    assert modal["blocks"][2]["element"]["initial_option"] == nodes[0]


def test_the_limit_checker_finds_violations() -> None:
    button = {
        "type": "button",
        "action_id": "a" * 256,
        "text": {"type": "mrkdwn", "text": "b" * 76},
    }
    message = {
        "text": "t" * 3001,
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
        + [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]
        + [{"type": "actions", "elements": [button]}]
        + [{"type": "divider"}] * 50,
    }
    problems = check_block_kit_limits(message)
    for where in (
        "text: 3001",
        "blocks: 53 items",
        "blocks[0].text: 151",
        "blocks[1].fields: 11",
        "blocks[2].elements[0].action_id: 256",
        "blocks[2].elements[0].text: must be plain_text",
        "blocks[2].elements[0].text: 76",
    ):
        assert any(p.startswith(where) for p in problems), (where, problems)
    select = {
        "type": "static_select",
        "action_id": "v",
        "options": [{"text": {"type": "plain_text", "text": "o" * 76}, "value": "v" * 151}] * 101,
    }
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "T" * 25},
        "private_metadata": "m" * 3001,
        "blocks": [
            {"type": "input", "label": {"type": "plain_text", "text": "L"}, "element": select},
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "R"},
                "element": {"type": "plain_text_input", "action_id": "v", "max_length": 3001},
            },
        ],
    }
    problems = check_block_kit_limits(modal)
    for where in (
        "title: 25",
        "private_metadata: 3001",
        "blocks[0].element.options: 101",
        "blocks[0].element.options[0].text: 76",
        "blocks[0].element.options[0].value: 151",
        "blocks[1].element.max_length: 3001",
    ):
        assert any(p.startswith(where) for p in problems), (where, problems)


def test_agree_is_confirmed_in_the_thread_once_per_person(slack: Slack) -> None:
    parent, verdict = _investigated(slack, "ev-002")
    assert verdict["thread_ts"] == parent["answered_ts"]
    slack.click("forest_agree", verdict)
    (agreed,) = slack.api.wait_for(1, where=lambda b: b["text"].startswith("✓"))
    verdict_id = _button(verdict, "forest_agree")["value"]
    assert agreed["text"] == f"✓ <@U2> agreed with verdict `{verdict_id}`"
    assert agreed["thread_ts"] == verdict["thread_ts"] and agreed["channel"] == "C1"
    slack.click("forest_agree", verdict)
    (again,) = slack.api.wait_for(1, method="chat.postEphemeral")
    assert again["user"] == "U2" and again["text"].startswith("You already agreed")
    assert slack.app.state.gate.agree(verdict_id, "U2") is False  # journaled
    assert len([p for p in slack.api.posted() if p["text"].startswith("✓")]) == 1


def _submission(modal: dict[str, Any], category: str, node: str, action: str, reason: str):
    def chosen(value: str) -> dict[str, Any]:
        return {"value": {"type": "static_select", "selected_option": {"value": value}}}

    values = {
        "category": chosen(category),
        "failing_node": chosen(node),
        "action": chosen(action),
        "reason": {"value": {"type": "plain_text_input", "value": reason}},
    }
    view = {**modal, "id": "V1", "state": {"values": values}}
    return {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": "U2"},
        "api_app_id": "A1",
        "trigger_id": "trigger-submit",
        "view": view,
    }


def test_an_override_round_trips_from_the_modal_to_the_store(store: Path, api: FakeSlack) -> None:
    with running(store, api) as slack:
        _, verdict = _investigated(slack, "ev-002")
        verdict_id = _button(verdict, "forest_override")["value"]
        slack.click("forest_override", verdict)
        (opened,) = api.wait_for(1, method="views.open")
        assert opened["trigger_id"] == "trigger-forest_override"
        modal = opened["view"]
        assert json.loads(modal["private_metadata"]) == {
            "verdict_id": verdict_id,
            "evaluation_id": "ev-002",
            "channel": "C1",
            "thread_ts": verdict["thread_ts"],
        }
        inputs = {b["block_id"]: b["element"] for b in modal["blocks"] if b["type"] == "input"}
        assert [o["value"] for o in inputs["category"]["options"]] == list(get_args(Category))
        assert [o["value"] for o in inputs["action"]["options"]] == list(get_args(ActionKind))
        assert inputs["category"]["initial_option"]["value"] == "sensor_fault"
        assert inputs["action"]["initial_option"]["value"] == "hardware_maintenance"
        nodes = [o["value"] for o in inputs["failing_node"]["options"]]
        assert nodes[:2] == ["__none__", "cam-t01-s02-c01"] and "door-t01-s02-1" in nodes
        assert len(nodes) == len(set(nodes))
        assert inputs["failing_node"]["initial_option"]["value"] == "cam-t01-s02-c01"
        assert inputs["reason"]["multiline"] and inputs["reason"]["max_length"] == 3000

        reason = "blur was fine; <!channel> the detector missed"
        submitted = slack.interact(
            _submission(modal, "model_error", "detector", "train_model", reason)
        )
        assert submitted.status_code == 200 and submitted.text == ""
        (confirmed,) = api.wait_for(1, where=lambda b: b["text"].startswith("✎"))
        assert confirmed["thread_ts"] == verdict["thread_ts"]
        assert (
            "category `model_error`, failing node `detector`, action `train_model`"
            in (confirmed["text"])
        )
        assert "&lt;!channel&gt;" in confirmed["text"]
        assert len(slack.app.state.gate.journal.unflushed_overrides()) == 1
    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.execute(
            "SELECT verdict_id, evaluation_id, author, category, failing_node, action, reason"
            " FROM overrides"
        ).fetchall()
    finally:
        con.close()
    assert rows == [(verdict_id, "ev-002", "U2", "model_error", "detector", "train_model", reason)]


def test_an_override_of_an_unknown_verdict_is_refused_in_the_modal(slack: Slack) -> None:
    verdict = _sample_verdict(slack)
    modal = override_modal(verdict, "C1", "1.1")
    for meta in (
        {"verdict_id": "vd-nope", "evaluation_id": "ev-002"},
        {"verdict_id": verdict.verdict_id, "evaluation_id": "ev-004"},
    ):
        forged = {**modal, "private_metadata": json.dumps({**meta, "channel": "C1"})}
        r = slack.interact(_submission(forged, "model_error", "__none__", "train_model", ""))
        assert r.status_code == 200
        assert r.json()["response_action"] == "errors"
        assert "no verdict" in r.json()["errors"]["category"]
    bad = slack.interact(_submission(modal, "blurry", "__none__", "train_model", ""))
    assert bad.json()["response_action"] == "errors"
    assert slack.app.state.gate.journal.unflushed_overrides() == []
    assert not [p for p in slack.api.posted() if p["text"].startswith("✎")]


def test_an_escalated_verdict_posts_the_llm_verdict_in_the_same_thread(
    store: Path, api: FakeSlack
) -> None:
    with running(store, api, model=sensor_model(), train_confidence=0.99) as slack:
        parent, rules, escalating, llm = _investigated(slack, "ev-002", count=4)
    assert (
        rules["thread_ts"] == escalating["thread_ts"] == llm["thread_ts"] == parent["answered_ts"]
    )
    assert "asking the LLM tier" in escalating["text"]
    assert rules["blocks"][-1]["elements"][1]["text"] == "reasoner rules"
    assert llm["blocks"][-1]["elements"][1]["text"] == "reasoner llm (fake-1)"
    assert _button(rules, "forest_agree")["value"] != _button(llm, "forest_agree")["value"]


def test_the_ack_does_not_wait_for_a_slow_investigation(
    store: Path, api: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack retries a request not acked within 3 s: the investigation runs lazily."""
    release = threading.Event()
    with running(store, api) as slack:
        gate = slack.app.state.gate
        real = gate.investigate_now

        def slow(evaluation_id: str, tier: Any) -> Verdict:
            assert release.wait(30)
            return real(evaluation_id, tier)

        monkeypatch.setattr(gate, "investigate_now", slow)
        mentioned = slack.mention("<@UFOREST> ev-002", ts="700.000001")
        commanded = slack.command("investigate ev-004")
        assert mentioned.status_code == commanded.status_code == 200
        assert "Investigating `ev-004`" in commanded.json()["text"]
        slack.api.wait_for(1)  # the slash command's parent message
        assert not [b for b in api.posted() if b.get("blocks")]  # no verdict yet
        release.set()
        posts = api.wait_for(2, where=lambda b: bool(b.get("blocks")))
    assert sorted(p["blocks"][0]["text"]["text"][-6:] for p in posts) == ["ev-002", "ev-004"]


def test_parse_request() -> None:
    assert parse_request("investigate ev-1", bare_id=False) == "ev-1"
    assert parse_request("  INVESTIGATE   ev-1 ", bare_id=False) == "ev-1"
    assert parse_request("ev-1", bare_id=False) is None
    assert parse_request("<@UFOREST> ev-1", bare_id=True) == "ev-1"
    assert parse_request("<@UFOREST|forest> investigate ev-1", bare_id=True) == "ev-1"
    assert parse_request("investigate a&amp;b&lt;c&gt;", bare_id=False) == "a&b<c>"
    for text in ("", "help", "investigate", "<@UFOREST>", "<@UFOREST> help", "a b c"):
        assert parse_request(text, bare_id=True) is None


def test_the_manifest_points_everything_at_slack_events() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/forest"
    assert command["usage_hint"] == "investigate <evaluation_id>"
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert settings["interactivity"]["is_enabled"] is True
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == [
        "app_mentions:read",
        "chat:write",
        "chat:write.public",
        "commands",
    ]
    urls = {
        command["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    }
    assert urls == {"https://forest.example.com/slack/events"}
    assert settings["socket_mode_enabled"] is False


def test_a_workspace_or_channel_investigates_only_its_tenants(store: Path, api: FakeSlack) -> None:
    """FOREST_SLACK_TENANTS: workspace T1 is t01's, channel C2 (in T1) t02's; ev-002 is an
    evaluation of out-002 (t01), ev-004 of out-004 (t02)."""
    with running(store, api, slack_tenants={"T1": ["t01"], "C2": ["t02"]}) as slack:
        _, refused = _investigated(slack, "ev-004")  # in C1: the workspace's t01
        assert "blocks" not in refused and refused["text"].startswith(":no_entry:")
        assert "`ev-004`" in refused["text"] and "tenant t01" in refused["text"]
        slack.command("investigate ev-nope")  # no hint that one exists and one does not
        (unknown,) = api.wait_for(
            1, where=lambda b: b["text"].startswith(":no_entry: Forest won't investigate `ev-nope`")
        )
        assert unknown["text"] == refused["text"].replace("ev-004", "ev-nope")
        slack.mention("<@UFOREST> ev-004", ts="900.000001")
        (mentioned,) = api.wait_for(1, where=lambda b: b.get("thread_ts") == "900.000001")
        assert mentioned["text"] == refused["text"]

        assert slack.command("investigate ev-004", channel="C2").status_code == 200
        theirs = api.wait_for(1, where=lambda b: b["channel"] == "C2" and "blocks" in b)[0]
        assert "`out-004`" in theirs["blocks"][1]["fields"][-1]["text"]
        assert slack.command("investigate ev-002", channel="C2").status_code == 200
        refused_c2 = api.wait_for(
            1, where=lambda b: b["text"].startswith(":no_entry: Forest won't investigate `ev-002`")
        )
        assert refused_c2[0]["channel"] == "C2" and "tenant t02" in refused_c2[0]["text"]

        # t02's verdict clicked from C1 (t01): refused privately, nothing journaled
        slack.click("forest_agree", {**theirs, "channel": "C1"})
        slack.click("forest_override", {**theirs, "channel": "C1"})
        refusals = api.wait_for(2, method="chat.postEphemeral")
        assert all(r["text"].startswith(":no_entry: Verdict") for r in refusals)
        assert api.posted("views.open") == []
        verdict = Verdict.model_validate(slack.client.get("/v1/verdicts/ev-004").json())
        forged = override_modal(verdict, "C1", "1.1")
        r = slack.interact(_submission(forged, "model_error", "__none__", "train_model", ""))
        assert r.json()["response_action"] == "errors"
        assert slack.app.state.gate.journal.unflushed_overrides() == []
        slack.click("forest_agree", theirs)  # from C2 it is fine
        api.wait_for(1, where=lambda b: b["text"].startswith("✓"))
