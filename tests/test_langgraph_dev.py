"""`langgraph dev` (LangGraph's development server, what Studio talks to) loads every
pattern from langgraph.json and runs it to the end through the LangGraph SDK, on the
scripted model, with an empty context; a person's invalid answer is asked again, over
the API, and a valid one completes the run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.support.factories import encode
from tests.support.processes import ROOT, subprocess_env
from tests.support.scripts_mixed import CLASSIFY, mixed_script
from tests.support.scripts_saga import order, saga_rows
from tests.support.scripts_supervisor import TEAM
from tests.support.servers import free_port, wait_until

MODEL = "factory:tests.support.factories:scripted_from_env"


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory, pg_dsn: str) -> Iterator[str]:
    """`langgraph dev` on a free loopback port, in a directory of its own (it keeps its
    in-memory state in files there), with langgraph.json's graphs at absolute paths."""
    work = tmp_path_factory.mktemp("langgraph-dev")
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str(ROOT)]
    config["graphs"] = {
        name: str(ROOT / target.removeprefix("./")) for name, target in config["graphs"].items()
    }
    (work / "langgraph.json").write_text(json.dumps(config))
    (work / "script.json").write_text(encode(mixed_script()))
    port = free_port()
    env = subprocess_env(
        MAS_MODEL=MODEL,
        MAS_TEST_SCRIPT=str(work / "script.json"),
        MAS_TEST_CLASSIFY=CLASSIFY,
        # offline: no analytics, no version check, no LangSmith
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        LANGSMITH_TRACING="false",
    )
    log = work / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "langgraph_cli", "dev", "--host", "127.0.0.1",
             "--port", str(port), "--no-browser", "--no-reload"],
            cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(f"{url}/ok", process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def client(dev_server: str) -> LangGraphClient:
    return get_client(url=dev_server, api_key=None)


async def pending(client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    state = await client.threads.get_state(thread_id)
    return [i["value"] for task in state["tasks"] for i in task["interrupts"]]


async def answer_badly_then_well(
    client: LangGraphClient, thread_id: str, graph: str, kind: str, bad: Any, good: Any
) -> dict[str, Any]:
    (asked,) = await pending(client, thread_id)
    assert asked["kind"] == kind and "properties" in asked["answer"]
    await client.runs.wait(thread_id, graph, command={"resume": bad})
    (again,) = await pending(client, thread_id)
    assert again["kind"] == kind and again["error"].startswith("invalid answer: answer"), again
    values: dict[str, Any] = await client.runs.wait(thread_id, graph, command={"resume": good})
    assert await pending(client, thread_id) == []
    return values


async def test_supervisor_with_a_plan_review_over_the_api(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    data = {"task": "Queue or not?", "workers": TEAM, "review_plan": True}
    await client.runs.wait(thread["thread_id"], "supervisor", input=data, context={})
    values = await answer_badly_then_well(
        client, thread["thread_id"], "supervisor", "plan_review",
        bad={"approve": True, "batches": [[]]}, good={"approve": True},
    )  # fmt: skip
    assert values["synthesis"]["summary"] == "Use PostgreSQL with SKIP LOCKED."


async def test_debate_decided_by_a_person_over_the_api(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    data = {"question": "Run Kafka?", "strategy": "human", "rounds": 1}
    await client.runs.wait(thread["thread_id"], "debate", input=data)
    values = await answer_badly_then_well(
        client, thread["thread_id"], "debate", "debate_decision",
        bad={"winner": "maybe"}, good={"winner": "affirmative", "reasoning": "hiring ops"},
    )  # fmt: skip
    assert values["verdict"]["decided_by"] == "human"
    assert values["verdict"]["winner"] == "affirmative"


async def test_scenarios_over_the_api(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    data = {"skill": "rank", "base_size": 4, "sync": "milestone"}
    values = await client.runs.wait(thread["thread_id"], "scenarios", input=data)
    summaries = values["aggregate"]["scenarios"]
    assert {s["status"] for s in summaries.values()} == {"done"}


async def test_saga_approved_over_the_api_writes_its_rows(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    data = {"order": order(), "require_approval": ["charge_payment"]}
    await client.runs.wait(thread["thread_id"], "saga", input=data)
    values = await answer_badly_then_well(
        client, thread["thread_id"], "saga", "step_approval",
        bad={"approve": "yes please"}, good={"approve": True},
    )  # fmt: skip
    assert values["status"] == "completed"
    tables = await saga_rows(thread["thread_id"])
    assert [len(tables[t]) for t in sorted(tables)] == [1, 1, 1, 1]


async def test_bad_input_fails_the_run_with_the_one_line_reason(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "debate", input={"question": "  "})
    await client.runs.join(thread["thread_id"], run["run_id"])
    finished = await client.runs.get(thread["thread_id"], run["run_id"])
    assert finished["status"] == "error"
    state = await client.threads.get_state(thread["thread_id"])
    errors = [task.get("error") or "" for task in state["tasks"]]
    assert any("invalid debate input: question: question must not be blank" in e for e in errors)
