"""Shared fixtures: a real PostgreSQL (embedded pgserver, or DATABASE_URL) and helpers.

The environment is set before anything reads settings, so the runner, the CLI
subprocesses and the notebooks all use this session's database and data dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugins import install_test_plugins

ROOT = Path(__file__).resolve().parent.parent
_session_dir = Path(tempfile.mkdtemp(prefix="mas-tests-"))
os.environ.setdefault("MAS_DATA_DIR", str(_session_dir / "data"))
# The test skill registers through an entry point, like any plugin; child processes get
# the same import path (subprocess_env).
PLUGINS = str(install_test_plugins(_session_dir / "plugins"))
sys.path.append(PLUGINS)
os.environ["PYTHONPATH"] = os.pathsep.join((str(ROOT), PLUGINS))
# Tracing is opt-in per test (tests/test_tracing.py sets the keys itself).
for _key in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"):
    os.environ.pop(_key, None)


@pytest.fixture(scope="session", autouse=True)
def pg_dsn() -> Iterator[str]:
    """DATABASE_URL if given, else an embedded server in a temp dir, deleted afterwards."""
    from mas.settings import get_settings

    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    from mas_graphs.checkpoints.embedded import embedded_dsn

    dsn = embedded_dsn(_session_dir, cleanup_mode="delete")
    os.environ["DATABASE_URL"] = dsn
    get_settings.cache_clear()
    yield dsn


@pytest.fixture
def langfuse_spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real Langfuse SDK exporting spans to memory, under fresh keys the runner uses.

    Langfuse keeps one set of resources per public key, so fresh keys give each test its
    own exporter. Yields the `InMemorySpanExporter`.
    """
    from langfuse import Langfuse
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from mas.settings import get_settings

    public_key, secret_key = f"pk-lf-{uuid.uuid4().hex[:8]}", f"sk-lf-{uuid.uuid4().hex[:8]}"
    exporter = InMemorySpanExporter()
    client = Langfuse(
        public_key=public_key,
        secret_key=secret_key,
        base_url="http://127.0.0.1:9",
        tracer_provider=TracerProvider(),
        span_exporter=exporter,
    )
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", public_key)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", secret_key)
    get_settings.cache_clear()
    try:
        yield exporter
    finally:
        client.shutdown()
        monkeypatch.delenv("LANGFUSE_PUBLIC_KEY")
        monkeypatch.delenv("LANGFUSE_SECRET_KEY")
        get_settings.cache_clear()


@pytest.fixture
def thread_id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def call_log(tmp_path: Path) -> Path:
    return tmp_path / "calls.log"


def logged_calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200", **extra}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def mas_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the `mas` CLI in a new process, the way a user would."""
    return subprocess.run(
        [sys.executable, "-m", "mas", *args],
        cwd=ROOT,
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_mas(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mas", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def listed_status(thread_id: str, env: dict[str, str] | None = None) -> str:
    """The status `mas threads` shows on this thread's own row."""
    listing = mas_cli("threads", env=env)
    row = next(line for line in listing.stdout.splitlines() if thread_id in line)
    cells = [cell.strip() for cell in row.split("│")]  # | thread id | pattern | status | ...
    return cells[3]


def wait_for(
    predicate: Any, timeout: float = 60.0, what: str = "condition", every: float = 0.05
) -> None:
    """Poll `predicate` until it holds, or fail naming `what` after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def json_tail(output: str) -> Any:
    """The JSON document a `--json` command printed last."""
    import json

    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def server_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python >= 3.12 environment with Aegra and this project, for `mas serve`."""
    from tests.servers import build_server_python

    return build_server_python(tmp_path_factory.mktemp("server-python"))
