"""Forest's Slack bot: ``/forest investigate <id>``, ``@Forest <id>``, Agree and Override….

:func:`mount_slack` serves slash commands, events and interactivity at ``POST /slack/events``
on the gate's FastAPI app (one request URL, as in ``slack_manifest.yaml``).

Why the sync bolt ``App``: the Gatekeeper blocks (an LLM investigation takes minutes) and
``AsyncApp`` needs aiohttp, which Forest does not ship. The stock FastAPI adapter
(``slack_bolt.adapter.fastapi.SlackRequestHandler``) calls ``App.dispatch`` on the event
loop; this module uses the same adapter's request/response converters but dispatches in a
worker thread. With ``process_before_response=True`` bolt runs each listener's ``ack``
function in that request thread and hands the ``lazy`` functions to its executor: the HTTP
answer (Slack wants it within 3 s) never waits for an executor slot held by a long
investigation, and the lazy function does the work and posts the result.

Bolt checks the signature on the raw body before anything parses it (401 on a bad, missing
or over-5-minute-old one). Slack redelivers an event it thinks was missed with the same
``event_id``; a global middleware acks a repeat without handling it again, using the
journal's ``seen_events`` so this holds across restarts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Literal, ParamSpec

from fastapi import APIRouter, FastAPI, Request, Response
from slack_bolt import Ack, App, BoltContext, BoltResponse, Respond
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from agent.schemas import Override, Verdict
from agent.service import slack_blocks as kit
from agent.service.gatekeeper import Gatekeeper
from agent.service.tenants import Access, slack_access
from agent.settings import Settings
from tools.errors import ForestError, InputError, NotFoundError

__all__ = ["build_bolt_app", "mount_slack", "parse_request"]

log = logging.getLogger(__name__)
P = ParamSpec("P")
Post = Callable[[dict[str, Any]], None]
_MENTION = re.compile(r"<@[^>]*>")


def mount_slack(app: FastAPI, gate: Gatekeeper, settings: Settings) -> None:
    """Serve Slack at ``POST /slack/events`` on ``app`` (needs ``settings.slack_configured``)."""
    executor = ThreadPoolExecutor(16, thread_name_prefix="forest-slack")
    bolt = build_bolt_app(gate, settings, executor)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # nested inside the app's lifespan: runs before the gate stops and closes the journal
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    router = APIRouter(lifespan=lifespan)

    @router.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        answer = await asyncio.to_thread(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(answer)

    app.include_router(router)
    app.state.slack = bolt


def build_bolt_app(gate: Gatekeeper, settings: Settings, executor: ThreadPoolExecutor) -> App:
    """The bolt app with Forest's listeners; makes no network call until a request comes."""
    if settings.slack_bot_token is None or settings.slack_signing_secret is None:
        raise InputError("Slack needs FOREST_SLACK_BOT_TOKEN and FOREST_SLACK_SIGNING_SECRET")
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    bolt = App(
        name="forest",
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        token_verification_enabled=False,  # auth.test runs on the first request instead
        process_before_response=True,
        listener_executor=executor,
    )
    bot = _Bot(gate, settings.public_url, settings)
    bolt.middleware(bot.skip_retried_events)
    bolt.command("/forest")(ack=bot.ack_command, lazy=[bot.run_command])
    bolt.event("app_mention")(ack=bot.ack, lazy=[bot.run_mention])
    bolt.action(kit.AGREE_ACTION)(ack=bot.ack, lazy=[bot.run_agree])
    bolt.action(kit.OVERRIDE_ACTION)(ack=bot.ack, lazy=[bot.open_override])
    bolt.view_submission(kit.OVERRIDE_VIEW)(ack=bot.save_override, lazy=[bot.confirm_override])
    return bolt


