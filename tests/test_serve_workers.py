"""Many servers, one database: two `mas serve` instances share PostgreSQL and Redis and
split a batch of mixed-pattern runs. SIGKILL the instance holding a run in flight:
every run finishes on the other with the state an uninterrupted run ends in, no model
call that had finished is made again (only those in flight at the kill), and no saga
effect is applied twice. Redis and both servers are started here."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.support.scripts_saga import order, saga_rows
from tests.support.servers import (
    KEYS,
    Process,
    free_port,
    outcome,
    reference,
    serve_env,
    start_mas_serve,
    start_redis,
)

BATCH: list[tuple[str, dict[str, Any]]] = [
    ("supervisor", {"task": "Queue or not?"}),
    ("debate", {"question": "Kafka?", "rounds": 2}),
    ("saga", {"order": order(order_id="W-1")}),
    ("supervisor", {"task": "Cache or not?"}),
    ("debate", {"question": "Rust?", "rounds": 2}),
    ("saga", {"order": order(order_id="W-2")}),
]
# Short leases so a dead instance's runs are taken over within seconds.
LEASES = {
    "LEASE_DURATION_SECONDS": "6",
    "HEARTBEAT_INTERVAL_SECONDS": "2",
    "REAPER_INTERVAL_SECONDS": "2",
    "WORKER_COUNT": "1",
    "N_JOBS_PER_WORKER": "4",
}


def claimed_pids(dsn: str) -> Counter[int]:
    """Which server processes hold a running run (Aegra's lease: host-pid-worker-n)."""
    with psycopg.connect(dsn) as conn:
        owners = conn.execute(
            "SELECT claimed_by FROM runs WHERE status = 'running' AND claimed_by IS NOT NULL"
        ).fetchall()
    return Counter(int(owner.rsplit("-worker-", 1)[0].rsplit("-", 1)[1]) for (owner,) in owners)


Call = tuple[str, str, str, int, float]  # event, agent, thread, pid, time


def trace(path: Path) -> list[Call]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [(e, a, t, int(p), float(w)) for e, a, t, p, w, _ in (line.split() for line in lines)]


def open_calls(calls: list[Call], pids: set[int]) -> Counter[tuple[str, str]]:
    """(agent, thread) of the calls these processes started and have not finished."""
    started = Counter((a, t) for e, a, t, p, _ in calls if e == "start" and p in pids)
    ended = Counter((a, t) for e, a, t, p, _ in calls if e == "end" and p in pids)
    return started - ended


async def wait_all(client: LangGraphClient, runs: list[tuple[str, str]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        statuses = [(await client.runs.get(t, r))["status"] for t, r in runs]
        if all(s == "success" for s in statuses):
            return
        assert "error" not in statuses, statuses
        assert time.monotonic() < deadline, f"runs did not finish: {statuses}"
        await asyncio.sleep(0.5)


async def test_a_killed_server_runs_finish_on_the_other(
    server_python: Path, tmp_path: Path, pg_dsn: str
) -> None:
    references = [await reference(pattern, data) for pattern, data in BATCH]
    redis = start_redis(tmp_path)
    log = tmp_path / "calls.trace"
    env = serve_env(
        tmp_path,
        server_python,
        REDIS_URL=redis.url,
        MAS_TEST_DELAYS=json.dumps({"*": 0.4}),
        MAS_TEST_CALL_TRACE=str(log),
        **LEASES,
    )
    servers: list[Process] = []
    try:
        servers = [
            start_mas_serve(env, free_port(), tmp_path / f"serve-{name}.log") for name in "ab"
        ]
        headers = {"Authorization": f"Bearer {KEYS['alice']}"}
        first = get_client(url=servers[0].url, api_key=None, headers=headers)
        runs = []
        for pattern, data in BATCH:
            thread = await first.threads.create()
            run = await first.runs.create(thread["thread_id"], pattern, input=data)
            runs.append((thread["thread_id"], run["run_id"]))

        # Kill the instance holding the most runs, while one of its model calls runs.
        deadline = time.monotonic() + 60
        while not (held := claimed_pids(pg_dsn)):
            assert time.monotonic() < deadline, "no run started"
            await asyncio.sleep(0.05)
        victim = max(servers, key=lambda s: sum(held[p] for p in s.pids()))
        victim_pids = victim.pids()
        while not open_calls(trace(log), victim_pids):
            assert time.monotonic() < deadline, "the busiest instance made no call"
            await asyncio.sleep(0.02)
        victim.kill()
        killed_at = time.time()
        survivor = next(s for s in servers if s is not victim)

        other = get_client(url=survivor.url, api_key=None, headers=headers)
        await wait_all(other, runs, seconds=180)

        calls = trace(log)
        # In flight at the kill: calls cut off, or finished in the moment before it (their
        # node's result not yet saved).
        in_flight = open_calls(calls, victim_pids) + Counter(
            (a, t) for e, a, t, p, w in calls
            if e == "end" and p in victim_pids and killed_at - w < 0.3
        )  # fmt: skip
        assert in_flight, "the kill landed while a call ran"
        for (pattern, _), (thread_id, _), (expected, reference_calls) in zip(
            BATCH, runs, references, strict=True
        ):
            values = (await other.threads.get_state(thread_id))["values"]
            assert outcome(pattern, values) == expected, pattern
            made = Counter(a for e, a, t, _, _ in calls if e == "start" and t == thread_id)
            assert not reference_calls - made, f"{pattern}: a call is missing"
            for agent, extra in (made - reference_calls).items():
                assert extra <= in_flight[(agent, thread_id)], (
                    f"{pattern}: {agent} called {extra} more times than were in flight"
                )
            if pattern == "saga":
                tables = await saga_rows(thread_id)
                assert [len(tables[t]) for t in sorted(tables)] == [1, 1, 1, 1], "effects once"
    finally:
        for server in servers:
            server.stop()
        redis.stop()
