"""Block Kit payloads for the Slack bot (limits: :mod:`agent.service.slack_limits`).

Pure functions: a Verdict (or ids and text) in, the JSON Slack expects out. Text that came
from the store or a model (summaries, findings, node names, comments, error messages) goes
through :func:`escape` before it reaches mrkdwn, so ``<!channel>``, ``<@U123>`` and
``<url|label>`` inside it render as text. Text past a limit is cut with a pointer to the
full verdict. :func:`read_override_view` reads back the modal :func:`override_modal` renders.
Blocks, elements, text objects and the modal view are ``slack_sdk.models`` objects turned
into dicts with ``.to_dict()``, which raises ``SlackObjectFormationError`` on a payload past
the limits those models know; :mod:`agent.service.slack_limits` checks the results against
Slack's limits (including those the models leave unchecked: field and context text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, get_args
from urllib.parse import quote

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from agent.schemas import ACTION_FOR_CATEGORY, ActionKind, Category, Evidence, Override, Verdict
from agent.service.slack_limits import (
    FALLBACK_TEXT,
    FIELD_TEXT,
    HEADER_TEXT,
    MAX_OPTIONS,
    OPTION_TEXT,
    OPTION_VALUE,
    SECTION_TEXT,
)

__all__ = [
    "AGREE_ACTION",
    "NO_NODE",
    "OVERRIDE_ACTION",
    "OVERRIDE_VIEW",
    "escape",
    "lineage_nodes",
    "override_modal",
    "read_override_view",
    "verdict_message",
    "verdict_url",
]

Payload = dict[str, Any]

AGREE_ACTION = "forest_agree"
OVERRIDE_ACTION = "forest_override"
OVERRIDE_VIEW = "forest_override"
NO_NODE = "__none__"

TOP_EVIDENCE = 5
FINDING_CHARS = 300
_E_ID = re.compile(r"\bE\d+\b")


def escape(text: str) -> str:
    """``text`` made inert for mrkdwn: no mentions, links or broadcasts survive."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    return "`" + escape(text).replace("`", "'") + "`"


def _user(user_id: str) -> str:
    return "<@" + re.sub(r"[^A-Za-z0-9]", "", user_id) + ">"


def verdict_url(public_url: str | None, evaluation_id: str) -> str:
    """Where the full verdict is served (``GET /v1/verdicts/{evaluation_id}``)."""
    base = (public_url or "http://localhost:8000").rstrip("/")
    return f"{base}/v1/verdicts/{quote(evaluation_id, safe='')}"


