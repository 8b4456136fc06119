"""`mas serve`: every pattern behind Aegra, the open Agent Protocol server, on the
project's PostgreSQL, driven through the LangGraph SDK. Keys let people in, threads
belong to whoever made them, the `mas` CLI sees the server's threads in the database
and talks to the server itself with `--server`. Servers, and the Python 3.12
environment they need, are started here from nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.support.processes import json_tail, mas_cli, subprocess_env
from tests.support.scripts_saga import order, saga_rows
from tests.support.scripts_scenarios import SLEEP_SKILL
from tests.support.servers import KEYS, Process, client_of, free_port, serve_env, start_mas_serve


@pytest.fixture(scope="module")
def server(server_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    work = tmp_path_factory.mktemp("serve")
    process = start_mas_serve(serve_env(work, server_python), free_port(), work / "serve.log")
    try:
        yield process
    finally:
        process.stop()


async def pending(client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    state = await client.threads.get_state(thread_id)
    return [i["value"] for task in state["tasks"] for i in task["interrupts"]]


async def test_every_pattern_runs_through_the_sdk(server: Process) -> None:
    alice = client_of(server, "alice")
    cases = {
        "supervisor": ({"task": "Queue or not?"}, lambda v: v["synthesis"]["confidence"] == 0.8),
        "debate": ({"question": "Kafka?", "rounds": 1}, lambda v: v["verdict"]["winner"]),
        "scenarios": (
            {"skill": "rank", "base_size": 4},
            lambda v: v["aggregate"]["scenarios"]["simple"]["status"] == "done",
        ),
        "saga": ({"order": order(order_id="S-1")}, lambda v: v["status"] == "completed"),
    }
    for pattern, (data, finished) in cases.items():
        thread = await alice.threads.create()
        values = await alice.runs.wait(thread["thread_id"], pattern, input=data)
        assert finished(values), (pattern, values)


async def test_an_invalid_answer_is_asked_again_then_the_saga_completes(server: Process) -> None:
    alice = client_of(server, "alice")
    thread = await alice.threads.create()
    data = {"order": order(order_id="S-2"), "require_approval": ["charge_payment"]}
    await alice.runs.wait(thread["thread_id"], "saga", input=data)
    (asked,) = await pending(alice, thread["thread_id"])
    assert asked["kind"] == "step_approval"
    await alice.runs.wait(thread["thread_id"], "saga", command={"resume": {"approve": "perhaps"}})
    (again,) = await pending(alice, thread["thread_id"])
    assert again["error"].startswith("invalid answer: answer.approve")
    values = await alice.runs.wait(
        thread["thread_id"], "saga", command={"resume": {"approve": True}}
    )
    assert values["status"] == "completed"
    tables = await saga_rows(thread["thread_id"])
    assert [len(tables[t]) for t in sorted(tables)] == [1, 1, 1, 1], "effects applied once"


def test_nobody_gets_in_without_a_key(server: Process) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-key-0123456789"}, {"Authorization": "x"}):
        response = httpx.post(f"{server.url}/threads", json={}, headers=headers)
        assert response.status_code == 401, response.text
    assert httpx.get(f"{server.url}/health").status_code == 200


async def test_nobody_sees_another_users_threads(server: Process) -> None:
    alice, bob = client_of(server, "alice"), client_of(server, "bob")
    thread = await alice.threads.create()
    data = {"question": "Kafka?", "rounds": 1, "strategy": "human"}
    await alice.runs.wait(thread["thread_id"], "debate", input=data)
    mine = thread["thread_id"]
    assert (await alice.threads.get(mine))["metadata"]["owner"] == "alice"
    assert mine not in {t["thread_id"] for t in await bob.threads.search(limit=100)}
    for attempt in (
        lambda: bob.threads.get(mine),
        lambda: bob.threads.get_state(mine),
        lambda: bob.runs.wait(mine, "debate", command={"resume": {"winner": "negative"}}),
        lambda: bob.threads.delete(mine),
    ):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await attempt()
        assert refused.value.response.status_code == 404
    assert (await pending(alice, mine))[0]["kind"] == "debate_decision", "untouched"
    with pytest.raises(httpx.HTTPStatusError):  # graphs are the operator's
        await bob.assistants.create("debate")


async def test_the_cli_sees_server_threads_and_talks_to_the_server(server: Process) -> None:
    alice = client_of(server, "alice")
    thread = await alice.threads.create()
    data = {"task": "Queue or not?", "review_plan": True}
    await alice.runs.wait(thread["thread_id"], "supervisor", input=data)
    served = thread["thread_id"]

    # The database: the server's thread, with the server's status (the one source of truth).
    listed = json.loads(mas_cli("threads", "--json").stdout)
    row = next(r for r in listed if r["thread_id"] == served)
    assert (row["pattern"], row["status"], row["served_by"], row["owner"]) == (
        "supervisor", "interrupted", "server", "alice",
    )  # fmt: skip
    shown = json_tail(mas_cli("show", served, "--json").stdout)
    assert shown["next"] == ["review_plan"] and shown["values"]["plan"]["source"] == "planner"
    refused = mas_cli("resume", served, "--answer", '{"approve": true}')
    assert refused.returncode == 1 and "run by the Agent Protocol server" in refused.stderr

    # The server, through the SDK.
    remote = ["--server", server.url, "--api-key", KEYS["alice"]]
    resumed = mas_cli(*remote, "resume", served, "--answer", '{"approve": true}', "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json_tail(resumed.stdout)["values"]["synthesis"]["confidence"] == 0.8
    ran = mas_cli(*remote, "run", "debate", "--input", '{"question": "q?", "rounds": 1}', "--json")
    assert ran.returncode == 0, ran.stderr
    assert json_tail(ran.stdout)["values"]["verdict"]["winner"] == "negative"
    mine = json.loads(mas_cli(*remote, "threads", "--json").stdout)
    assert served in {t["thread_id"] for t in mine}
    as_bob = mas_cli("--server", server.url, "--api-key", KEYS["bob"], "show", served)
    assert as_bob.returncode == 1 and "no thread" in as_bob.stderr
    no_key = mas_cli("--server", server.url, "threads")
    assert no_key.returncode == 1 and "--api-key" in no_key.stderr
    bad = mas_cli(*remote, "run", "debate", "--input", '{"question": "q?", "rounds": 9}')
    assert bad.returncode == 1 and "rounds: Input should be less than or equal to 6" in bad.stderr


def test_the_cli_restarts_a_timed_out_scenario_on_the_server(server: Process) -> None:
    """`mas --server URL resume THREAD --restart NAME`: a new run of the served thread, its
    input made by the pattern from the thread's values; the others' batches stay."""
    remote = ["--server", server.url, "--api-key", KEYS["alice"]]
    data = {
        "skill": SLEEP_SKILL,
        "params": {"item_s": 0.1},
        "base_size": 8,
        "scenarios": [
            {"name": "quick", "scale": 1, "batch_size": 8},
            {"name": "starved", "scale": 1, "batch_size": 1, "budget_s": 0.25},
        ],
    }
    ran = mas_cli(*remote, "run", "scenarios", "--input", json.dumps(data), "--json")
    assert ran.returncode == 0, ran.stderr
    first = json_tail(ran.stdout)
    starved = first["values"]["runs"]["starved"]
    assert starved["status"] == "timed_out" and starved["items_done"] < 8

    again = mas_cli(*remote, "resume", first["thread_id"], "--restart", "starved", "--json")
    assert again.returncode == 0, again.stderr
    values = json_tail(again.stdout)["values"]
    assert values["runs"]["starved"]["items_done"] > starved["items_done"]
    assert values["batches"]["quick"] == first["values"]["batches"]["quick"]
    refused = mas_cli(*remote, "resume", first["thread_id"], "--restart", "quick")
    assert refused.returncode == 1 and "only a failed or timed-out scenario" in refused.stderr


def test_the_server_refuses_to_listen_beyond_loopback_without_keys(tmp_path: Path) -> None:
    env = subprocess_env(MAS_API_KEYS="{}")
    refused = mas_cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: refusing to serve on 0.0.0.0 without API keys: set MAS_API_KEYS "
        '(e.g. \'{"alice": "<a long random key>"}\'), or serve on 127.0.0.1'
    ]


# --- the trust boundary: a client's request is data inside the operator's limits ----------

TWENTY_WORKERS = {
    "task": "Queue or not?",
    "workers": [{"name": f"w{i}", "role": f"Look at part {i}."} for i in range(20)],
}
# Each probe sets one thing that is the operator's; the refusal names it.
OPERATOR_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"context": {"max_workers": 1000}}, "context.max_workers is not the client's to set"),
    ({"context": {"models": {"planner": "llamacpp"}}}, "context.models is not the client's"),
    ({"context": {"picked": {"llamacpp": "x"}}}, "context.picked is not the client's"),
    (
        {"context": {"choose": "mas.providers.models:make_model"}},
        "context.choose is not the client's",
    ),
    ({"context": {"db": "postgresql://attacker"}}, "context.db is not the client's"),
    ({"context": {"model": "llamacpp"}}, "context.model is not the client's"),
    ({"context": {"sealed": False}}, "context.sealed is not the client's"),
    (
        {"config": {"configurable": {"max_workers": 1000}}},
        "config.configurable.max_workers is not the client's to set",
    ),
    ({"config": {"configurable": {"thread_id": "x"}}}, "config.configurable.thread_id is not"),
    ({"config": {"recursion_limit": 10**6}}, "config.recursion_limit is not the client's"),
    ({"config": {"max_concurrency": 10**4}}, "config.max_concurrency is not the client's"),
    ({"interrupt_before": ["synthesize"]}, "interrupt_before is not the client's to set"),
    ({"durability": "exit"}, "durability 'exit' is not the client's to set"),
]


async def refusal(call: Any) -> httpx.Response:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await call
    return refused.value.response


@pytest.mark.parametrize(("probe", "named"), OPERATOR_FIELDS, ids=lambda p: str(p)[:40])
async def test_a_client_cannot_set_what_the_operator_sets(
    server: Process, probe: dict[str, Any], named: str
) -> None:
    alice = client_of(server, "alice")
    thread = (await alice.threads.create())["thread_id"]
    response = await refusal(alice.runs.create(thread, "supervisor", input=TWENTY_WORKERS, **probe))
    assert response.status_code == 403 and named in response.text, response.text
    # Stateless runs and streamed runs go through the same rule.
    response = await refusal(alice.runs.wait(None, "supervisor", input=TWENTY_WORKERS, **probe))
    assert response.status_code == 403 and named in response.text, response.text
    assert await alice.runs.list(thread) == [], "nothing ran"


async def test_the_operators_worker_limit_holds_over_http(server: Process) -> None:
    alice = client_of(server, "alice")
    thread = (await alice.threads.create())["thread_id"]
    values = await alice.runs.wait(thread, "supervisor", input=TWENTY_WORKERS, raise_error=False)
    assert "at most 16 workers per supervisor" in json.dumps(values), values


async def test_a_resume_may_answer_but_not_steer_or_write_state(server: Process) -> None:
    alice = client_of(server, "alice")
    thread = (await alice.threads.create())["thread_id"]
    data = {"question": "Kafka?", "rounds": 1, "strategy": "human"}
    await alice.runs.wait(thread, "debate", input=data)
    for command, named in (
        ({"goto": "judge_verdict"}, "command.goto is not the client's to set"),
        ({"update": {"rounds": 6}}, "command.update is not the client's to set"),
    ):
        response = await refusal(alice.runs.wait(thread, "debate", command=command))
        assert response.status_code == 403 and named in response.text, response.text
    response = await refusal(alice.threads.update_state(thread, {"rounds": 6}))
    assert response.status_code == 403 and "values is not the client's to set" in response.text
    async with httpx.AsyncClient() as http:
        seeded = await http.post(
            f"{server.url}/threads",
            json={"initial_state": {"rounds": 6}},
            headers={"Authorization": f"Bearer {KEYS['alice']}"},
        )
    assert seeded.status_code == 403 and "initial_state" in seeded.text
    assert (await pending(alice, thread))[0]["kind"] == "debate_decision", "untouched"
    done = await alice.runs.wait(thread, "debate", command={"resume": {"winner": "negative"}})
    assert done["verdict"]["winner"] == "negative"


async def test_the_store_and_crons_are_not_served(server: Process) -> None:
    alice = client_of(server, "alice")
    for call in (
        alice.store.put_item(["notes"], "k", {"v": 1}),
        alice.store.get_item(["notes"], "k"),
        alice.store.search_items(["notes"]),
        alice.store.list_namespaces(),
        alice.store.delete_item(["notes"], "k"),
        alice.crons.create("debate", schedule="* * * * *", input={"question": "q?"}),
        alice.crons.search(),
    ):
        response = await refusal(call)
        assert response.status_code == 403 and "is not served" in response.text, response.text


async def test_another_users_runs_are_out_of_reach(server: Process) -> None:
    alice, bob = client_of(server, "alice"), client_of(server, "bob")
    thread = (await alice.threads.create())["thread_id"]
    run = await alice.runs.create(thread, "debate", input={"question": "Kafka?", "rounds": 1})
    await alice.runs.join(thread, run["run_id"])
    assert await bob.runs.list(thread) == [], "listed to another user"
    attempts = {
        "get": lambda: bob.runs.get(thread, run["run_id"]),
        "join": lambda: bob.runs.join(thread, run["run_id"]),
        "cancel": lambda: bob.runs.cancel(thread, run["run_id"]),
        "delete": lambda: bob.runs.delete(thread, run["run_id"]),
        "history": lambda: bob.threads.get_history(thread),
        "update": lambda: bob.threads.update(thread, metadata={"owner": "bob"}),
    }
    for name, attempt in attempts.items():
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await attempt()
        assert refused.value.response.status_code in (403, 404), name
    assert (await alice.threads.get(thread))["metadata"]["owner"] == "alice"
    assert (await alice.runs.get(thread, run["run_id"]))["status"] == "success"


def test_every_route_the_server_has_meets_a_rule(server_python: Path) -> None:
    """Aegra maps each protocol route to an auth event; mas/server/auth.py has a rule for every
    event (the default one refuses). A route outside Aegra's map, other than the few
    that serve no data, would reach no rule: this fails when a new Aegra has one."""
    listing = subprocess.run(
        [str(server_python), "-c", ROUTES_SCRIPT],
        capture_output=True, text=True, timeout=120, env=subprocess_env(),
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr[-3000:]
    routes = json.loads(listing.stdout.strip().splitlines()[-1])
    unmapped = [r for r in routes if r["event"] is None and r["path"] not in PUBLIC_ROUTES]
    assert unmapped == [], f"routes that reach no auth rule: {unmapped}"
    events = {tuple(r["event"]) for r in routes if r["event"]}
    assert ("store", "put") in events and ("threads", "create_run") in events
    rules = {tuple(r["event"]): r["rule"] for r in routes if r["event"]}
    assert all(rules.values()), f"events without a rule: {rules}"
    assert rules[("store", "put")] == rules[("crons", "create")] == "not_served"
    assert rules[("threads", "update")] == "update_own_thread"


# Routes that hold no thread, run or graph data: the server's name and version, health
# checks and the API's own docs.
PUBLIC_ROUTES = {"/", "/health", "/info", "/openapi.json", "/docs",
                 "/docs/oauth2-redirect", "/redoc", "/ready", "/live"}  # fmt: skip
ROUTES_SCRIPT = """
import json, os
os.environ.setdefault("AEGRA_CONFIG", "/nonexistent")
from fastapi.routing import APIRoute
from aegra_api.main import app
from aegra_api.core.auth_registry import lookup_route_auth
from aegra_api.core.auth_handlers import _get_handler
from mas.server.auth import auth

