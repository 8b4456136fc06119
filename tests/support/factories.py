"""Scripted models built from environment variables, for `--model factory:...` in subprocesses.

MAS_TEST_SCRIPT   path of a JSON script: {agent: reply | [replies]}, where a reply is a
                  string (returned as is), an object (returned as JSON), or
                  {"raise": "ConnectionError" | "ValueError", "message": "..."}
MAS_TEST_DELAYS   JSON {agent: seconds} ("*" for every agent)
MAS_TEST_CALL_LOG path of a file that gets one line per model call (the agent's name)
MAS_TEST_CALL_TRACE path of a file that gets "start|end AGENT THREAD PID TIME TASK" per call
MAS_TEST_CLASSIFY "module:function" naming the agent of a system prompt (default: the
                  supervisor's agents, tests.support.scripted.supervisor_agent)
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.scripted import ScriptedChatModel

ERRORS: dict[str, type[Exception]] = {
    "ConnectionError": ConnectionError,
    "ValueError": ValueError,
    "TimeoutError": TimeoutError,
}


def decode(entry: Any) -> Any:
    if isinstance(entry, list):
        return [decode(item) for item in entry]
    if isinstance(entry, dict) and "raise" in entry:
        return ERRORS[entry["raise"]](entry.get("message", "scripted failure"))
    if isinstance(entry, str | BaseException) or callable(entry):
        return entry
    return json.dumps(entry)


def encode(script: dict[str, Any]) -> str:
    def one(entry: Any) -> Any:
        if isinstance(entry, list):
            return [one(item) for item in entry]
        if isinstance(entry, BaseException):
            return {"raise": type(entry).__name__, "message": str(entry)}
        return entry

    return json.dumps({agent: one(entry) for agent, entry in script.items()})


def classifier_from_env() -> Callable[[str], str]:
    module, _, name = os.environ.get(
        "MAS_TEST_CLASSIFY", "tests.support.scripted:supervisor_agent"
    ).partition(":")
    classify: Callable[[str], str] = getattr(importlib.import_module(module), name)
    return classify


def scripted_from_env() -> ScriptedChatModel:
    script = json.loads(Path(os.environ["MAS_TEST_SCRIPT"]).read_text())
    return ScriptedChatModel(
        script={agent: decode(entry) for agent, entry in script.items()},
        classify=classifier_from_env(),
        delays=json.loads(os.environ.get("MAS_TEST_DELAYS", "{}")),
        log_path=os.environ.get("MAS_TEST_CALL_LOG"),
        trace_path=os.environ.get("MAS_TEST_CALL_TRACE"),
    )
