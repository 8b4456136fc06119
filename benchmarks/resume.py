"""Resume: time to continue a thread with ~10 and ~1,000 checkpoints in its history.

The thread is a scenarios run in lockstep mode (one sync point per batch, so two parent
supersteps per batch) stopped just before its final `aggregate` node; resuming it loads
the latest checkpoint and runs that one node, so the work after loading is the same for
both lengths and any difference is the cost of the history.

    python -m benchmarks.resume [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

import psycopg

import mas  # noqa: F401  (imported first: checkpoints.savers and mas import each other)
from benchmarks.common import benchmark_dsn, machine, print_table, uptime
from mas.patterns import get_pattern
from mas_graphs.checkpoints.savers import open_async_saver
from mas_graphs.graphs import scenarios
from tests.support.scripts_scenarios import SLEEP_SKILL


def lockstep(items: int) -> dict[str, Any]:
    return {
        "skill": SLEEP_SKILL,
        "params": {"item_s": 0.0},
        "base_size": items,
        "sync": "lockstep",
        "scenarios": [{"name": "only", "scale": 1, "batch_size": 1}],
    }


async def stopped_thread(graph: Any, items: int) -> str:
    """A thread whose run stopped right before `aggregate`, as after a crash there."""
    state, _ = get_pattern("scenarios").parse(lockstep(items))
    thread_id = uuid.uuid4().hex
    config = {"configurable": {"thread_id": thread_id}}
    await graph.ainvoke(state, config, durability="sync", interrupt_before=["aggregate"])
    return thread_id


async def count_rows(dsn: str, thread_id: str) -> tuple[int, int]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FILTER (WHERE checkpoint_ns = ''), count(*) FROM checkpoints "
            "WHERE thread_id = %s",
            (thread_id,),
        )
        row = await cursor.fetchone()
        assert row is not None
        return row[0], row[1]


async def main(repeats: int) -> None:
    dsn = benchmark_dsn()
    rows = []
    async with open_async_saver(dsn) as saver:
        graph = scenarios.build(checkpointer=saver)
        for items in (4, 500):
            threads = [await stopped_thread(graph, items) for _ in range(repeats)]
            parent, total = await count_rows(dsn, threads[0])
            loads, resumes, histories, sizes = [], [], [], []
            for thread_id in threads:
                config = {"configurable": {"thread_id": thread_id}}
                started = time.perf_counter()
                state = await graph.aget_state(config)
                loads.append(time.perf_counter() - started)
                assert state.next == ("aggregate",), state.next
                sizes.append(len(json.dumps(state.values, default=str)))
                started = time.perf_counter()
                final = await graph.ainvoke(None, config, durability="sync")
                resumes.append(time.perf_counter() - started)
                assert "aggregate" in final
                started = time.perf_counter()
                _ = [c async for c in graph.aget_state_history(config)]
                histories.append(time.perf_counter() - started)
            rows.append(
                [
                    f"lockstep scenarios, {items} batches",
                    str(parent),
                    str(total),
                    f"{statistics.median(sizes) / 1024:.1f}",
                    f"{statistics.median(loads) * 1e3:.2f}",
                    f"{statistics.median(resumes) * 1e3:.2f}",
                    f"{statistics.median(histories) * 1e3:.1f}",
                ]
            )
    print_table(
        f"Resume, Postgres: median over {repeats} threads each; {machine()}; {uptime()}",
        [
            "thread",
            "checkpoints (parent)",
            "checkpoints (all ns)",
            "latest state KiB (JSON)",
            "aget_state ms",
            "resume to end ms",
            "full history listing ms",
        ],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 threads per length")
    args = parser.parse_args()
    asyncio.run(main(3 if args.quick else args.repeats))
