"""Every setting the application reads, from the environment, in one place.

`MAS_*` variables configure mas-graphs itself; `DATABASE_URL`, `OLLAMA_HOST` and
the `LANGFUSE_*` variables keep the names their own ecosystems use.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from state.common import MODEL_NAME

MIN_API_KEY_CHARS = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAS_", extra="ignore")

    model: str = Field(
        default="llamacpp",
        description="Default model spec: 'ollama:<model>' or 'llamacpp[:<path.gguf>]'.",
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Named model specs a run's input may pick by name, as JSON "
        '(MAS_MODELS=\'{"judge": "ollama:qwen2.5:7b"}\').',
    )
    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("mas-graphs"),
        description="Where the embedded Postgres and the unpacked model live.",
    )
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MAS_DATABASE_URL")
    )
    ollama_host: str = Field(
        default="http://127.0.0.1:11434",
        validation_alias=AliasChoices("OLLAMA_HOST", "MAS_OLLAMA_HOST"),
    )
    langfuse_public_key: SecretStr | None = Field(
        default=None, validation_alias="LANGFUSE_PUBLIC_KEY"
    )
    langfuse_secret_key: SecretStr | None = Field(
        default=None, validation_alias="LANGFUSE_SECRET_KEY"
    )
    langfuse_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("LANGFUSE_BASE_URL", "LANGFUSE_HOST")
    )
    llm_timeout_s: float = Field(default=300.0, gt=0, description="Per model call.")
    max_tokens: int = Field(default=512, gt=0, description="Per model call.")
    context_tokens: int = Field(default=4096, ge=512, description="llama.cpp context.")
    pool_size: int = Field(default=10, ge=1, description="Postgres connection pool size.")
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description="Bearer API keys of a served graph, per user, as JSON "
        '(MAS_API_KEYS=\'{"alice": "<key>"}\').',
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "MAS_REDIS_URL"),
        description="With Redis, many server processes share the runs (mas serve).",
    )
    max_workers: int = Field(
        default=16, ge=1, le=1_000, description="Most workers one supervisor may have."
    )
    mcp_servers: Path | None = Field(
        default=None,
        description="A JSON file of MCP servers whose tools workers may be allowed "
        '({"servers": {"<name>": {"transport": "stdio", "command": ...}}}).',
    )
    server_python: Path | None = Field(
        default=None, description="A Python >= 3.12 for the Aegra server (mas serve)."
    )

    @field_validator("models")
    @classmethod
    def _model_names(cls, models: dict[str, str]) -> dict[str, str]:
        if bad := sorted(name for name in models if not MODEL_NAME.match(name)):
            raise ValueError(f"MAS_MODELS names must match {MODEL_NAME.pattern}: {bad}")
        return models

    @field_validator("api_keys")
    @classmethod
    def _strong_keys(cls, keys: dict[str, str]) -> dict[str, str]:
        if weak := sorted(user for user, key in keys.items() if len(key) < MIN_API_KEY_CHARS):
            raise ValueError(
                f"MAS_API_KEYS: keys need at least {MIN_API_KEY_CHARS} characters: {weak}"
            )
        return keys

    @property
    def tracing_enabled(self) -> bool:
        return bool(self.langfuse_public_key and self.langfuse_secret_key)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