def parse_request(text: str, *, bare_id: bool) -> str | None:
    """The evaluation id in ``investigate <id>`` (or a lone ``<id>`` if ``bare_id``)."""
    plain = _MENTION.sub(" ", text).replace("&lt;", "<").replace("&gt;", ">")
    words = plain.replace("&amp;", "&").split()
    if len(words) == 2 and words[0].lower() == "investigate":
        return words[1]
    if bare_id and len(words) == 1 and words[0].lower() not in {"help", "investigate"}:
        return words[0]
    return None


def _logged(func: Callable[P, None]) -> Callable[P, None]:
    """The lazy-listener boundary: a crash is logged with its traceback, not one line."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except Exception:
            log.exception("Slack listener %s failed", func.__name__)

    return wrapper


def _clicked(body: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    """(verdict id, user id, channel, thread ts) of a button click on a verdict message."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    thread_ts = message.get("thread_ts") or message.get("ts") or container.get("message_ts")
    return body["actions"][0]["value"], body["user"]["id"], channel, thread_ts


class _Bot:
    """The listeners; ``ack*`` and ``save_override`` answer Slack, the rest run lazily."""

    def __init__(self, gate: Gatekeeper, public_url: str | None, settings: Settings) -> None:
        self.gate = gate
        self.public_url = public_url
        self.settings = settings

    def _access(self, team_id: str | None, channel_id: str | None) -> Access:
        """The tenants a channel in a workspace may see (``FOREST_SLACK_TENANTS``)."""
        return slack_access(self.settings, team_id, channel_id)

    def _may_see_verdict(self, access: Access, verdict_id: str) -> bool:
        """Whether ``access`` covers a verdict's output's tenant; False for an unknown one."""
        if access.every_tenant:
            return True
        verdict = self.gate.find_verdict(verdict_id)
        return verdict is not None and access.allows(self.gate.output_tenant(verdict.output_id))

    def skip_retried_events(
        self, body: dict[str, Any], next_: Callable[[], BoltResponse]
    ) -> BoltResponse:
        event_id = body.get("event_id")
        retried = (
            body.get("type") == "event_callback"
            and isinstance(event_id, str)
            and not self.gate.journal.first_sighting(event_id)
        )
        if retried:
            log.info("Slack redelivered event %s; already handled", event_id)
            return BoltResponse(status=200, body="")
        return next_()

    def ack(self, ack: Ack) -> None:
        ack()

    def ack_command(self, ack: Ack, command: dict[str, Any]) -> None:
        evaluation_id = parse_request(command.get("text") or "", bare_id=False)
        if evaluation_id is None:
            ack(response_type="ephemeral", **kit.usage_message())
        else:
            ack(response_type="ephemeral", **kit.started_message(evaluation_id))

    @_logged
    def run_command(self, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        evaluation_id = parse_request(command.get("text") or "", bare_id=False)
        if evaluation_id is None:
            return
        channel = command["channel_id"]
        parent = kit.parent_message(evaluation_id, command["user_id"])
        try:
            ts = client.chat_postMessage(channel=channel, **parent)["ts"]
        except SlackApiError as exc:  # e.g. not_in_channel: tell the user, privately
            respond(response_type="ephemeral", **kit.cannot_post_message(exc.response["error"]))
            return
        access = self._access(command.get("team_id"), channel)
        self._investigate(self._poster(client, channel, ts), evaluation_id, access)

    @_logged
    def run_mention(self, body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        post = self._poster(client, event["channel"], event.get("thread_ts") or event["ts"])
        evaluation_id = parse_request(event.get("text") or "", bare_id=True)
        if evaluation_id is None:
            post(kit.usage_message())
        else:
            access = self._access(body.get("team_id"), event["channel"])
            self._investigate(post, evaluation_id, access)

    def _poster(self, client: WebClient, channel: str, thread_ts: str) -> Post:
        def post(payload: dict[str, Any]) -> None:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, **payload)

        return post

    def _investigate(self, post: Post, evaluation_id: str, access: Access) -> None:
        try:
            if not access.every_tenant and not access.allows(
                self.gate.evaluation_tenant(evaluation_id)
            ):  # the same answer for an unknown id: no hint whether it exists
                post(kit.not_allowed_message(evaluation_id, access.describe()))
                return
            verdict = self._tier(post, evaluation_id, "rules")
            if verdict is not None and self.gate.should_escalate(verdict):
                post(kit.escalating_message(verdict))
                self._tier(post, evaluation_id, "llm")
        except Exception:  # the listener boundary: a bug becomes a threaded message
            log.exception("Slack investigation of %s failed", evaluation_id)
            post(kit.crashed_message(evaluation_id))

    def _tier(
        self, post: Post, evaluation_id: str, tier: Literal["rules", "llm"]
    ) -> Verdict | None:
        try:
            verdict = self.gate.investigate_now(evaluation_id, tier)
        except NotFoundError as exc:
            post(kit.not_found_message(evaluation_id, str(exc)))
            return None
        except ForestError as exc:
            post(kit.failed_message(evaluation_id, tier, str(exc)))
            return None
        post(kit.verdict_message(verdict, kit.verdict_url(self.public_url, evaluation_id)))
        return verdict

    @_logged
    def run_agree(self, body: dict[str, Any], client: WebClient) -> None:
        verdict_id, user, channel, thread_ts = _clicked(body)
        if channel is None:
            return
        access = self._access((body.get("team") or {}).get("id"), channel)
        if not self._may_see_verdict(access, verdict_id):
            payload = kit.verdict_not_allowed_message(verdict_id, access.describe())
            client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, **payload)
            return
        try:
            added = self.gate.agree(verdict_id, user)
        except NotFoundError:
            payload = kit.unknown_verdict_message(verdict_id)
        else:
            if added:
                client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, **kit.agreed_message(user, verdict_id)
                )
                return
            payload = kit.already_agreed_message(verdict_id)
        client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, **payload)

    @_logged
    def open_override(self, body: dict[str, Any], client: WebClient) -> None:
        verdict_id, user, channel, thread_ts = _clicked(body)
        access = self._access((body.get("team") or {}).get("id"), channel)
        if not self._may_see_verdict(access, verdict_id):
            if channel is not None:
                payload = kit.verdict_not_allowed_message(verdict_id, access.describe())
                client.chat_postEphemeral(
                    channel=channel, user=user, thread_ts=thread_ts, **payload
                )
            return
        verdict = self.gate.find_verdict(verdict_id)
        if verdict is not None:
            modal = kit.override_modal(verdict, channel, thread_ts)
            client.views_open(trigger_id=body["trigger_id"], view=modal)
        elif channel is not None:
            payload = kit.unknown_verdict_message(verdict_id)
            client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, **payload)

    def save_override(
        self, ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        try:
            chosen = kit.read_override_view(view)
            where = {"channel": chosen.pop("channel"), "thread_ts": chosen.pop("thread_ts")}
            override = Override(
                override_id=uuid.uuid4().hex,
                created_at=dt.datetime.now(dt.UTC),
                author=body["user"]["id"],
                **chosen,
            )
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError too
            log.warning("malformed override submission: %s", exc)
            ack(response_action="errors", errors=kit.override_errors("Invalid choice; retry."))
            return
        access = self._access((body.get("team") or {}).get("id"), where["channel"])
        if not self._may_see_verdict(access, override.verdict_id):
            refusal = kit.verdict_not_allowed_message(override.verdict_id, access.describe())
            ack(response_action="errors", errors=kit.override_errors(refusal["text"]))
            return
        try:
            self.gate.override(override)
        except NotFoundError as exc:
            ack(response_action="errors", errors=kit.override_errors(str(exc)))
            return
        context["forest_override"] = {"override": override.model_dump(mode="json"), **where}
        ack()

    @_logged
    def confirm_override(self, context: BoltContext, client: WebClient) -> None:
        saved = context.get("forest_override")
        if saved is None or not saved["channel"]:
            return
        override = Override.model_validate(saved["override"])
        client.chat_postMessage(
            channel=saved["channel"],
            thread_ts=saved["thread_ts"],
            **kit.override_message(override),
        )