def clip(mrkdwn: str, limit: int, url: str | None = None) -> str:
    """Escaped ``mrkdwn`` cut to ``limit`` chars, ending with a pointer to ``url``."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    tail = f"… (truncated; full verdict: <{escape(url)}>)" if url else "…"
    cut = mrkdwn[: max(0, limit - len(tail))]
    if cut.rfind("&") > cut.rfind(";"):  # never leave half an entity such as "&am"
        cut = cut[: cut.rfind("&")]
    return cut + tail


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str, limit: int = SECTION_TEXT) -> PlainTextObject:
    return PlainTextObject(text=_cut(text, limit) or " ", emoji=True)


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def _section(text: str, url: str) -> SectionBlock:
    return SectionBlock(text=_mrkdwn(clip(text, SECTION_TEXT, url)))


def _blocks(blocks: list[Block]) -> list[Payload]:
    return [block.to_dict() for block in blocks]


def _message(text: str) -> Payload:
    return {"text": clip(text, FALLBACK_TEXT)}


def _facts(verdict: Verdict, url: str) -> list[MarkdownTextObject]:
    action = verdict.action
    action_text = f"*Action*\n{_code(action.kind)}"
    if action.target:
        action_text += f" on {_code(action.target)}"
    if action.instructions:
        action_text += "\n" + escape(action.instructions)
    node = _code(verdict.failing_node) if verdict.failing_node else "_none_"
    fields = [
        f"*Category*\n{_code(verdict.category)}",
        f"*Confidence*\n{verdict.confidence:.2f}",
        f"*Failing node*\n{node}",
        f"*Gate*\n{_code(verdict.gate)} · route to training: "
        + ("yes" if verdict.route_to_training else "no"),
        action_text,
        f"*Evaluation*\n{_code(verdict.evaluation_id)} on output {_code(verdict.output_id)}",
    ]
    return [_mrkdwn(clip(f, FIELD_TEXT, url)) for f in fields]


def _cited(verdict: Verdict) -> set[str]:
    ids = set(_E_ID.findall(verdict.summary))
    for component in verdict.components:
        if component.role in ("root_cause", "contributor"):
            ids.update(component.evidence_ids)
    for hypothesis in verdict.hypotheses:
        if hypothesis.status == "supported":
            ids.update(hypothesis.evidence_ids)
    return ids


def top_evidence(verdict: Verdict, n: int = TOP_EVIDENCE) -> list[Evidence]:
    """The ``n`` items to show: cited ones first, then flagged ones, in gathering order."""
    cited = _cited(verdict)
    return sorted(verdict.evidence, key=lambda e: (e.id not in cited, not e.flags))[:n]


def _evidence_text(verdict: Verdict) -> str:
    shown = top_evidence(verdict)
    lines = [f"*Evidence* ({len(shown)} of {len(verdict.evidence)}, decisive first)"]
    for item in shown:
        finding = " ".join(item.finding.split())
        if len(finding) > FINDING_CHARS:
            finding = finding[: FINDING_CHARS - 1] + "…"
        lines.append(f"• {_code(item.id)} {_code(item.tool)}: {escape(finding)}")
    return "\n".join(lines) if shown else "*Evidence*\n_none gathered_"


def _path_text(verdict: Verdict) -> str:
    path = " → ".join(_code(n) for n in verdict.causal_path) or "_none_"
    return f"*Causal path*\n{path}"


def verdict_message(verdict: Verdict, url: str) -> Payload:
    """The verdict as a message: facts, path, summary, top evidence, Agree / Override…"""
    provenance = verdict.provenance
    reasoner = provenance.reasoner + (f" ({provenance.model})" if provenance.model else "")
    fallback = (
        f"Forest verdict for {escape(verdict.evaluation_id)}: {verdict.category} "
        f"(confidence {verdict.confidence:.2f}), gate {verdict.gate}. {escape(verdict.summary)}"
    )
    buttons = [
        ButtonElement(
            action_id=AGREE_ACTION, text=_plain("Agree"), style="primary", value=verdict.verdict_id
        ),
        ButtonElement(
            action_id=OVERRIDE_ACTION, text=_plain("Override…"), value=verdict.verdict_id
        ),
    ]
    context = [
        f"verdict {_code(verdict.verdict_id)}",
        f"reasoner {escape(reasoner)}",
        f"<{escape(url)}|full verdict>",
    ]
    blocks: list[Block] = [
        HeaderBlock(text=_plain(f"Forest verdict: {verdict.evaluation_id}", HEADER_TEXT)),
        SectionBlock(fields=_facts(verdict, url)),
        _section(_path_text(verdict), url),
        _section("*Summary*\n" + (escape(verdict.summary) or "_none_"), url),
        _section(_evidence_text(verdict), url),
        ActionsBlock(elements=buttons),
        ContextBlock(elements=[_mrkdwn(clip(c, SECTION_TEXT)) for c in context]),
    ]
    return {"text": clip(fallback, FALLBACK_TEXT, url), "blocks": _blocks(blocks)}


def lineage_nodes(verdict: Verdict) -> list[str]:
    """Nodes the verdict touched, failing node first, deduped; at most 99 (plus "none")."""
    seen: dict[str, None] = {}
    candidates = [
        verdict.failing_node,
        *verdict.causal_path,
        *(c.node for c in verdict.components),
        *(e.node for e in verdict.evidence),
    ]
    for node in candidates:
        if node and len(node) <= OPTION_VALUE:  # a longer one cannot be an option value
            seen.setdefault(node)
    return list(seen)[: MAX_OPTIONS - 1]


def _option(value: str, text: str | None = None) -> Option:
    return Option(value=value, label=_cut(text or value, OPTION_TEXT) or " ")


def _select(block_id: str, label: str, options: list[Option], initial: Option) -> InputBlock:
    element = StaticSelectElement(action_id="value", options=options, initial_option=initial)
    return InputBlock(block_id=block_id, label=_plain(label), element=element)


def override_modal(verdict: Verdict, channel: str | None, thread_ts: str | None) -> Payload:
    """The Override… modal, prefilled with the verdict's category, node and action."""
    metadata = {
        "verdict_id": verdict.verdict_id,
        "evaluation_id": verdict.evaluation_id,
        "channel": channel,
        "thread_ts": thread_ts,
    }
    nodes = lineage_nodes(verdict)
    none = _option(NO_NODE, "none")
    node = _option(verdict.failing_node) if verdict.failing_node in nodes else none
    node_options = [none, *(_option(n) for n in nodes)]
    action = ACTION_FOR_CATEGORY[verdict.category]
    current = (
        f"Correcting verdict {_code(verdict.verdict_id)} on evaluation "
        f"{_code(verdict.evaluation_id)}: it says {_code(verdict.category)}"
        + (f" at {_code(verdict.failing_node)}" if verdict.failing_node else "")
        + f", action {_code(verdict.action.kind)}."
    )
    reason = PlainTextInputElement(
        action_id="value",
        multiline=True,
        max_length=3000,
        placeholder=_plain("What did Forest get wrong?", 150),
    )
    view = View(
        type="modal",
        callback_id=OVERRIDE_VIEW,
        title=_plain("Override verdict", 24),
        submit=_plain("Save override", 24),
        close=_plain("Cancel", 24),
        private_metadata=json.dumps(metadata),
        blocks=[
            SectionBlock(text=_mrkdwn(clip(current, SECTION_TEXT))),
            _select(
                "category",
                "Category",
                [_option(c) for c in get_args(Category)],
                _option(verdict.category),
            ),
            _select("failing_node", "Failing node", node_options, node),
            _select(
                "action", "Action", [_option(a) for a in get_args(ActionKind)], _option(action)
            ),
            InputBlock(block_id="reason", optional=True, label=_plain("Reason"), element=reason),
        ],
    )
    return view.to_dict()


