"""Tracing with the real Langfuse SDK: spans captured by an in-memory OpenTelemetry exporter."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mas
from mas.tracing import trace_id_for
from tests.support.factories import decode
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_supervisor import TEAM, supervisor_script


def names(spans: list[ReadableSpan]) -> list[str]:
    return [span.name for span in spans]


def of_trace(spans: tuple[ReadableSpan, ...], trace_id: str) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and f"{s.context.trace_id:032x}" == trace_id]


def attribute(span: ReadableSpan, key: str) -> Any:
    return (span.attributes or {}).get(key)


async def test_run_and_resume_are_traced_in_one_session(
    langfuse_spans: InMemorySpanExporter, thread_id: str
) -> None:
    model = ScriptedChatModel(script={a: decode(e) for a, e in supervisor_script().items()})
    task = {"task": "Queue or not?", "workers": TEAM, "review_plan": True}
    paused = await mas.arun("supervisor", task, thread_id=thread_id, model=model)
    assert paused.status == "interrupted"
    done = await mas.aresume(thread_id, answer={"approve": True}, model=model)
    assert done.status == "done"

    spans = langfuse_spans.get_finished_spans()
    first, second = (
        of_trace(spans, trace_id_for(thread_id, 1)),
        of_trace(spans, trace_id_for(thread_id, 2)),
    )
    assert {"plan_work", "review_plan"} <= set(names(first))
    assert "run_worker" not in names(first)
    # One span per executed node, each Send branch its own span.
    assert names(second).count("run_worker") == 3
    assert {"collect_batch", "detect_conflicts", "synthesize"} <= set(names(second))
    # LLM calls are spans too: planner (run 1); three workers, detector, synthesizer (run 2).
    assert names(first).count("ScriptedChatModel") == 1
    assert names(second).count("ScriptedChatModel") == 5
    sessions = {attribute(s, "session.id") for s in first + second} - {None}
    assert sessions == {thread_id}
    assert len(first) + len(second) == len(spans), "every span belongs to the run's two traces"


async def test_without_keys_no_client_is_created(thread_id: str) -> None:
    from mas import tracing

    before = dict(tracing._clients)
    model = ScriptedChatModel(script={a: decode(e) for a, e in supervisor_script().items()})
    result = await mas.arun("supervisor", {"task": "t", "workers": TEAM}, model=model)
    assert result.status == "done"
    assert tracing._clients == before
