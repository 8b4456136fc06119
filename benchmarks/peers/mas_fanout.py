"""mas-graphs' side of the peers benchmark: the supervisor as a plain fan-out (`planning`
"parallel", no conflict scan: N worker calls in one `Send` batch, then one synthesis
call) on a scripted chat model that sleeps `--latency` per call. Persistence off: the
compiled graph alone; on: `mas.Runner` on PostgreSQL (DATABASE_URL, else an embedded
server in --persist), durability "sync", as a user's run.

    python benchmarks/peers/mas_fanout.py --n 8 --latency 0 --repeats 9 [--persist DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from harness import arguments, quiet_stdout, report  # beside this script


def fan_out_input(n: int) -> dict[str, Any]:
    return {
        "task": "Fan out",
        "workers": [{"name": f"w{i}", "role": f"Worker number {i} [w{i}]"} for i in range(n)],
        "planning": "parallel",
        "conflict_scan": False,
        "max_agents": n,
        "max_parallel": n,  # every worker's call in flight at once, as the peers do
    }


async def timed_runs(
    run: Callable[[], Awaitable[None]], calls: Callable[[], int], warmup: int, repeats: int
) -> tuple[list[float], list[int]]:
    samples, counts = [], []
    for index in range(warmup + repeats):
        before = calls()
        started = time.perf_counter()
        await run()
        elapsed = time.perf_counter() - started
        counts.append(calls() - before)
        if index >= warmup:
            samples.append(elapsed)
    return samples, counts


async def main(args: argparse.Namespace, result_fd: int) -> None:
    os.environ["MAS_MAX_WORKERS"] = str(max(args.n, 16))
    import mas
    from benchmarks.cases import scripted
    from benchmarks.parallel import fan_out_script
    from mas.patterns import get_pattern
    from mas_graphs.graphs import supervisor
    from mas_graphs.nodes.context import AgentContext

    model = scripted(fan_out_script(args.n), delay=args.latency)
    data = fan_out_input(args.n)
    if args.persist is None:
        graph = supervisor.build(model=model)
        state, _ = get_pattern("supervisor").parse(data)
        context = AgentContext(model=model, max_workers=args.n)

        async def run() -> None:
            config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
            await graph.ainvoke(state, config, context=context)

        samples, counts = await timed_runs(run, lambda: len(model.calls), args.warmup, args.repeats)
    else:
        from mas_graphs.checkpoints.embedded import embedded_dsn

        dsn = os.environ.get("DATABASE_URL") or embedded_dsn(Path(args.persist))
        async with mas.Runner(dsn) as runner:

            async def run() -> None:
                await runner.run("supervisor", data, model=model)

            samples, counts = await timed_runs(
                run, lambda: len(model.calls), args.warmup, args.repeats
            )
    report(result_fd, "mas-graphs", version("mas-graphs"), args, samples, counts)


if __name__ == "__main__":
    args = arguments(__doc__)
    result_fd = quiet_stdout()  # only the JSON line goes to stdout
    asyncio.run(main(args, result_fd))