def read_override_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """The submitted modal's metadata and choices, as :class:`Override` fields plus
    ``channel`` and ``thread_ts``. KeyError, TypeError or ValueError if it is malformed."""
    meta = json.loads(view["private_metadata"])
    values = view["state"]["values"]
    node = values["failing_node"]["value"]["selected_option"]["value"]
    return {
        "verdict_id": meta["verdict_id"],
        "evaluation_id": meta["evaluation_id"],
        "channel": meta.get("channel"),
        "thread_ts": meta.get("thread_ts"),
        "category": values["category"]["value"]["selected_option"]["value"],
        "failing_node": None if node == NO_NODE else node,
        "action": values["action"]["value"]["selected_option"]["value"],
        "reason": (values.get("reason", {}).get("value", {}).get("value") or None),
    }


def usage_message() -> Payload:
    return _message(
        escape(
            "Usage: `/forest investigate <evaluation_id>`, or mention me: "
            "`@Forest investigate <evaluation_id>` (or just `@Forest <evaluation_id>`)."
        )
    )


def started_message(evaluation_id: str) -> Payload:
    return _message(
        f"Investigating {_code(evaluation_id)}… the verdict will be posted in a thread here."
    )


def parent_message(evaluation_id: str, user_id: str) -> Payload:
    return _message(f"Forest investigation of {_code(evaluation_id)} requested by {_user(user_id)}")


def not_found_message(evaluation_id: str, error: str) -> Payload:
    return _message(
        f":warning: Unknown evaluation {_code(evaluation_id)}: {escape(error)}. Check the id; "
        "an evaluation must be in the store or posted to `POST /v1/evaluations` first."
    )


def not_allowed_message(evaluation_id: str, tenants: str) -> Payload:
    """The refusal of an evaluation of another tenant's output (or an unknown one)."""
    return _message(
        f":no_entry: Forest won't investigate {_code(evaluation_id)} here: this channel may "
        f"only investigate evaluations of tenant {escape(tenants)}, and this is not one of "
        "them (or it does not exist). Ask in a channel mapped to its tenant."
    )


def verdict_not_allowed_message(verdict_id: str, tenants: str) -> Payload:
    return _message(
        f":no_entry: Verdict {_code(verdict_id)} is not about tenant {escape(tenants)}, the "
        "only one(s) this channel may see (or it does not exist)."
    )


def failed_message(evaluation_id: str, tier: str, error: str) -> Payload:
    return _message(
        f":x: The {escape(tier)} investigation of {_code(evaluation_id)} failed: {escape(error)}"
    )


def crashed_message(evaluation_id: str) -> Payload:
    return _message(
        f":x: Forest hit an internal error investigating {_code(evaluation_id)}; "
        "it is in the service log."
    )


def escalating_message(verdict: Verdict) -> Payload:
    return _message(
        f"The rules verdict is {_code(verdict.category)} at confidence "
        f"{verdict.confidence:.2f}; asking the LLM tier too (this can take a few minutes)…"
    )


def cannot_post_message(error: str) -> Payload:
    return _message(
        f":warning: I can't post in this channel ({escape(error)}). "
        "Invite me with `/invite @Forest` and try again."
    )


def agreed_message(user_id: str, verdict_id: str) -> Payload:
    return _message(f"✓ {_user(user_id)} agreed with verdict {_code(verdict_id)}")


def already_agreed_message(verdict_id: str) -> Payload:
    return _message(f"You already agreed with verdict {_code(verdict_id)}.")


def unknown_verdict_message(verdict_id: str) -> Payload:
    return _message(f":warning: Forest has no verdict {_code(verdict_id)} any more.")


def override_message(override: Override) -> Payload:
    node = _code(override.failing_node) if override.failing_node else "_none_"
    text = (
        f"✎ {_user(override.author)} overrode verdict {_code(override.verdict_id)}: "
        f"category {_code(override.category)}, failing node {node}, "
        f"action {_code(override.action)}"
    )
    if override.reason:
        text += "\n>" + escape(" ".join(override.reason.split()))
    return _message(text)


def override_errors(error: str) -> dict[str, str]:
    """``errors`` for a ``response_action: errors`` answer to the modal."""
    return {"category": error if len(error) <= 300 else error[:299] + "…"}
