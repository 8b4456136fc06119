"""The saga traced with the real Langfuse SDK (spans in an in-memory OpenTelemetry
exporter)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mas
from mas.tracing import trace_id_for
from tests.support.scripts_saga import order, saga_model


async def test_every_step_and_compensation_is_a_span(
    langfuse_spans: InMemorySpanExporter, thread_id: str
) -> None:
    data: dict[str, Any] = {
        "order": order(),
        "backoff_s": 0.0,
        "faults": [{"step": "schedule_shipping"}],
    }
    result = await mas.arun("saga", data, thread_id=thread_id, model=saga_model())
    assert result["status"] == "compensated"

    trace_id = trace_id_for(thread_id, 1)
    spans = [
        s
        for s in langfuse_spans.get_finished_spans()
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
