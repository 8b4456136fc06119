"""Every setting the application reads, from the environment, in one place.

`MAS_*` variables configure mas-graphs itself; `DATABASE_URL`, `OLLAMA_HOST` and
the `LANGFUSE_*` variables keep the names their own ecosystems use.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import platformdirs
import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as UnparsableSetting

from mas.errors import SettingsError
from mas_graphs.state.common import MODEL_NAME

MIN_API_KEY_CHARS = 16
HTTP_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
MODEL_SPEC = re.compile(r"^(ollama:\S+|llamacpp(:.+)?|factory:[\w.]+:\w+)$")
REDIS_URL = re.compile(r"^(rediss?://[^\s/]*(/\d+)?|unix://\S+)$")


class ModelPrice(BaseModel):
    """What a model costs, per million tokens, in the operator's currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, le=1_000_000)
    output: float = Field(ge=0, le=1_000_000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAS_", extra="ignore")

    model: str = Field(
        default="llamacpp",
        description="a model spec: ollama:<model>, llamacpp[:<path.gguf>] or "
        "factory:<module>:<callable>",
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="named model specs a run's input may pick, as a JSON object: "
        '{"judge": "ollama:qwen2.5:7b"} (specs as in MAS_MODEL)',
    )
    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("mas-graphs"),
        description="a directory: where the embedded Postgres lives",
    )
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "MAS_DATABASE_URL"),
        description="a PostgreSQL URL, postgresql://user:password@host:5432/database",
    )
    ollama_host: str = Field(
        default="http://127.0.0.1:11434",
        validation_alias=AliasChoices("OLLAMA_HOST", "MAS_OLLAMA_HOST"),
        description="Ollama's URL, http://host:11434 (or host:port)",
    )
    langfuse_public_key: SecretStr | None = Field(
        default=None, validation_alias="LANGFUSE_PUBLIC_KEY"
    )
    langfuse_secret_key: SecretStr | None = Field(
        default=None, validation_alias="LANGFUSE_SECRET_KEY"
    )
    langfuse_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LANGFUSE_BASE_URL", "LANGFUSE_HOST"),
        description="a Langfuse URL, https://langfuse.example.com",
    )
    llm_timeout_s: float = Field(
        default=300.0, gt=0, description="seconds per model call, a number above 0"
    )
    max_tokens: int = Field(default=512, gt=0, description="tokens per model call, above 0")
    context_tokens: int = Field(
        default=4096, ge=512, description="the llama.cpp context in tokens, at least 512"
    )
    pool_size: int = Field(
        default=10, ge=1, description="PostgreSQL connections per process, at least 1"
    )
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description="bearer API keys of `mas serve` per user, as a JSON object: "
        f'{{"alice": "<a random key of {MIN_API_KEY_CHARS}+ characters>"}}',
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "MAS_REDIS_URL"),
        description="a Redis URL, redis://host:6379/0 (rediss:// or unix:// too)",
    )
    max_workers: int = Field(
        default=16, ge=1, le=1_000, description="most workers one supervisor may have, 1 to 1000"
    )
    mcp_servers: Path | None = Field(
        default=None,
        description="the path of a JSON file of MCP servers whose tools workers may use: "
        '{"servers": {"<name>": {"transport": "stdio", "command": ...}}}',
    )
    server_python: Path | None = Field(
        default=None, description="the path of a Python >= 3.12 for `mas serve`"
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="prices per million tokens, for runs' estimated cost: "
        '{"ollama:llama3.2": {"input": 0.1, "output": 0.4}}; a provider alone '
        '("llamacpp") prices its every model, "*" any other',
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

    @field_validator("model")
    @classmethod
    def _model_spec(cls, spec: str) -> str:
        if not MODEL_SPEC.match(spec.strip()):
            raise ValueError(f"{spec!r} is not a model spec")
        return spec

    @field_validator("models")
    @classmethod
    def _model_specs(cls, models: dict[str, str]) -> dict[str, str]:
        if bad := sorted(name for name, spec in models.items() if not MODEL_SPEC.match(spec)):
            raise ValueError(f"not a model spec for {bad}")
        return models

    @field_validator("data_dir")
    @classmethod
    def _a_directory(cls, path: Path) -> Path:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} is a file, not a directory")
        return path

    @field_validator("mcp_servers", "server_python")
    @classmethod
    def _a_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"no file at {path}")
        return path

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            try:
                conninfo_to_dict(url.get_secret_value())
            except psycopg.ProgrammingError:
                raise ValueError("not a PostgreSQL connection string") from None
        return url

    @field_validator("ollama_host", mode="before")
    @classmethod
    def _ollama_scheme(cls, host: object) -> object:
        # Ollama's own clients take host:port (the form `ollama serve` binds to) as http.
        if isinstance(host, str) and "://" not in host:
            return f"http://{host}"
        return host

    @field_validator("ollama_host", "langfuse_base_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not HTTP_URL.match(url):
            raise ValueError("not an http:// or https:// URL")
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url is not None and not REDIS_URL.match(url):
            raise ValueError("not a redis://, rediss:// or unix:// URL")
        return url

    @property
    def tracing_enabled(self) -> bool:
        return bool(self.langfuse_public_key and self.langfuse_secret_key)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, or `SettingsError`: one line naming the variable and its form."""
    try:
        return Settings()
    except UnparsableSetting as error:  # JSON that does not parse
        field = re.search(r'field "(\w+)"', str(error))
        raise bad_setting(field.group(1) if field else "", "not valid JSON") from None
    except ValidationError as error:
        first = error.errors()[0]
        raise bad_setting(str(first["loc"][0]), first["msg"]) from None


def variable(field: str) -> str:
    """The environment variable a setting is read from."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias) if alias else f"MAS_{field.upper()}"


def bad_setting(field: str, problem: str) -> SettingsError:
    known = next((name for name in Settings.model_fields if field in (name, variable(name))), None)
    if known is None:
        return SettingsError(f"a setting is invalid: {problem}")
    name, form = variable(known), Settings.model_fields[known].description
    problem = problem.removeprefix("Value error, ")
    said = problem if problem.startswith(name) else f"{name}: {problem}"
    return SettingsError(f"{said}; expected {form}")
