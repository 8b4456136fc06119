"""Shared fixtures: a real PostgreSQL (embedded pgserver, or DATABASE_URL), Langfuse spans
in memory, a Python for the server. Helpers live in tests/support/.

The environment is set before anything reads settings, so the runner, the CLI
subprocesses and the notebooks all use this session's database and data dir.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.plugins import install_test_plugins
from tests.support.processes import ROOT

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


@pytest.fixture(scope="session")
def server_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python >= 3.12 environment with Aegra and this project, for `mas serve`."""
    from tests.support.servers import build_server_python

    return build_server_python(tmp_path_factory.mktemp("server-python"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Selenium (installed on a fresh machine)."""
    from tests.support.browser import ensure_chromium, headless_chrome

    ensure_chromium()
    driver = headless_chrome()
    try:
        yield driver
    finally:
        driver.quit()
