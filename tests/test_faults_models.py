"""The model misbehaves: unreachable Ollama, a timeout, malformed or empty output,
output that fails validation, a model that never stops calling tools. Each ends in a
retry, a fallback or a clear recorded failure, within a bounded time, never a hang."""

from __future__ import annotations

import time
from typing import Any

import pytest

import mas
from mas.errors import MasError, ModelUnavailableError, RunFailedError
from tests.support.factories import decode
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_debate import STANCES, debate_agent, debate_script
from tests.support.scripts_saga import order, saga_agent, saga_script
from tests.support.scripts_supervisor import TEAM, supervisor_script

FAST = {"backoff_s": 0.0, "max_attempts": 2}
BAD_REPLIES: dict[str, Any] = {
    "malformed": "{not json",
    "empty": "",
    "invalid": {"summary": "x", "findings": "none"},
    "transient error": ConnectionError("connection reset"),
}


def scripted(script: dict[str, Any]) -> dict[str, Any]:
    return {a: e if isinstance(e, BaseException) else decode(e) for a, e in script.items()}


def assert_recorded(result: Any) -> None:
    """A finished run (the failure recorded in its state), or a one-line, resumable
    run failure: never a traceback, never a hang."""
    if isinstance(result, MasError):
        assert isinstance(result, RunFailedError) and "mas resume" in str(result)
    else:
        assert result.status in ("done", "interrupted")


def bounded(call: Any, limit_s: float = 30.0) -> Any:
    started = time.monotonic()
    try:
        return call()
    except MasError as error:
        assert "\n" not in str(error)
        return error
    finally:
        assert time.monotonic() - started < limit_s


@pytest.mark.parametrize("kind", sorted(BAD_REPLIES))
def test_supervisor_worker_misbehaves_then_fallback_or_recorded_failure(kind: str) -> None:
    script = supervisor_script(analyst=BAD_REPLIES[kind])
    model = ScriptedChatModel(script=scripted(script))
    result = bounded(
        lambda: mas.run("supervisor", {"task": "t", "workers": TEAM, **FAST}, model=model)
    )
    assert isinstance(result, mas.RunResult) and result.status == "done"
    assert result["results"]["analyst"]["status"] in ("fallback", "failed")
    assert result["results"]["researcher"]["status"] == "ok"
    assert result["synthesis"]["summary"]


def test_supervisor_worker_timeout_is_bounded() -> None:
    model = ScriptedChatModel(script=scripted(supervisor_script()), delays={"analyst": 60})
    task = {"task": "t", "workers": TEAM, "worker_timeout_s": 0.5, **FAST}
    result = bounded(lambda: mas.run("supervisor", task, model=model), limit_s=20)
    assert result.status == "done"
    assert result["results"]["analyst"]["status"] in ("fallback", "failed")


def test_worker_that_never_stops_calling_tools_is_cut_off() -> None:
    workers = [{"name": "researcher", "role": "Find facts [researcher]", "tools": ["calculator"]}]
    loop = {"action": "tool", "tool": "calculator", "tool_input": "1+1"}
    script = supervisor_script(
        planner={"steps": [{"worker": "researcher", "depends_on": []}], "rationale": "r"},
        researcher=loop,
    )
    model = ScriptedChatModel(script=scripted(script))
    result = bounded(
        lambda: mas.run("supervisor", {"task": "t", "workers": workers, **FAST}, model=model)
    )
    assert isinstance(result, mas.RunResult) and result.status == "done"
    assert model.calls.count("researcher") < 40, "the ReAct loop is bounded"


@pytest.mark.parametrize("kind", ["malformed", "empty", "transient error"])
def test_debater_or_judge_misbehaves(kind: str) -> None:
    script = debate_script(negative=BAD_REPLIES[kind], judge=BAD_REPLIES[kind])
    model = ScriptedChatModel(script=scripted(script), classify=debate_agent)
    task = {"question": "q", "stances": STANCES, "rounds": 1, **FAST}
    result = bounded(lambda: mas.run("debate", task, model=model))
    assert_recorded(result)


@pytest.mark.parametrize("kind", ["malformed", "empty"])
def test_an_unreadable_risk_verdict_is_never_an_approval(kind: str) -> None:
    """The safety rule: no readable approval, no money moved without a person."""
    model = ScriptedChatModel(
        script=scripted(saga_script(BAD_REPLIES[kind])),
        classify=saga_agent,
    )
    result = bounded(lambda: mas.run("saga", {"order": order(), **FAST}, model=model))
    assert result.status == "interrupted"
    (pending,) = result.interrupts
    assert (pending["kind"], pending["step"]) == ("step_approval", "charge_payment")
    decision = result["effects"]["risk_check"]["detail"]
    assert decision["decision"] == "flag" and decision["reason"].startswith("risk agent failed")
    assert "charge_payment" not in result["effects"]


def test_a_risk_check_that_keeps_erroring_fails_the_step_not_the_safety_rule() -> None:
    model = ScriptedChatModel(
        script=scripted(saga_script(BAD_REPLIES["transient error"])),
        classify=saga_agent,
    )
    result = bounded(lambda: mas.run("saga", {"order": order(), **FAST}, model=model))
    assert not isinstance(result, MasError), result
    # The risk check is the first step: failing it leaves nothing to undo, no money moved.
    assert result["status"] == "compensated"
    assert result["failure"]["step"] == "risk_check"
    assert "ConnectionError" in result["failure"]["error"]
    assert set(result["effects"]) == set()


def test_unreachable_ollama_fails_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    from mas.settings import get_settings

    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    get_settings.cache_clear()
    try:
        error = bounded(lambda: mas.run("supervisor", {"task": "t"}, model="ollama:llama3.2"))
        assert isinstance(error, ModelUnavailableError) and "ollama serve" in str(error)
    finally:
        get_settings.cache_clear()
