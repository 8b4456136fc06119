"""Secrets never leave: Langfuse spans and CLI output contain neither the PostgreSQL
password nor the Langfuse secret key, on success or on failure."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mas
from mas.errors import MasError
from mas.settings import get_settings
from tests.support.factories import decode
from tests.support.processes import mas_cli, subprocess_env
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_supervisor import TEAM, supervisor_script

PASSWORD = "pg-Pa55word-7f3a9c"


def with_password(dsn: str) -> str:
    """The session's DSN with a password (the embedded server trusts local connections)."""
    return re.sub(r"^(postgresql://[^:/@]+):?[^@]*@", rf"\1:{PASSWORD}@", dsn)


def span_text(exporter: InMemorySpanExporter) -> str:
    parts: list[Any] = []
    for span in exporter.get_finished_spans():
        parts += [span.name, dict(span.attributes or {}), dict(span.resource.attributes)]
        parts += [(e.name, dict(e.attributes or {})) for e in span.events]
    return json.dumps(parts, default=str)


async def test_spans_hold_no_secrets(
    langfuse_spans: InMemorySpanExporter,
    pg_dsn: str,
    thread_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = with_password(pg_dsn)
    assert PASSWORD in dsn
    monkeypatch.setenv("DATABASE_URL", dsn)
    get_settings.cache_clear()
    secret_key = get_settings().langfuse_secret_key
    assert secret_key is not None
    model = ScriptedChatModel(script={a: decode(e) for a, e in supervisor_script().items()})
    task = {"task": "Queue or not?", "workers": TEAM}
    assert (await mas.arun("supervisor", task, thread_id=thread_id, model=model)).status == "done"
    # A failing model whose error text carries the DSN: error spans must not leak it.
    failing = ScriptedChatModel(script={"*": ValueError(f"cannot reach {dsn}")})
    with contextlib.suppress(MasError):
        await mas.arun("supervisor", {**task, "max_attempts": 1}, model=failing)

    text = span_text(langfuse_spans)
    assert "plan_work" in text, "spans were exported"
    assert "cannot reach" in text, "the failing run's error spans were exported"
    assert PASSWORD not in text
    assert secret_key.get_secret_value() not in text


def test_cli_output_holds_no_secrets(pg_dsn: str) -> None:
    env = subprocess_env(
        DATABASE_URL=with_password(pg_dsn),
        LANGFUSE_PUBLIC_KEY="pk-lf-cli",
        LANGFUSE_SECRET_KEY="sk-lf-cli-secret-91c2",
        LANGFUSE_BASE_URL="http://127.0.0.1:9",
    )
    runs = [
        mas_cli("threads", env=env),
        mas_cli("show", "no-such-thread", env=env),
        mas_cli("threads", "--dsn", f"postgresql://mas:{PASSWORD}@127.0.0.1:9/mas", env=env),
        mas_cli("threads", "--dsn", f"host=127.0.0.1 port=9 password={PASSWORD}", env=env),
        mas_cli("threads", "--dsn", f"postgresql://mas:{PASSWORD}@[bad/mas", env=env),
        mas_cli("threads", "--dsn", f"password={PASSWORD} nonsense", env=env),
        mas_cli("threads", "--dsn", f"postgresql://:{PASSWORD}@127.0.0.1:9/mas", env=env),
        mas_cli("threads", "--dsn", f"postgresql://mas:a@{PASSWORD}@127.0.0.1:9/mas", env=env),
        mas_cli("threads", "--dsn", f"postgresql://127.0.0.1:9/mas?password={PASSWORD}", env=env),
        # Not a password by position: only the configured-secret redaction (the same one
        # tracing uses) catches the Langfuse secret key in the error line.
        mas_cli("threads", "--dsn", "postgresql://127.0.0.1:9/sk-lf-cli-secret-91c2", env=env),
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    for result in runs[1:]:
        assert result.returncode == 1 and result.stderr.startswith("error: "), result.stderr
    for result in runs:
        out = result.stdout + result.stderr
        assert PASSWORD not in out, out
        assert "sk-lf-cli-secret-91c2" not in out, out
        assert "Traceback" not in out, out


@pytest.mark.parametrize(
    ("text", "password", "redacted"),
    [
        ("postgresql://:pw-no-user@db/app", "pw-no-user", "postgresql://:***@db/app"),
        ("postgresql://app:p@ss@w0rd@db:5432/app", "p@ss@w0rd", "postgresql://app:***@db:5432/app"),
        ("host=db password=kv-secret dbname=app", "kv-secret", "host=db password=*** dbname=app"),
        ("host=db password = 'a secret' port=5", "a secret", "host=db password = *** port=5"),
        (
            "postgresql://db/app?password=q-secret&x=1",
            "q-secret",
            "postgresql://db/app?password=***&x=1",
        ),
        (
            'failed: "postgresql://app:quoted@db/app"',
            "quoted",
            'failed: "postgresql://app:***@db/app"',
        ),
    ],
)
def test_every_dsn_form_is_redacted(text: str, password: str, redacted: str) -> None:
    from mas_graphs.checkpoints.savers import dsn_passwords, redact_dsn

    assert dsn_passwords(text) == [password]
    assert redact_dsn(text) == redacted
