"""Runs per second through the Aegra server with 1, 2 and 4 worker processes.

    python -m benchmarks.serving [--runs 24] [--latency 0.2] [--jobs 2]

One `mas serve --workers N` with Redis on the benchmark's PostgreSQL; every process
takes at most `--jobs` runs at a time (Aegra's WORKER_COUNT=1, N_JOBS_PER_WORKER=jobs),
so the table shows what adding processes buys. The model is the scripted one with a
fixed latency per call (a supervisor run: planner, three workers in two batches, the
conflict check, synthesiser: 6 calls, 5 on the critical path), all runs submitted at
once through the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import time
from pathlib import Path

from langgraph_sdk import get_client

from benchmarks.common import benchmark_dsn, console, machine, print_table, uptime
from tests.support.factories import encode
from tests.support.processes import subprocess_env
from tests.support.scripts_mixed import CLASSIFY, mixed_script
from tests.support.servers import build_server_python, free_port, start_mas_serve, start_redis

MODEL = "factory:tests.support.factories:scripted_from_env"
CRITICAL_PATH_CALLS = 5


async def throughput(url: str, runs: int) -> float:
    """Seconds from submitting `runs` supervisor runs at once to the last one's end."""
    client = get_client(url=url, api_key=None)
    started = time.perf_counter()
    threads = [await client.threads.create() for _ in range(runs)]
    submitted = [
        await client.runs.create(t["thread_id"], "supervisor", input={"task": f"Queue? #{i}"})
        for i, t in enumerate(threads)
    ]
    for thread, run in zip(threads, submitted, strict=True):
        await client.runs.join(thread["thread_id"], run["run_id"])
        assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
    return time.perf_counter() - started


async def main(runs: int, latency: float, jobs: int) -> None:
    dsn = benchmark_dsn()
    work = Path(tempfile.mkdtemp(prefix="mas-bench-serving-"))
    python = build_server_python(work)
    redis = start_redis(work)
    (work / "script.json").write_text(encode(mixed_script()))
    env = subprocess_env(
        DATABASE_URL=dsn,
        MAS_DATA_DIR=str(work / "data"),
        MAS_SERVER_PYTHON=str(python),
        MAS_MODEL=MODEL,
        MAS_TEST_SCRIPT=str(work / "script.json"),
        MAS_TEST_CLASSIFY=CLASSIFY,
        MAS_TEST_DELAYS=json.dumps({"*": latency}),
        MAS_API_KEYS="{}",
        REDIS_URL=redis.url,
        WORKER_COUNT="1",
        N_JOBS_PER_WORKER=str(jobs),
        PYTHONPATH=os.environ["PYTHONPATH"],
    )
    rows = []
    base = None
    try:
        for processes in (1, 2, 4):
            server = start_mas_serve(
                env, free_port(), work / f"serve-{processes}.log", "--workers", str(processes)
            )
            try:
                await throughput(server.url, 2)  # warm: graphs built, pools open
                wall = await throughput(server.url, runs)
            finally:
                server.stop()
            rate = runs / wall
            base = base or rate
            # 5 calls on a run's critical path (planner, two batches, conflict check,
            # synthesis); runs beyond what is taken at once wait for a slot.
            ideal = math.ceil(runs / (processes * jobs)) * CRITICAL_PATH_CALLS * latency
            rows.append(
                [
                    str(processes),
                    str(processes * jobs),
                    str(runs),
                    f"{wall:.2f}",
                    f"{rate:.2f}",
                    f"{rate / base:.2f}",
                    f"{ideal:.2f}",
                ]
            )
    finally:
        redis.stop()
    print_table(
        f"served runs, {latency:g} s per model call ({machine()}, {uptime()})",
        ["processes", "runs at once", "runs", "wall s", "runs/s", "vs 1 process", "ideal wall s"],
        rows,
    )
    console.print("ideal: the model latency alone, if every process ran its runs with no overhead")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--jobs", type=int, default=2, help="runs per process at a time")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.latency, args.jobs))
