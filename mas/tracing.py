"""Langfuse tracing for runs: one trace per run, the thread id as the session.

With `LANGFUSE_PUBLIC_KEY` and `LANGFUSE_SECRET_KEY` set, each run and resume
gets a `langfuse.langchain.CallbackHandler`, so every executed node (each `Send`
branch separately) and every LLM call becomes a span. The trace id is derived
from the thread id and the run's number on that thread, so a resumed run is a
new trace in the same session and anyone can compute either id. Without keys
no client is created and tracing costs nothing.

Nothing configured as secret reaches a span: the Langfuse client masks inputs, outputs
and metadata, and the callback handler redacts error messages (an exception's text can
carry a DSN), replacing the PostgreSQL password, the Langfuse secret key and any
password in a connection string with `***`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from mas.secrets import configured_secrets, redact
from mas.settings import Settings

_clients: dict[str, Any] = {}


def masker(secrets: list[str]) -> Any:
    """A Langfuse `mask` function: redacts secrets in every string of a span's data."""

    def mask(*, data: Any, **_: Any) -> Any:
        if isinstance(data, str):
            return redact(data, secrets)
        if isinstance(data, dict):
            return {key: mask(data=value) for key, value in data.items()}
        if isinstance(data, list | tuple):
            return [mask(data=value) for value in data]
        return data

    return mask


@dataclass(frozen=True)
class RunTrace:
    """What a run adds to its LangGraph config to be traced."""

    callbacks: list[BaseCallbackHandler] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    trace_id: str | None = None


def trace_id_for(thread_id: str, run_number: int) -> str:
    from langfuse import Langfuse

    return str(Langfuse.create_trace_id(seed=f"{thread_id}:{run_number}"))


def langfuse_client(settings: Settings) -> Any:
    """The process's Langfuse client for the configured key (created once)."""
    from langfuse import Langfuse

    assert settings.langfuse_public_key and settings.langfuse_secret_key
    public_key = settings.langfuse_public_key.get_secret_value()
    if public_key not in _clients:
        _clients[public_key] = Langfuse(
            public_key=public_key,
            secret_key=settings.langfuse_secret_key.get_secret_value(),
            base_url=settings.langfuse_base_url,
            mask=masker(configured_secrets(settings)),
        )
    return _clients[public_key]


@contextmanager
def run_trace(
    settings: Settings, *, thread_id: str, run_number: int, pattern: str
) -> Iterator[RunTrace]:
    """Tracing for one run; spans are flushed when the block exits, even on error."""
    if not settings.tracing_enabled:
        yield RunTrace()
        return
    from langfuse.langchain import CallbackHandler

    secrets = configured_secrets(settings)

    class RedactingHandler(CallbackHandler):
        """Error messages become span status messages; redact them first."""

        def _get_error_level_and_status_message(self, error: BaseException) -> Any:
            level, message = super()._get_error_level_and_status_message(error)
            return level, redact(message, secrets)

    client = langfuse_client(settings)
    trace_id = trace_id_for(thread_id, run_number)
    assert settings.langfuse_public_key
    handler = RedactingHandler(
        public_key=settings.langfuse_public_key.get_secret_value(),
        trace_context={"trace_id": trace_id},
    )
    metadata = {
        "langfuse_session_id": thread_id,
        "langfuse_tags": [f"pattern:{pattern}", f"run:{run_number}"],
    }
    try:
        yield RunTrace(callbacks=[handler], metadata=metadata, trace_id=trace_id)
    finally:
        client.flush()
