"""Forest's settings: one class, built once at the entry point and passed down.

Environment variables use the ``FOREST_`` prefix (``FOREST_LLM_MODEL``...); the LLM key
and base URL also honour the OpenAI SDK's ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``.
Nothing else in Forest reads ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """All knobs, with defaults that work on the embedded demo store and no API key."""

    model_config = SettingsConfigDict(env_prefix="FOREST_", extra="ignore", populate_by_name=True)

    store: Path = Field(default=Path("forest-demo.duckdb"), description="DuckDB store file")
    reasoner: Literal["rules", "llm"] = "rules"
    train_confidence: float = Field(
        default=0.7, ge=0, le=1, description="minimum confidence to route to training"
    )
    abstain_margin: float = Field(
        default=0.15, ge=0, le=1, description="rules: abstain when the top two are this close"
    )
    recursion_limit: int = Field(default=40, ge=10, le=500)
    sweep_workers: int = Field(default=4, ge=1, le=32)

    llm_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("FOREST_LLM_BASE_URL", "OPENAI_BASE_URL")
    )
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("FOREST_LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="SDK transport retries")
    llm_max_calls: int = Field(default=6, ge=1, le=50)
    llm_max_tool_calls: int = Field(default=6, ge=0, le=100)
    llm_max_tokens: int = Field(default=1200, ge=64, description="completion tokens per call")
    llm_max_prompt_tokens: int = Field(
        default=60_000, ge=1000, description="stop calling tools past this many prompt tokens"
    )
    llm_wall_time_s: float = Field(default=300.0, gt=0)
    llm_max_repairs: int = Field(default=2, ge=0, le=5)
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    llm_structured_output: Literal["json_schema", "json_object", "text"] = Field(
        default="json_schema",
        description="json_schema (OpenAI, vLLM); json_object with a schema (llama.cpp); text",
    )
    llm_tool_choice: Literal["auto", "forced", "none"] = Field(
        default="auto",
        description="auto: the model picks tools; forced: code picks the tool and the model "
        "fills its arguments (small local models); none: no tool calling",
    )
    llm_forced_tool_rounds: int = Field(default=2, ge=0, le=10)
    api_token: SecretStr | None = Field(
        default=None, description="`forest serve`: bearer token every request must carry"
    )
    api_tokens: dict[str, list[str]] | None = Field(
        default=None,
        description="`forest serve`: tenant-scoped bearer tokens, JSON {sha256 hex digest of "
        'the token: [tenant_id, ...]}; "*" is every tenant',
    )
    serve_workers: int = Field(
        default=2, ge=1, le=64, description="`forest serve`: rules-tier worker threads"
    )
    serve_llm_workers: int = Field(
        default=1, ge=1, le=16, description="`forest serve`: LLM-tier worker threads"
    )
    serve_queue_size: int = Field(
        default=256,
        ge=1,
        le=1_000_000,
        description="`forest serve`: rules decisions in flight plus queued LLM investigations "
        "past which a POST gets 429",
    )
    serve_flush_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=86_400,
        description="`forest serve`: seconds between flushes of the journal into the store",
    )
    serve_flush_drain_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="`forest serve`: how long a periodic flush waits for running rules "
        "investigations before trying again later",
    )
    serve_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="`forest serve`: largest request body accepted; a larger one gets 413 "
        "before it is read",
    )

    public_url: str | None = Field(
        default=None,
        description="`forest serve`: the URL people reach it at (links in Slack posts); "
        "defaults to the request's own URL",
    )
    slack_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FOREST_SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN"),
        description="Slack bot token (xoxb-...); with the signing secret, mounts /slack/events",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FOREST_SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET"),
        description="Slack app signing secret; requests whose signature fails get 401",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL"
    )
    slack_tenants: dict[str, list[str]] | None = Field(
        default=None,
        description="Slack channel or workspace (team) id -> the tenants it may investigate, "
        'JSON {id: [tenant_id, ...]}; "*" is every tenant; unset: every tenant',
    )

    @field_validator("api_tokens")
    @classmethod
    def _digests(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        out = {}
        for digest, tenants in value.items():
            key = digest.strip().lower()
            if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
                raise ValueError(
                    "FOREST_API_TOKENS keys are sha256 hex digests of the tokens "
                    "(`printf %s TOKEN | sha256sum`), not the tokens themselves"
                )
            out[key] = tenants
        return out

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None

    @property
    def llm_configured(self) -> bool:
        return self.llm_base_url is not None or self.llm_api_key is not None
