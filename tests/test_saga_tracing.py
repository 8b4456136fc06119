"""The saga traced with the real Langfuse SDK (spans in an in-memory OpenTelemetry
exporter), and one end-to-end run on the embedded Gemma model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langfuse import Langfuse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mas
from mas.settings import get_settings
from mas.tracing import trace_id_for
from tests.scripts_saga import order
from tests.test_saga_graph import rows, scripted

PUBLIC_KEY, SECRET_KEY = "pk-lf-saga", "sk-lf-saga"


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    client = Langfuse(
        public_key=PUBLIC_KEY,
        secret_key=SECRET_KEY,
        base_url="http://127.0.0.1:9",
        tracer_provider=TracerProvider(),
        span_exporter=exporter,
    )
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", PUBLIC_KEY)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", SECRET_KEY)
    get_settings.cache_clear()
    yield exporter
    client.flush()
    monkeypatch.delenv("LANGFUSE_PUBLIC_KEY")
    monkeypatch.delenv("LANGFUSE_SECRET_KEY")
    get_settings.cache_clear()


async def test_every_step_and_compensation_is_a_span(
    exporter: InMemorySpanExporter, thread_id: str
) -> None:
    data: dict[str, Any] = {
        "order": order(),
        "backoff_s": 0.0,
        "faults": [{"step": "schedule_shipping"}],
    }
    result = await mas.arun("saga", data, thread_id=thread_id, model=scripted())
    assert result["status"] == "compensated"

    trace_id = trace_id_for(thread_id, 1)
    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.context is not None and f"{s.context.trace_id:032x}" == trace_id
    ]
    names = [s.name for s in spans]
    for step in ("risk_check", "reserve_inventory", "charge_payment"):
        assert names.count(step) == 1, step
    # Three attempts of the failing step: each is a span.
    assert names.count("schedule_shipping") == 3
    for compensation in ("cancel_shipment", "refund_payment", "release_reservation"):
        assert names.count(compensation) == 1, compensation
    assert "ScriptedChatModel" in names, "the risk agent's model call is traced too"
    sessions = {(s.attributes or {}).get("session.id") for s in spans} - {None}
    assert sessions == {thread_id}


@pytest.mark.gemma
async def test_order_on_the_embedded_gemma_model(thread_id: str) -> None:
    """The risk agent is a real (tiny) LLM: whatever it decides, the saga completes,
    after a person's approval if it flagged the order."""
    data = {"order": order(), "backoff_s": 0.0}
    result = await mas.arun("saga", data, thread_id=thread_id, model="llamacpp")
    if result.status == "interrupted":
        assert result.interrupts[0]["step"] == "charge_payment"
        result = await mas.aresume(thread_id, answer={"approve": True})
    assert result["status"] == "completed"
    assert result["effects"]["risk_check"]["detail"]["decision"] in ("approve", "flag")
    assert {table: len(r) for table, r in (await rows(thread_id)).items()} == {
        "order_risk_checks": 1,
        "order_reservations": 1,
        "order_payments": 1,
        "order_shipments": 1,
    }
