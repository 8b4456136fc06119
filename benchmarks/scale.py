"""Scale: one supervisor batch fanned out to 10, 100 and 1,000 workers (graphs.supervisor
driven directly, its context raising the worker limit as MAS_MAX_WORKERS would; the
input allows as many agents and the most calls in flight, 64), and 1, 10 and 100
concurrent supervisor threads on one async pool (mas.Runner). Instant scripted model, Postgres
checkpoints with durability "sync"; time, peak traced memory, checkpoint rows, and each
configuration's peak RSS in a process of its own (after `import mas` alone: the first row).

    python -m benchmarks.scale [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

import mas
from benchmarks.cases import scripted
from benchmarks.common import benchmark_dsn, machine, print_table, uptime
from benchmarks.parallel import fan_out_script, team
from benchmarks.peers.harness import peak_rss_mib
from mas.settings import get_settings
from mas_graphs.checkpoints.savers import open_async_saver
from mas_graphs.graphs import supervisor
from mas_graphs.nodes.context import AgentContext
from mas_graphs.state.supervisor import MAX_PARALLEL
from tests.support.scripts_supervisor import TEAM, supervisor_script

ROWS = """
SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = ANY(%(t)s)),
       (SELECT count(*) FROM checkpoint_writes WHERE thread_id = ANY(%(t)s)),
       (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = ANY(%(t)s))
"""


async def rows_of(dsn: str, thread_ids: list[str]) -> tuple[int, int, int]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(ROWS, {"t": thread_ids})
        row = await cursor.fetchone()
        assert row is not None
        return row[0], row[1], row[2]


async def measure(run: Callable[[], Awaitable[None]]) -> tuple[float, float, float]:
    """Wall and this process's CPU seconds of an untraced run, and peak MiB of a second,
    traced one."""
    started, cpu = time.perf_counter(), time.process_time()
    await run()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    tracemalloc.start()
    await run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return wall, cpu, peak / 2**20


async def fan_out(dsn: str, sizes: list[int]) -> list[list[str]]:
    rows = []
    async with open_async_saver(dsn) as saver:
        for size in sizes:
            model = scripted(fan_out_script(size))
            graph = supervisor.build(checkpointer=saver, model=model)
            state = {
                "task": "Fan out",
                "workers": team(size),
                "max_agents": size,
                "max_parallel": MAX_PARALLEL,
            }
            thread_ids: list[str] = []

            async def run(
                graph: Any = graph, state: Any = state, ids: list[str] = thread_ids
            ) -> None:
                ids.append(uuid.uuid4().hex)
                config = {"configurable": {"thread_id": ids[-1]}}
                context = AgentContext(max_workers=len(state["workers"]))
                await graph.ainvoke(state, config, context=context, durability="sync")

            wall, cpu, peak = await measure(run)
            checkpoints, writes, blobs = await rows_of(dsn, thread_ids[:1])
            rows.append(
                [
                    f"1 thread, {size} workers in one batch",
                    f"{wall:.2f}",
                    f"{cpu / wall:.0%}",
                    f"{wall / size * 1e3:.2f} ms per worker",
                    f"{peak:.1f}",
                    f"{checkpoints} / {writes} / {blobs}",
                ]
            )
    return rows


async def concurrent(dsn: str, counts: list[int]) -> list[list[str]]:
    rows = []
    model = scripted(supervisor_script())
    data = {"task": "Queue or not?", "workers": TEAM}
    async with mas.Runner(dsn) as runner:
        await runner.run("supervisor", data, model=model)  # warm up the pool
        for count in counts:
            thread_ids: list[str] = []

            async def run(count: int = count, ids: list[str] = thread_ids) -> None:
                batch = [mas.runner.new_thread_id("supervisor") for _ in range(count)]
                ids.extend(batch)
                await asyncio.gather(
                    *(runner.run("supervisor", data, model=model, thread_id=t) for t in batch)
                )

            wall, cpu, peak = await measure(run)
            checkpoints, writes, blobs = await rows_of(dsn, thread_ids[:count])
            rows.append(
                [
                    f"{count} concurrent threads (mas.Runner, pool {get_settings().pool_size})",
                    f"{wall:.2f}",
                    f"{cpu / wall:.0%}",
                    f"{count / wall:.1f} runs/s",
                    f"{peak:.1f}",
                    f"{checkpoints} / {writes} / {blobs}",
                ]
            )
    return rows


async def one_row(kind: str, size: int) -> list[str]:
    """One configuration, in this process: its row, with this process's peak RSS."""
    dsn = benchmark_dsn()
    if kind == "import":
        label = "import mas (and this script), nothing run"
        return [label, "", "", "", "", "", f"{peak_rss_mib():.0f}"]
    rows = await (fan_out(dsn, [size]) if kind == "fan_out" else concurrent(dsn, [size]))
    return [*rows[0], f"{peak_rss_mib():.0f}"]


def in_own_process(kind: str, size: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--row", kind, str(size)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


async def main(quick: bool) -> None:
    benchmark_dsn()  # one server for every child (they inherit DATABASE_URL)
    configurations = [("import", 0)]
    configurations += [("fan_out", size) for size in (10, 100, 1000)]
    configurations += [("concurrent", count) for count in (1, 10, 100)]
    rows = [await asyncio.to_thread(in_own_process, kind, size) for kind, size in configurations]
    print_table(
        f"Scale, Postgres durability sync, instant model; {machine()}; {uptime()}",
        [
            "run",
            "wall s",
            "CPU / wall",
            "rate",
            "peak traced MiB",
            "checkpoint rows / writes / blobs",
            "peak RSS MiB",
        ],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="(same sizes; one run each)")
    parser.add_argument("--row", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(asyncio.run(one_row(args.row[0], int(args.row[1])))))
    else:
        asyncio.run(main(args.quick))