def walk(routes):
    for route in routes:
        nested = getattr(route, "original_router", None) or getattr(route, "routes", None)
        if isinstance(route, APIRoute) or not nested:
            yield route
        else:
            yield from walk(nested.routes if hasattr(nested, "routes") else nested)

found = []
for route in walk(app.routes):
    for method in sorted(getattr(route, "methods", None) or ["GET"]):
        if method == "HEAD":
            continue
        event = lookup_route_auth(method, route.path)
        rule = _get_handler(auth, *event).__name__ if event else None
        found.append({"method": method, "path": route.path, "event": event, "rule": rule})
print(json.dumps(found))
"""


# --- the run console, at /ui -----------------------------------------------------------


def test_the_console_lets_each_user_in_with_their_key_and_shows_only_their_threads(
    server: Process,
) -> None:
    alice = client_of(server, "alice")
    mine = asyncio.run(debate_waiting_for(alice))
    console = f"{server.url}/ui"
    assert httpx.get(f"{console}/").status_code == 303  # to the login form
    assert httpx.get(f"{console}/login").status_code == 200
    wrong = httpx.post(f"{console}/login", data={"key": "not-a-key-0123456789"})
    assert wrong.status_code == 401 and "unknown API key" in wrong.text

    with httpx.Client(base_url=console) as bob:
        assert bob.post("/login", data={"key": KEYS["bob"]}).status_code == 303
        listed = bob.get("/")
        assert listed.status_code == 200 and mine not in listed.text
        assert bob.get(f"/threads/{mine}").status_code == 404
        assert mine not in bob.get("/inbox").text
        refused = bob.post(f"/threads/{mine}/answer", data={"interrupt_id": "x"})
        assert refused.status_code == 404
    as_alice = {"Authorization": f"Bearer {KEYS['alice']}"}
    page = httpx.get(f"{console}/threads/{mine}", headers=as_alice)
    assert page.status_code == 200 and "waiting for a person" in page.text
    forged = httpx.get(f"{console}/", cookies={"mas_console": "alice.0123abcd"})
    assert forged.status_code == 303, "a cookie not signed with alice's key is no session"


async def test_in_a_browser_a_user_answers_a_served_run_and_watches_it_end(
    server: Process, browser: Any
) -> None:
    alice, bob = client_of(server, "alice"), client_of(server, "bob")
    mine = await debate_waiting_for(alice)
    theirs = await debate_waiting_for(bob)

    browser.delete_all_cookies()
    browser.get(f"{server.url}/ui/")
    key = browser.find_element(By.NAME, "key")
    key.send_keys(KEYS["alice"])
    key.submit()
    WebDriverWait(browser, 30).until(lambda d: d.current_url.rstrip("/").endswith("/ui"))
    listed = {
        row.get_attribute("data-thread")
        for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-thread]")
    }
    assert mine in listed and theirs not in listed
    browser.get(f"{server.url}/ui/inbox")
    assert theirs not in browser.page_source
    form = browser.find_element(By.CSS_SELECTOR, f'form[action="/ui/threads/{mine}/answer"]')
    Select(form.find_element(By.NAME, "winner")).select_by_visible_text("negative")
    for name, value in (("confidence", "0.9"), ("reasoning", "the operations cost decides it")):
        field = form.find_element(By.NAME, name)
        field.clear()  # the form starts from the answer's defaults
        field.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 60).until(
        lambda d: "done" in d.find_element(By.CSS_SELECTOR, ".summary .status").text
    )
    assert "server" in browser.find_element(By.CSS_SELECTOR, ".summary").text
    state = await alice.threads.get_state(mine)
    assert state["values"]["verdict"]["decided_by"] == "human"
    assert state["values"]["verdict"]["winner"] == "negative"


async def debate_waiting_for(client: LangGraphClient) -> str:
    """A served debate of `client`'s user, waiting for a person's decision."""
    thread = await client.threads.create()
    data = {"question": "Kafka?", "rounds": 1, "strategy": "human"}
    await client.runs.wait(thread["thread_id"], "debate", input=data)
    return str(thread["thread_id"])
