"""The floor under mas-graphs in the peers benchmark: the same fan-out in LangGraph alone,
the way its docs write one (a `Send` per worker from START, one synthesis node, each
node one `ainvoke` of the chat model; no validation, structured output, timeouts,
retries, events, locks or registry). Persistence off: no checkpointer; on: LangGraph's
own `AsyncPostgresSaver` on the same PostgreSQL as the mas side, durability "sync".

    python benchmarks/peers/langgraph_fanout.py --n 8 --latency 0 --repeats 9 [--persist DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import os
import sys
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import START, StateGraph
from langgraph.types import Send

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from harness import arguments, quiet_stdout, report  # beside this script
from mas_fanout import timed_runs  # beside this script


class FanOutState(TypedDict):
    results: Annotated[list[str], operator.add]
    answer: str


def every_call(_prompt: str) -> str:
    """The scripted model's agent for every prompt: one reply fits every call here."""
    return "*"


def build(model: Any, n: int, checkpointer: Any = None) -> Any:
    async def worker(task: dict[str, str]) -> dict[str, Any]:
        reply = await model.ainvoke(
            [SystemMessage(f"You are {task['name']}."), HumanMessage("Fan out")]
        )
        return {"results": [reply.text]}

    async def synthesize(state: FanOutState) -> dict[str, Any]:
        reply = await model.ainvoke(
            [SystemMessage("Write the team's answer."), HumanMessage("\n".join(state["results"]))]
        )
        return {"answer": reply.text}

    def fan_out(_state: FanOutState) -> list[Send]:
        return [Send("worker", {"name": f"w{i}"}) for i in range(n)]

    graph = StateGraph(FanOutState)
    graph.add_node("worker", worker)
    graph.add_node("synthesize", synthesize)
    graph.add_conditional_edges(START, fan_out, ["worker"])
    graph.add_edge("worker", "synthesize")
    return graph.compile(checkpointer=checkpointer)


async def main(args: argparse.Namespace, result_fd: int) -> None:
    from tests.support.scripted import ScriptedChatModel

    model = ScriptedChatModel(
        script={"*": "A worker's report."},
        classify=every_call,
        delays={"*": args.latency} if args.latency else {},
    )

    threads: list[str] = []

    async def timed(graph: Any, durability: Any) -> tuple[list[float], list[int]]:
        async def run() -> None:
            threads.append(uuid.uuid4().hex)
            config: Any = {"configurable": {"thread_id": threads[-1]}}
            await graph.ainvoke({"results": []}, config, durability=durability)

        return await timed_runs(run, lambda: len(model.calls), args.warmup, args.repeats)

    if args.persist is None:
        samples, counts = await timed(build(model, args.n), None)
    else:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        from mas_graphs.checkpoints.embedded import embedded_dsn

        dsn = os.environ.get("DATABASE_URL") or embedded_dsn(Path(args.persist))
        async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
            await saver.setup()
            samples, counts = await timed(build(model, args.n, saver), "sync")
            for thread_id in threads:
                if await saver.aget_tuple({"configurable": {"thread_id": thread_id}}) is None:
                    sys.exit(f"LangGraph run {thread_id}: no checkpoint written")
    report(result_fd, "LangGraph", version("langgraph"), args, samples, counts)


if __name__ == "__main__":
    args = arguments(__doc__)
    result_fd = quiet_stdout()  # only the JSON line goes to stdout
    asyncio.run(main(args, result_fd))
