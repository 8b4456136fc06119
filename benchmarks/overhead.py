"""Framework overhead: each pattern on an instant scripted model, against a bare LangGraph
graph of the same shape (benchmarks/bare.py), without a checkpointer and with the same
Postgres saver; then the runner's own per-run cost (mas.arun, mas.Runner).

    python -m benchmarks.overhead [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

import mas
from benchmarks.cases import Case, Graph, cases
from benchmarks.common import benchmark_dsn, machine, median_seconds, print_table, uptime
from mas_graphs.checkpoints.savers import open_async_saver
from mas_graphs.nodes.context import AgentContext


async def transitions(graph: Graph, case: Case, context: AgentContext) -> int:
    """Node executions in one run, subgraph nodes included."""
    count = 0
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    async for _, mode, _chunk in graph.astream(
        case.state_input, config, context=context, stream_mode=["tasks"], subgraphs=True
    ):
        count += mode == "tasks"
    return count // 2  # a start and a finish event per task


def invoker(graph: Graph, case: Case, context: AgentContext) -> Any:
    async def run() -> None:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        durability = "sync" if graph.checkpointer is not None else None  # as the runner
        # Per run: a saga's order may be fulfilled once, so each run brings a new one.
        await graph.ainvoke(case.state_input, config, context=context, durability=durability)  # type: ignore[arg-type]

    return run


async def main(repeats: int) -> None:
    dsn = benchmark_dsn()
    rows: list[list[str]] = []

    async def row(label: str, steps: int, bare_run: Any, our_run: Any) -> None:
        # Interleave the two so load from other processes hits both alike.
        b_samples, o_samples = [], []
        for _ in range(3):
            b_samples.append(await median_seconds(bare_run, max(1, repeats // 3)))
            o_samples.append(await median_seconds(our_run, max(1, repeats // 3)))
        b, o = sorted(b_samples)[1], sorted(o_samples)[1]
        rows.append(
            [
                label,
                str(steps),
                f"{b * 1e3:.2f}",
                f"{o * 1e3:.2f}",
                f"{o / b:.2f}",
                f"{b / steps * 1e6:.0f}",
                f"{o / steps * 1e6:.0f}",
            ]
        )

    async with open_async_saver(dsn) as saver:
        pool = saver.conn
        for case in cases():
            context = AgentContext(model=case.model, db=pool if case.needs_db else None)  # type: ignore[arg-type]
            ours, bare = case.ours(None), case.bare(None)
            steps = await transitions(bare, case, context)
            await row(
                f"{case.name}, no checkpointer",
                steps,
                invoker(bare, case, context),
                invoker(ours, case, context),
            )
            ours_pg, bare_pg = case.ours(saver), case.bare(saver)
            await row(
                f"{case.name}, Postgres (sync)",
                steps,
                invoker(bare_pg, case, context),
                invoker(ours_pg, case, context),
            )
        sup = cases()[0]
        context = AgentContext(model=sup.model)
        bare_pg = sup.bare(saver)
        steps = await transitions(bare_pg, sup, context)

        async def one_call() -> None:
            await mas.arun("supervisor", sup.raw_input, model=sup.model, dsn=dsn)

        await row(
            "supervisor, mas.arun (own pool) vs bare+Postgres",
            steps,
            invoker(bare_pg, sup, context),
            one_call,
        )
        async with mas.Runner(dsn) as runner:

            async def shared_pool() -> None:
                await runner.run("supervisor", sup.raw_input, model=sup.model)

            await row(
                "supervisor, mas.Runner (shared pool) vs bare+Postgres",
                steps,
                invoker(bare_pg, sup, context),
                shared_pool,
            )
    print_table(
        f"Framework overhead: median of {repeats} runs; {machine()}; {uptime()}",
        [
            "configuration",
            "transitions",
            "bare ms/run",
            "mas ms/run",
            "ratio",
            "bare µs/trans.",
            "mas µs/trans.",
        ],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="9 repeats")
    args = parser.parse_args()
    asyncio.run(main(9 if args.quick else args.repeats))
