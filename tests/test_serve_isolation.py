"""A native crash in one client's model call cannot take down another client's run.

The embedded model runs in an engine process of its own (mas/providers/llamacpp.py), so a signal
there (SIGILL, as llama.cpp's AMX path raises on some Intel CPUs) ends that process
only: the server's processes keep serving, the call fails like a timed-out one (the
node's retry gets a new engine), and every other run finishes as if nothing happened.
The server here runs the real embedded model for one client and the scripted one for
the other, and the engine is killed by a real signal in the middle of a generation.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx

from tests.support.processes import wait_for
from tests.support.servers import (
    Process,
    client_of,
    free_port,
    outcome,
    reference,
    serve_env,
    start_mas_serve,
)

# The engine has loaded and tested the model (about 0.5 s of CPU) and is generating.
GENERATING_CPU_S = 1.0


def engines(server: Process) -> list[int]:
    return [
        pid
        for pid in server.pids()
        if b"llamacpp_engine.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_a_model_crash_in_one_run_leaves_the_server_and_other_runs(
    server_python: Path, tmp_path: Path
) -> None:
    env = serve_env(tmp_path, server_python, MAS_TEST_DELAYS=json.dumps({"*": 0.4}))
    server = start_mas_serve(env, free_port(), tmp_path / "serve.log")
    try:
        alice, bob = client_of(server, "alice"), client_of(server, "bob")
        bob_input = {"question": "Kafka?", "rounds": 3}
        expected, _ = await reference("debate", bob_input)
        serving = server.pids()

        alice_thread = (await alice.threads.create())["thread_id"]
        judged = {"question": "Rust?", "rounds": 1, "judge_model": "llamacpp"}
        alice_run = await alice.runs.create(alice_thread, "debate", input=judged)
        bob_thread = (await bob.threads.create())["thread_id"]
        bob_run = await bob.runs.create(bob_thread, "debate", input=bob_input)

        wait_for(lambda: engines(server), timeout=60, what="the engine to start")
        (engine,) = engines(server)
        wait_for(lambda: cpu_seconds(engine) > GENERATING_CPU_S, timeout=60, what="a generation")
        assert (await bob.runs.get(bob_thread, bob_run["run_id"]))["status"] in (
            "pending", "running",
        ), "bob's run is in flight at the crash"  # fmt: skip
        os.kill(engine, signal.SIGILL)

        bob_values = await bob.runs.join(bob_thread, bob_run["run_id"])
        assert outcome("debate", bob_values) == expected, "as if uninterrupted"
        alice_values = await alice.runs.join(alice_thread, alice_run["run_id"])
        assert alice_values["verdict"]["decided_by"] == "judge"
        assert (await alice.runs.get(alice_thread, alice_run["run_id"]))["status"] == "success"

        assert serving <= server.pids(), "every server process is still there"
        (replacement,) = engines(server)
        assert replacement != engine, "the retry started a new engine"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{server.url}/health")).status_code == 200
        log = (tmp_path / "serve.log").read_text()
        assert "killed by SIGILL (illegal instruction) while generating" in log
    finally:
        server.stop()
    wait_for(lambda: not engines(server), timeout=30, what="the engine to end with its server")
