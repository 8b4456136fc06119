"""A bad setting is one line naming the variable and the form it takes, in Python and in
every command: never a pydantic traceback, never a value quoted back (it may be a key)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mas.errors import SettingsError
from mas.settings import Settings, get_settings, variable
from tests.support.processes import mas_cli, subprocess_env

# One unusable value per variable, and the words its error must hold.
BAD: dict[str, tuple[str, str]] = {
    "MAS_MODEL": ("gpt-4", "expected a model spec: ollama:<model>"),
    "MAS_MODELS": ('{"judge": "openai:x"}', "as a JSON object"),
    "MAS_DATA_DIR": ("<a file>", "is a file, not a directory"),
    "DATABASE_URL": ("secret-pw=x y", "expected a PostgreSQL URL"),
    "OLLAMA_HOST": ("ftp://ollama", "expected Ollama's URL"),
    "LANGFUSE_BASE_URL": ("langfuse here", "expected a Langfuse URL"),
    "MAS_LLM_TIMEOUT_S": ("soon", "expected seconds per model call"),
    "MAS_MAX_TOKENS": ("0", "expected tokens per model call"),
    "MAS_CONTEXT_TOKENS": ("100", "at least 512"),
    "MAS_POOL_SIZE": ("many", "at least 1"),
    "MAS_API_KEYS": ("abc-not-json-abcdef", "not valid JSON; expected bearer API keys"),
    "REDIS_URL": ("localhost:6379", "expected a Redis URL"),
    "MAS_MAX_WORKERS": ("5000", "1 to 1000"),
    "MAS_MCP_SERVERS": ("/nowhere/mcp.json", "no file at /nowhere/mcp.json"),
    "MAS_SERVER_PYTHON": ("/nowhere/python3.12", "no file at /nowhere/python3.12"),
    "MAS_MODEL_PRICES": ('{"ollama:x": {"input": -1, "output": 1}}', "prices per million tokens"),
}
UNCHECKED = {"LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"}  # any string is a key
COMMANDS = [
    ["run", "supervisor", "--input", '{"task": "t"}'],
    ["resume", "some-thread"],
    ["threads"],
    ["show", "some-thread"],
    ["serve"],
    ["graph", "supervisor"],
    ["tools"],
    ["delete", "some-thread"],
    ["prune", "some-thread"],
]


@pytest.fixture
def bad_value(tmp_path: Path) -> Iterator[dict[str, str]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    yield {name: value.replace("<a file>", str(a_file)) for name, (value, _) in BAD.items()}
    get_settings.cache_clear()


def test_every_setting_has_a_bad_value_under_test() -> None:
    assert {variable(field) for field in Settings.model_fields} == set(BAD) | UNCHECKED


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_setting_names_its_variable_and_form(
    name: str, bad_value: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, bad_value[name])
    get_settings.cache_clear()
    with pytest.raises(SettingsError) as raised:
        get_settings()
    message = str(raised.value)
    assert message.startswith(name) and BAD[name][1] in message, message
    assert "\n" not in message
    if name in ("MAS_API_KEYS", "DATABASE_URL"):
        assert bad_value[name] not in message, "a secret was quoted back"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_command_says_which_setting_is_bad(command: list[str]) -> None:
    done = mas_cli(*command, env=subprocess_env(MAS_API_KEYS="abc-not-json-abcdef"))
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: MAS_API_KEYS: not valid JSON"), lines
    assert "abc-not-json" not in done.stderr


def test_ollama_host_in_its_own_short_form_is_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11434")
    get_settings.cache_clear()
    try:
        assert get_settings().ollama_host == "http://gpu-box:11434"
    finally:
        monkeypatch.delenv("OLLAMA_HOST")
        get_settings.cache_clear()
