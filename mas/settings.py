"""Every setting the application reads, from the environment, in one place.

`MAS_*` variables configure mas-graphs itself; `DATABASE_URL`, `OLLAMA_HOST` and
the `LANGFUSE_*` variables keep the names their own ecosystems use.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAS_", extra="ignore")

    model: str = Field(
        default="llamacpp",
        description="Default model spec: 'ollama:<model>' or 'llamacpp[:<path.gguf>]'.",
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

    @property
    def tracing_enabled(self) -> bool:
        return bool(self.langfuse_public_key and self.langfuse_secret_key)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
