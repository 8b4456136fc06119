"""Structured agent output: validation, one repair turn, then an error naming agent and output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nodes.structured import StructuredOutputError, ask_structured, extract_json
from state.supervisor import WorkerReport
from tests.scripted import ScriptedChatModel

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
        script={"*": ['{"summary": "x", "confidence": 7}', repaired]}, classify=lambda _: "a"
    )
    reply = await ask_structured(scripted, agent="a", system="s", user="u", schema=WorkerReport)
    assert reply.value.summary == "ok" and reply.usage["calls"] == 2
    (request,) = repair_requests
    assert "confidence" in request and "less than or equal to 1" in request


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
