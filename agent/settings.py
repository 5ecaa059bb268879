"""Forest's settings: one class, built once at the entry point and passed down.

Environment variables use the ``FOREST_`` prefix (``FOREST_LLM_MODEL``...); the LLM key
and base URL also honour the OpenAI SDK's ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``.
Nothing else in Forest reads ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
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

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None

    @property
    def llm_configured(self) -> bool:
        return self.llm_base_url is not None or self.llm_api_key is not None
