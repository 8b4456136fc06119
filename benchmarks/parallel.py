"""Parallel efficiency: wall time over the critical path on a model that sleeps a fixed
latency per call. Supervisor: 8 workers in one batch (planner, 8 workers, conflict scan,
synthesis: 4 calls on the critical path). Scenarios: 3 scenarios whose skill sleeps per
item (critical path: the largest scenario's items, since each phase waits for the slowest).

    python -m benchmarks.parallel [--latency S] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
import uuid
from typing import Any

import mas
from benchmarks.cases import scenarios_input, scripted
from benchmarks.common import benchmark_dsn, machine, print_table, uptime
from mas.patterns import get_pattern
from mas_graphs.graphs import scenarios, supervisor
from tests.support.scripts_supervisor import plan, report, supervisor_script


def team(size: int) -> list[dict[str, str]]:
    return [{"name": f"w{i}", "role": f"Worker number {i} [w{i}]"} for i in range(size)]


def fan_out_script(size: int) -> dict[str, Any]:
    """One batch of `size` independent workers, no conflicts."""
    script = supervisor_script(
        planner=plan(*((f"w{i}", []) for i in range(size))),
        conflict_detector={"conflicts": []},
    )
    script.update({f"w{i}": report(f"w{i} done", 0.7) for i in range(size)})
    return script


async def timed(run: Any, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def main(latency: float, repeats: int) -> None:
    rows = []
    model = scripted(fan_out_script(8), delay=latency)
    graph = supervisor.build(model=model)
    data: dict[str, Any] = {"task": "Fan out", "workers": team(8)}
    state, _ = get_pattern("supervisor").parse(data)

    async def sup_run() -> None:
        await graph.ainvoke(state, {"configurable": {"thread_id": uuid.uuid4().hex}})

    wall = await timed(sup_run, repeats)
    critical = 4 * latency  # planner -> workers (parallel) -> conflict scan -> synthesis
    rows.append(
        [
            "supervisor, 8 workers in one batch (graph only)",
            f"{11 * latency:.2f}",
            f"{critical:.2f}",
            f"{wall:.3f}",
            f"{wall / critical:.3f}",
        ]
    )

    item_s = latency  # one item = one model call's latency
    sc_data = scenarios_input(count=3, base_size=2, batch_size=2)
    sc_data["params"] = {"item_s": item_s}
    state, _ = get_pattern("scenarios").parse(sc_data)
    sizes = [math.ceil(2 * s["scale"]) for s in sc_data["scenarios"]]
    graph = scenarios.build()

    async def scen_run() -> None:
        await graph.ainvoke(state, {"configurable": {"thread_id": uuid.uuid4().hex}})

    wall = await timed(scen_run, repeats)
    # Milestone phases wait for the slowest scenario, which is also the largest, so the
    # critical path is the largest scenario's items (its batches never wait for others).
    critical = max(sizes) * item_s
    rows.append(
        [
            f"scenarios, 3 scenarios of {sizes} items of {item_s * 1e3:.0f} ms (graph only)",
            f"{sum(sizes) * item_s:.2f}",
            f"{critical:.2f}",
            f"{wall:.3f}",
            f"{wall / critical:.3f}",
        ]
    )
    # The same two runs through the runner: Postgres checkpoints (durability "sync"),
    # registry rows, thread lock.
    async with mas.Runner(benchmark_dsn()) as runner:
        for label, pattern, raw, critical, serial in (
            ("supervisor via mas.Runner + Postgres", "supervisor", data, 4 * latency, 11 * latency),
            (
                "scenarios via mas.Runner + Postgres",
                "scenarios",
                sc_data,
                max(sizes) * item_s,
                sum(sizes) * item_s,
            ),
        ):

            async def via_runner(pattern: str = pattern, raw: dict[str, Any] = raw) -> None:
                await runner.run(pattern, raw, model=model)

            wall = await timed(via_runner, repeats)
            rows.append(
                [label, f"{serial:.2f}", f"{critical:.2f}", f"{wall:.3f}", f"{wall / critical:.3f}"]
            )
    print_table(
        f"Parallel efficiency: median of {repeats} runs, {latency * 1e3:.0f} "
        f"ms per model call; {machine()}; {uptime()}",
        ["run", "serial s", "critical path s", "wall s", "wall / critical path"],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    args = parser.parse_args()
    asyncio.run(main(args.latency, 3 if args.quick else args.repeats))
