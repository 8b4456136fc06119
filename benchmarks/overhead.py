"""Framework overhead: each pattern on an instant scripted model, against a bare LangGraph
graph of the same shape, without a checkpointer and with the same Postgres saver.

    python -m benchmarks.overhead [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

from langgraph.graph.state import CompiledStateGraph

import mas
from benchmarks.bare import bare_supervisor
from benchmarks.common import benchmark_dsn, machine, median_seconds, print_table
from checkpoints.savers import open_async_saver
from graphs import supervisor
from nodes.context import AgentContext
from tests.factories import decode
from tests.scripted import ScriptedChatModel
from tests.scripts_supervisor import TEAM, supervisor_script

INPUT = {"task": "Queue or not?", "workers": TEAM}


def instant_model() -> ScriptedChatModel:
    return ScriptedChatModel(script={a: decode(e) for a, e in supervisor_script().items()})


async def transitions(graph: CompiledStateGraph[Any, Any, Any, Any], **kwargs: Any) -> int:
    """Node executions in one run."""
    count = 0
    async for mode, _ in graph.astream(INPUT, stream_mode=["tasks"], **kwargs):
        count += mode == "tasks"
    return count // 2  # a start and a finish event per task


def invoker(graph: CompiledStateGraph[Any, Any, Any, Any], **kwargs: Any) -> Any:
    async def run() -> None:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        if graph.checkpointer is not None:
            kwargs["durability"] = "sync"  # as the runner does
        await graph.ainvoke(INPUT, config, **kwargs)  # type: ignore[arg-type]

    return run


async def main(repeats: int) -> None:
    dsn = benchmark_dsn()
    model = instant_model()
    context = AgentContext(model=model)
    ours, bare = supervisor.build(), bare_supervisor(model)
    steps = await transitions(bare)
    rows = []

    async def row(label: str, bare_run: Any, our_run: Any) -> None:
        b = await median_seconds(bare_run, repeats)
        o = await median_seconds(our_run, repeats)
        rows.append(
            [
                label,
                f"{b * 1e3:.2f}",
                f"{o * 1e3:.2f}",
                f"{o / b:.2f}",
                f"{b / steps * 1e6:.0f}",
                f"{o / steps * 1e6:.0f}",
            ]
        )

    await row("supervisor, no checkpointer", invoker(bare), invoker(ours, context=context))
    async with open_async_saver(dsn) as saver:
        bare_pg, ours_pg = bare_supervisor(model, saver), supervisor.build(checkpointer=saver)
        await row(
            "supervisor, Postgres (sync)", invoker(bare_pg), invoker(ours_pg, context=context)
        )

        async def one_call() -> None:
            await mas.arun("supervisor", INPUT, model=model, dsn=dsn)

        await row("supervisor, mas.arun (own pool) vs bare+Postgres", invoker(bare_pg), one_call)
        async with mas.Runner(dsn) as runner:

            async def shared_pool() -> None:
                await runner.run("supervisor", INPUT, model=model)

            await row(
                "supervisor, mas.Runner (shared pool) vs bare+Postgres",
                invoker(bare_pg),
                shared_pool,
            )
    print_table(
        f"Framework overhead: median of {repeats} runs, {steps} node transitions per run, "
        f"{machine()}",
        [
            "configuration",
            "bare ms/run",
            "mas ms/run",
            "ratio",
            "bare µs/transition",
            "mas µs/transition",
        ],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    asyncio.run(main(parser.parse_args().repeats))
