"""End to end on the embedded model (SmolLM2-135M-Instruct through llama.cpp), one run
per pattern on the README's inputs, stored in PostgreSQL. A 135M model is weak, so
these check what a reader would notice first, not wisdom: no copied placeholders or
schema words, no failed agent, debaters on their side, answers about the task
(benchmarks/quality_checks.py; `python -m benchmarks.quality` reports the rates)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import mas
from benchmarks.quality_checks import Quality, check
from mas_graphs.checkpoints.admin import get_thread
from mas_graphs.checkpoints.savers import CONNECTION_KWARGS
from mas_graphs.state.debate import INCONCLUSIVE
from tests.support.scripts_saga import order, saga_rows

pytestmark = pytest.mark.embedded


def assert_readable(quality: Quality) -> None:
    assert quality.placeholder_fields == [], "an agent copied a placeholder or schema words"
    assert quality.failed_agents == [], "an agent failed"
    assert quality.off_side == [], "a debater argued off its side"
    assert quality.shares_task_words, "the answer shares no content word with the task"


async def test_supervisor_on_the_readme_task(pg_dsn: str, thread_id: str) -> None:
    data = {
        "task": "Should a five-person team build its own job queue or use PostgreSQL SKIP LOCKED?"
    }
    result = await mas.arun("supervisor", data, thread_id=thread_id, model="llamacpp")
    assert result.status == "done"
    assert set(result["results"]) == {"researcher", "analyst", "critic"}
    assert_readable(check("supervisor", data, dict(result)))
    assert 0 <= result["synthesis"]["confidence"] <= 1
    assert sum(u["output_tokens"] for u in result["usage"]) > 0
    with psycopg.connect(pg_dsn, **CONNECTION_KWARGS) as conn:
        record = get_thread(conn, thread_id)
    assert record is not None and record.status == "done" and record.model_spec == "llamacpp"


async def test_debate_on_the_readme_question() -> None:
    data: dict[str, Any] = {
        "question": "Should small teams adopt microservices?",
        "rounds": 2,
        "compare": True,
    }
    result = await mas.arun("debate", data, model="llamacpp")
    assert result.status == "done"
    assert_readable(check("debate", data, dict(result)))
    first = [t for t in result["transcript"] if t["round"] == 1]
    assert [(t["speaker"], t["position"]) for t in first] == [
        ("affirmative", "affirmative"),
        ("negative", "negative"),
    ]
    verdict = result["verdict"]
    assert verdict["decided_by"] == "judge" and verdict["note"] == ""
    assert verdict["winner"] in {"affirmative", "negative", INCONCLUSIVE}
    comparison = result["comparison"]
    assert comparison["self_consistency"]["calls"] == comparison["debate"]["calls"]
    assert comparison["self_consistency"]["distinct_texts"] >= 2, "warm samples differ"
    assert result["totals"]["all"]["failed_calls"] == 0


async def test_label_skill_on_small_scenarios() -> None:
    data = {
        "skill": "label",
        "base_size": 1,
        "scenarios": [
            {"name": "simple"},
            {"name": "medium", "scale": 2, "batch_size": 2},
            {"name": "complex", "scale": 2, "batch_size": 2},
        ],
    }
    result = await mas.arun("scenarios", data, model="llamacpp")
    summaries = result["aggregate"]["scenarios"]
    assert {s["status"] for s in summaries.values()} == {"done"}
    assert sum(s["items_processed"] for s in summaries.values()) == 5
    assert_readable(check("scenarios", data, dict(result)))
    for summary in summaries.values():
        assert 0 <= summary["quality"]["accuracy"] <= 1
    assert len(result["timeline"]) == 5


async def test_saga_on_the_readme_order(thread_id: str) -> None:
    """The risk agent is a real (tiny) LLM: whatever it decides, the saga completes,
    after a person's approval if it flagged the order."""
    data = {"order": order(), "backoff_s": 0.0}
    result = await mas.arun("saga", data, thread_id=thread_id, model="llamacpp")
    if result.status == "interrupted":
        assert result.interrupts[0]["step"] == "charge_payment"
        result = await mas.aresume(thread_id, answer={"approve": True})
    assert result["status"] == "completed"
    assert_readable(check("saga", data, dict(result)))
    assert result["effects"]["risk_check"]["detail"]["decision"] in ("approve", "flag")
    assert {table: len(r) for table, r in (await saga_rows(thread_id)).items()} == {
        "order_risk_checks": 1,
        "order_reservations": 1,
        "order_payments": 1,
        "order_shipments": 1,
    }
