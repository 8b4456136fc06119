"""Tools from real MCP servers (tests/support/mcp_server.py, started by the tests over stdio and
over streamable HTTP), on an operator's allow-list: end to end, refused, timed out,
killed and resumed, listed, traced."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mas
from mas.errors import InputError
from mas.settings import get_settings
from tests.support.factories import decode, encode
from tests.support.processes import (
    ROOT,
    json_tail,
    logged_calls,
    mas_cli,
    start_mas,
    subprocess_env,
    wait_for,
)
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_supervisor import plan, report, supervisor_script

TASK = "Should the team move its job queue to PostgreSQL?"
FACT = "PostgreSQL 9.5 added SKIP LOCKED, which lets many workers take queue rows safely."


def tool_step(tool: str, tool_input: str) -> dict[str, Any]:
    return {"action": "tool", "tool": tool, "tool_input": tool_input}


FINISH = {"action": "finish"}


def stdio_server(log: Path, **extra: Any) -> dict[str, Any]:
    return {
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "tests.support.mcp_server", "stdio"],
        "cwd": str(ROOT),
        # a stdio server gets only the variables given here (MCP's default is a few safe ones)
        "env": {"PYTHONPATH": str(ROOT), "MCP_TEST_LOG": str(log), "PATH": "/usr/bin:/bin"},
        **extra,
    }


def server_calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logged_calls(log)]


@pytest.fixture
def mcp_log(tmp_path: Path) -> Path:
    return tmp_path / "mcp-calls.log"


@pytest.fixture
def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Write an operator's MCP config and point the settings at it."""
    from mas.providers import tools

    def write(servers: dict[str, Any]) -> Path:
        path = tmp_path / "mcp.json"
        path.write_text(json.dumps({"servers": servers}))
        monkeypatch.setenv("MAS_MCP_SERVERS", str(path))
        get_settings.cache_clear()
        return path

    yield write
    get_settings.cache_clear()
    tools._status.clear()


def one_worker(tools: list[str], steps: list[Any]) -> tuple[dict[str, Any], ScriptedChatModel]:
    """A supervisor with one tool worker whose model takes `steps`, then reports."""
    workers = [{"name": "researcher", "role": "Find the facts [researcher]", "tools": tools}]
    script = supervisor_script(
        planner=plan(("researcher", [])),
        researcher=[*steps, report("Use PostgreSQL", 0.8, ("queue", "SKIP LOCKED"))],
        conflict_detector={"conflicts": []},
    )
    model = ScriptedChatModel(script={a: decode(e) for a, e in script.items()})
    return {"task": TASK, "workers": workers}, model


def report_prompt(model: ScriptedChatModel) -> str:
    return [p for a, p in model.prompts if a == "researcher"][-1]


# --- end to end ----------------------------------------------------------------------


async def test_a_worker_uses_an_mcp_tool_over_stdio_end_to_end(
    configure: Any, mcp_log: Path
) -> None:
    configure({"facts": stdio_server(mcp_log)})
    task, model = one_worker(["facts.lookup"], [tool_step("facts.lookup", "postgres"), FINISH])
    result = await mas.arun("supervisor", task, model=model)

    [call] = result["results"]["researcher"]["tool_calls"]
    assert call["tool"] == "facts.lookup" and call["input"] == "postgres"
    assert call["output"] == FACT and call["error"] is None and call["latency_ms"] > 0
    assert call["key"].startswith(f"{result.thread_id}:run_worker:") and call["key"].endswith(":1")
    # the server saw the call once, with the key in the request's _meta
    assert server_calls(mcp_log) == [
        {"tool": "lookup", "arguments": {"topic": "postgres"}, "key": call["key"]}
    ]
    # and the agent read what the tool said
    assert f"facts.lookup('postgres') -> {FACT}" in report_prompt(model)


