"""The chat model behind the LLM tier: any OpenAI-compatible endpoint, and its results.

Transport retries (429, 5xx, network) belong to the OpenAI SDK alone (``max_retries``);
semantic repair of invalid answers belongs to the reasoner (tenacity). Errors that reach
here become :class:`tools.errors.LLMError` with a message a user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import openai

from agent.settings import Settings
from tools.errors import LLMError

__all__ = ["ChatModel", "ChatResult", "LLMUsage", "OpenAIChatModel", "ToolCallRequest"]


@dataclass(frozen=True)
class ToolCallRequest:
    """A function call the model asked for (arguments as the raw JSON text it sent)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatResult:
    content: str | None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


@dataclass(frozen=True)
class LLMUsage:
    """One call to the model: what it was for and the tokens it cost (a failed attempt
    counts too, with zero tokens)."""

    purpose: str
    prompt_tokens: int
    completion_tokens: int


class ChatModel(Protocol):
    """What the reasoner needs from a model; tests script a fake one."""

    model: str

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        response_format: dict[str, Any] | None = None,
    ) -> ChatResult: ...


class OpenAIChatModel:
    """Chat Completions through the openai SDK."""

    def __init__(self, settings: Settings, *, http_client: Any = None) -> None:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
        self.model = settings.llm_model
        self._settings = settings
        self._client = openai.OpenAI(
            api_key=key,
            base_url=settings.llm_base_url,
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            http_client=http_client,
        )

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        response_format: dict[str, Any] | None = None,
    ) -> ChatResult:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self._settings.llm_max_tokens,
            "temperature": self._settings.llm_temperature,
        }
        if tools:
            kwargs["tools"] = tools
            if tool_choice is not None:
                kwargs["tool_choice"] = tool_choice
        if response_format is not None:
            kwargs["response_format"] = response_format
        try:
            response = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError as exc:
            raise LLMError(
                f"LLM call timed out after {self._settings.llm_timeout_s:g}s "
                "(raise FOREST_LLM_TIMEOUT_S or use a faster endpoint)"
            ) from exc
        except openai.APIConnectionError as exc:
            raise LLMError(
                f"cannot reach the LLM endpoint {self._settings.llm_base_url or 'api.openai.com'}"
                " (check FOREST_LLM_BASE_URL)"
            ) from exc
        except openai.APIStatusError as exc:
            raise LLMError(
                f"LLM endpoint answered HTTP {exc.status_code}: {_short(exc.message)}"
            ) from exc
        if not response.choices:
            raise LLMError("LLM endpoint returned no choices")
        choice = response.choices[0]
        message = choice.message
        refusal = getattr(message, "refusal", None)
        if refusal:
            raise LLMError(f"the model refused: {_short(refusal)}")
        if choice.finish_reason == "content_filter":
            raise LLMError(
                "the endpoint's content filter stopped the answer (finish_reason "
                "content_filter); the evidence or the prompt holds text the provider blocks"
            )
        calls = [
            ToolCallRequest(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in (message.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        usage = response.usage
        return ChatResult(
            content=message.content,
            tool_calls=calls,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason,
        )


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
