"""Structured agent output: validation, one repair turn, then an error naming agent and output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mas_graphs.nodes.structured import StructuredOutputError, ask_structured, extract_json
from mas_graphs.state.supervisor import WorkerReport
from tests.support.scripted import ScriptedChatModel

GOOD = json.dumps({"summary": "ok", "findings": [], "confidence": 0.5})


def model(*replies: str) -> ScriptedChatModel:
    return ScriptedChatModel(script={"*": list(replies)}, classify=lambda _: "agent")


async def test_valid_reply_is_parsed_with_usage() -> None:
    reply = await ask_structured(model(GOOD), agent="a", system="s", user="u", schema=WorkerReport)
    assert reply.value.summary == "ok"
    assert reply.usage["calls"] == 1 and reply.usage["output_tokens"] > 0


async def test_invalid_reply_gets_one_repair_turn_that_names_the_problem() -> None:
    repair_requests: list[str] = []

    def repaired(messages: list[Any]) -> str:
        repair_requests.append(messages[-1].text)
        return GOOD

    scripted = ScriptedChatModel(
        script={"*": ['{"summary": "x"}', repaired]}, classify=lambda _: "a"
    )
    reply = await ask_structured(scripted, agent="a", system="s", user="u", schema=WorkerReport)
    assert reply.value.summary == "ok" and reply.usage["calls"] == 2
    (request,) = repair_requests
    assert "confidence: Field required" in request
    assert reply.usage["notes"] == [
        "attempt 1 invalid: confidence: Field required (got {'summary': 'x'})"
    ]


async def test_second_invalid_reply_raises_with_agent_and_raw_output() -> None:
    scripted = model("no json here", "still none")
    with pytest.raises(StructuredOutputError) as caught:
        await ask_structured(scripted, agent="critic", system="s", user="u", schema=WorkerReport)
    assert "agent 'critic'" in str(caught.value) and "still none" in str(caught.value)
    assert len(scripted.calls) == 2


async def test_check_failures_also_get_the_repair_turn() -> None:
    def no_ok(report: WorkerReport) -> None:
        if report.summary == "ok":
            raise ValueError("summary must not be 'ok'")

    scripted = model(GOOD, GOOD)
    with pytest.raises(StructuredOutputError, match="summary must not be 'ok'"):
        await ask_structured(
            scripted, agent="a", system="s", user="u", schema=WorkerReport, check=no_ok
        )


def test_json_is_found_inside_fences_and_chatter() -> None:
    assert extract_json('Sure!\n```json\n{"a": 1}\n```') == '{"a": 1}'
    assert extract_json('here: {"a": {"b": 2}} done') == '{"a": {"b": 2}}'


async def test_a_reply_over_its_bounds_is_fitted_and_noted_not_failed() -> None:
    long_summary = "word " * 300  # 1,500 characters; the bound is 1,000
    findings = [{"topic": f"topic {i}", "claim": "c"} for i in range(7)]
    reply_json = json.dumps({"summary": long_summary, "findings": findings, "confidence": 7})
    reply = await ask_structured(
        model(reply_json), agent="a", system="s", user="u", schema=WorkerReport
    )
    report = reply.value
    assert len(report.summary) <= 1_000 and report.summary.endswith("word…")
    assert len(report.findings) == 4 and report.confidence == 1
    assert reply.usage["calls"] == 1 and reply.usage["ok"]
    assert reply.usage["notes"] == [
        "summary: cut from 1500 to 1000 characters",
        "findings: kept the first 4 of 7 items",
        "confidence: 7 clamped to 1",
    ]


def test_instructions_describe_fields_in_words_without_placeholders() -> None:
    from mas_graphs.nodes.structured import schema_instructions
    from mas_graphs.state.supervisor import plan_schema

    text = schema_instructions(WorkerReport)
    assert "<" not in text and ">" not in text
    assert "- summary: text of at most 1000 characters. Your answer for your role" in text
    assert "  - topic: text of at most 60 characters" in text
    assert "- confidence: a number from 0 to 1" in text
    # Worker names come from the input: the instructions point at them, never list them.
    plan = schema_instructions(plan_schema(("alpha_secret", "beta")))
    assert "alpha_secret" not in plan
    assert "one of the names listed under 'The team' in the user message" in plan