@pytest.fixture
def http_server(mcp_log: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.mcp_server", "http", str(port)],
        cwd=ROOT,
        env=subprocess_env(MCP_TEST_LOG=str(mcp_log)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    wait_for(listening, 30, "the MCP server to listen")
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_worker_uses_an_mcp_tool_over_streamable_http(
    configure: Any, http_server: str, mcp_log: Path
) -> None:
    configure({"web": {"transport": "streamable_http", "url": http_server}})
    task, model = one_worker(["web.add"], [tool_step("web.add", '{"a": 2, "b": 40}'), FINISH])
    result = await mas.arun("supervisor", task, model=model)

    [call] = result["results"]["researcher"]["tool_calls"]
    assert (call["output"], call["error"]) == ("42", None)
    assert server_calls(mcp_log)[0]["arguments"] == {"a": 2, "b": 40}


# --- allow-lists ---------------------------------------------------------------------


def test_input_may_only_name_registered_tools(configure: Any, mcp_log: Path) -> None:
    configure(
        {
            "facts": stdio_server(mcp_log),
            "gone": {"transport": "streamable_http", "url": "http://127.0.0.1:9/mcp"},
        }
    )
    task, model = one_worker(["facts.delete_everything"], [])
    with pytest.raises(
        InputError, match=r"unknown tools facts.delete_everything; allowed: .*facts.lookup"
    ):
        mas.run("supervisor", task, model=model)
    task, model = one_worker(["gone.search"], [])
    with pytest.raises(InputError, match=r"tool server 'gone' is down \(ConnectError"):
        mas.run("supervisor", task, model=model)


async def test_a_tool_outside_the_workers_allow_list_never_reaches_the_server(
    configure: Any, mcp_log: Path
) -> None:
    configure({"facts": stdio_server(mcp_log)})
    # the model asks for facts.add, which this worker is not allowed; it is refused by
    # the step's schema, and the repair turn picks an allowed tool
    task, model = one_worker(
        ["facts.lookup"],
        [tool_step("facts.add", '{"a": 1, "b": 1}'), tool_step("facts.lookup", "kafka"), FINISH],
    )
    result = await mas.arun("supervisor", task, model=model)
    assert [c["tool"] for c in server_calls(mcp_log)] == ["lookup"]
    assert [c["tool"] for c in result["results"]["researcher"]["tool_calls"]] == ["facts.lookup"]


# --- failures are observations -------------------------------------------------------


async def test_a_tool_that_hangs_is_timed_out_and_the_worker_carries_on(
    configure: Any, mcp_log: Path
) -> None:
    configure({"facts": stdio_server(mcp_log, timeout_s=1)})
    task, model = one_worker(
        ["facts.wait", "facts.refuse"],
        [tool_step("facts.wait", "60"), tool_step("facts.refuse", "no reason"), FINISH],
    )
    started = time.monotonic()
    result = await mas.arun("supervisor", task, model=model)
    assert time.monotonic() - started < 30

    researcher = result["results"]["researcher"]
    assert researcher["status"] == "ok" and researcher["attempts"] == 1
    hung, failed = researcher["tool_calls"]
    assert hung["error"] == "timed out after 1 s" and 1_000 <= hung["latency_ms"] < 10_000
    assert "refused: no reason" in failed["error"]
    prompt = report_prompt(model)
    assert "facts.wait('60') -> error: timed out after 1 s" in prompt
    assert "refused: no reason" in prompt


# --- durability ----------------------------------------------------------------------


def test_sigkill_after_a_tool_call_resumes_with_the_call_recorded_once(
    tmp_path: Path, mcp_log: Path, thread_id: str
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"servers": {"facts": stdio_server(mcp_log)}}))
    task, _ = one_worker(["facts.lookup"], [])
    script = supervisor_script(
        planner=plan(("researcher", [])),
        researcher=[tool_step("facts.lookup", "postgres"), FINISH, report("Use PostgreSQL", 0.8)],
        conflict_detector={"conflicts": []},
    )
    (tmp_path / "script.json").write_text(encode(script))
    call_log = tmp_path / "calls.log"

    def env(delays: dict[str, float]) -> dict[str, str]:
        return subprocess_env(
            MAS_TEST_SCRIPT=str(tmp_path / "script.json"),
            MAS_TEST_CALL_LOG=str(call_log),
            MAS_TEST_DELAYS=json.dumps(delays),
            MAS_MODEL="factory:tests.support.factories:scripted_from_env",
            MAS_MCP_SERVERS=str(config),
        )

    # every researcher call is slow: the kill lands after the tool call, mid-step 2
    args = ["run", "supervisor", "--input", json.dumps(task), "--thread-id", thread_id]
    process = start_mas(*args, env=env({"researcher": 3.0}))
    try:
        wait_for(lambda: server_calls(mcp_log), 60, "the tool call")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    resumed = mas_cli("resume", thread_id, "--json", env=env({}))
    assert resumed.returncode == 0, resumed.stderr
    values = json_tail(resumed.stdout)["values"]
    [recorded] = values["results"]["researcher"]["tool_calls"]
    # the step cut off by the kill ran again: at least once, with the same key
    seen = server_calls(mcp_log)
    assert len(seen) == 2 and seen[0]["key"] == seen[1]["key"] == recorded["key"]


# --- listing and tracing -------------------------------------------------------------


def test_mas_tools_lists_the_registry_and_the_servers(tmp_path: Path, mcp_log: Path) -> None:
    config = tmp_path / "mcp.json"
    servers = {
        "facts": stdio_server(mcp_log),
        "gone": {"transport": "streamable_http", "url": "http://127.0.0.1:9/mcp"},
    }
    config.write_text(json.dumps({"servers": servers}))
    listed = mas_cli("tools", env=subprocess_env(MAS_MCP_SERVERS=str(config)))
    assert listed.returncode == 0, listed.stderr
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in listed.stdout.splitlines()]
    rows = [row for row in rows if row]
    assert [
        "calculator",
        "python",
        "Evaluate an arithmetic expression (+ - * / % ** and parentheses).",
    ] in rows
    assert ["facts.lookup", "mcp:facts", "Look up a fact about a technology by its name."] in rows
    assert ["facts", "stdio", "up: 4 tools"] in rows
    assert any(row[:2] == ["gone", "streamable_http"] and row[2].startswith("down") for row in rows)


async def test_tool_calls_are_spans_of_their_own(
    configure: Any, mcp_log: Path, langfuse_spans: Any
) -> None:
    configure({"facts": stdio_server(mcp_log)})
    task, model = one_worker(["facts.lookup"], [tool_step("facts.lookup", "postgres"), FINISH])
    await mas.arun("supervisor", task, model=model)
    spans = langfuse_spans.get_finished_spans()
    [tool_span] = [s for s in spans if s.name == "facts.lookup"]
    assert "tool" in str(dict(tool_span.attributes or {}))
    parent = next(s for s in spans if s.context.span_id == tool_span.parent.span_id)
    assert parent.name == "run_worker"
