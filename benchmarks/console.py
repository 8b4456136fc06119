"""How fast the run console's pages are for a long run: a thread of 1,000 checkpoints.

    python -m benchmarks.console [--checkpoints 1000] [--repeats 20]

The thread is made by a pattern of one node that runs once per step (registered here,
as a user's would be) and records one model call's usage each step, so the timeline
has calls and tokens to sum. Each page is fetched through the console's app in this
process (no network in between); the floor is what LangGraph itself takes to read
what the run page shows, the thread's state and its newest checkpoints as the saver
lists them, on the same saver in the same run. LangGraph's `get_state_history` rebuilds
each checkpoint's whole state (a growing channel's from its deltas) and is shown for
scale: the console reads the timeline from the saver's rows and their writes instead.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field
from starlette.testclient import TestClient
from typing_extensions import TypedDict

import mas
from benchmarks.common import benchmark_dsn, console, machine, print_table, uptime
from mas.console import console_app
from mas.console.data import TIMELINE_ROWS
from mas.patterns import get_pattern
from mas_graphs.checkpoints.savers import open_saver
from mas_graphs.state.common import CallUsage, growing
from mas_graphs.state.pattern import PatternSpec


class TicksInput(BaseModel):
    ticks: int = Field(ge=1, le=100_000)


class TicksState(TypedDict, total=False):
    ticks: int
    done: int
    usage: Annotated[list[CallUsage], growing()]  # as the patterns keep usage


def tick(state: TicksState) -> dict[str, Any]:
    call = CallUsage(
        agent="ticker", calls=1, input_tokens=40, output_tokens=10, latency_ms=1.0,
        ok=True, notes=[], model="bench:ticker",
    )  # fmt: skip
    return {"done": state.get("done", 0) + 1, "usage": [call]}


def build(
    options: Any = None, *, checkpointer: Any = None, model: Any = None, defaults: Any = None
) -> Any:
    graph = StateGraph(TicksState, input_schema=TicksInput)
    graph.add_node("tick", tick)
    graph.add_edge(START, "tick")
    graph.add_conditional_edges(
        "tick", lambda s: "tick" if s["done"] < s["ticks"] else END, ["tick", END]
    )
    return graph.compile(checkpointer=checkpointer, name="ticks")


TICKS = PatternSpec(
    name="ticks", description="One node, once per step (a benchmark).", input=TicksInput,
    build=build, solo_reason="a benchmark pattern",
)  # fmt: skip


def median_ms(fetch: Callable[[], object], repeats: int) -> float:
    fetch()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fetch()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main(checkpoints: int, repeats: int) -> None:
    dsn = benchmark_dsn()
    mas.register_pattern(TICKS)
    thread_id = f"console-bench-{time.time_ns()}"
    ticks = checkpoints - 2  # the input's checkpoint and the first step's
    model = "factory:benchmarks.console:no_model"
    made = mas.arun("ticks", {"ticks": ticks}, thread_id=thread_id, model=model, dsn=dsn)
    result = asyncio.run(made)
    assert result["done"] == ticks

    with open_saver(dsn) as saver, TestClient(console_app(dsn)) as client:
        graph = get_pattern("ticks").build(saver, {})
        config: Any = {"configurable": {"thread_id": thread_id}}
        stored = sum(1 for _ in checkpointer_of(graph).list(config))

        root: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}

        def floor_reads() -> None:
            graph.get_state(config)
            list(checkpointer_of(graph).list(root, limit=TIMELINE_ROWS + 2))

        def history() -> None:
            list(graph.get_state_history(config, limit=TIMELINE_ROWS + 1))

        newest = next(iter(graph.get_state_history(config, limit=1))).config["configurable"]
        older = list(graph.get_state_history(config, limit=TIMELINE_ROWS))[-1].config
        pages = {
            "threads list": "/",
            "run page": f"/threads/{thread_id}",
            "run page, live refresh": f"/threads/{thread_id}?fragment=1",
            "a checkpoint's state": f"/threads/{thread_id}/checkpoints/{newest['checkpoint_id']}",
            "a diff of two checkpoints": (
                f"/threads/{thread_id}/checkpoints/{newest['checkpoint_id']}"
                f"?against={older['configurable']['checkpoint_id']}"
            ),
        }
        floor = median_ms(floor_reads, repeats)
        naive = median_ms(history, max(3, repeats // 4))
        rows = [
            [
                "LangGraph: state + the saver's newest 202 checkpoints (floor)",
                f"{floor:.1f}",
                "1.00",
            ],
            [
                "LangGraph: get_state_history of 201 (not used)",
                f"{naive:.1f}",
                f"{naive / floor:.2f}",
            ],
        ]
        for name, path in pages.items():
            assert client.get(path).status_code == 200, path
            took = median_ms(lambda path=path: client.get(path), repeats)  # type: ignore[misc]
            rows.append([name, f"{took:.1f}", f"{took / floor:.2f}"])
    print_table(
        f"console pages for a thread of {stored:,} checkpoints (median of {repeats})",
        ["page", "ms", "× floor"],
        rows,
    )
    console.print(f"[dim]{machine()}; {uptime()}[/dim]")


def no_model() -> Any:
    """The ticker calls no model; the runner still wants one to hand its nodes."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=["-"])


def checkpointer_of(graph: Any) -> BaseCheckpointSaver[Any]:
    saver = graph.checkpointer
    assert isinstance(saver, BaseCheckpointSaver)
    return saver


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoints", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=20)
    arguments = parser.parse_args()
    main(arguments.checkpoints, arguments.repeats)
