"""Checkpoint cost: time per superstep with no checkpointer, in memory, and in Postgres
(durability "sync", "async", "exit"); bytes written per superstep; total bytes of a
complex 8x scenarios run and a 6-round debate, and how they grow with the run's length.

    python -m benchmarks.checkpoints [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import uuid
from typing import Any

import psycopg
from langgraph.checkpoint.memory import InMemorySaver

from benchmarks.cases import Case, Graph, cases, scripted
from benchmarks.common import benchmark_dsn, machine, median_seconds, print_table, uptime
from mas.patterns import get_pattern
from mas_graphs.checkpoints.savers import open_async_saver
from mas_graphs.graphs import debate, scenarios
from mas_graphs.nodes.context import AgentContext
from tests.support.scripts_debate import QUESTION, STANCES, debate_agent, debate_script
from tests.support.scripts_scenarios import SLEEP_SKILL, long_scenario

SIZES = """
SELECT
  (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s AND checkpoint_ns = '') AS steps,
  (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s) AS checkpoints,
  (SELECT coalesce(sum(octet_length(checkpoint::text) + octet_length(metadata::text)), 0)
     FROM checkpoints WHERE thread_id = %(t)s) AS checkpoint_bytes,
  (SELECT coalesce(sum(octet_length(blob)), 0)
     FROM checkpoint_blobs WHERE thread_id = %(t)s) AS blob_bytes,
  (SELECT coalesce(sum(octet_length(blob)), 0)
     FROM checkpoint_writes WHERE thread_id = %(t)s) AS write_bytes
"""


async def thread_bytes(dsn: str, thread_id: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(SIZES, {"t": thread_id})
        row = await cursor.fetchone()
        assert row is not None
        names = [d.name for d in cursor.description or []]
        values = dict(zip(names, row, strict=True))
        values["total"] = values["checkpoint_bytes"] + values["blob_bytes"] + values["write_bytes"]
        return values


async def supersteps(graph: Graph, state_input: Any, context: AgentContext) -> int:
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    await graph.ainvoke(state_input, config, context=context)
    return sum(1 for _ in [c async for c in graph.aget_state_history(config)])


async def timing(dsn: str, repeats: int) -> None:
    rows = []
    async with open_async_saver(dsn) as saver:
        for case in [c for c in cases() if c.name in ("supervisor", "debate")]:
            rows.extend(await timing_rows(case, saver, repeats))
    print_table(
        f"Checkpoint cost per superstep: median of {repeats} runs; {machine()}; {uptime()}",
        ["pattern, saver", "supersteps", "ms/run", "ms/superstep", "cost/superstep vs none ms"],
        rows,
    )


async def timing_rows(case: Case, saver: Any, repeats: int) -> list[list[str]]:
    context = AgentContext(model=case.model)
    state_input = case.state_input
    memory = InMemorySaver()
    steps = await supersteps(case.ours(memory), state_input, context)
    configs: list[tuple[str, Graph, str | None]] = [
        ("no checkpointer", case.ours(None), None),
        ("InMemorySaver", case.ours(memory), "sync"),
        ("Postgres, durability sync", case.ours(saver), "sync"),
        ("Postgres, durability async", case.ours(saver), "async"),
        ("Postgres, durability exit", case.ours(saver), "exit"),
    ]
    medians: dict[str, float] = {}
    for label, graph, durability in configs:

        async def run(graph: Graph = graph, durability: str | None = durability) -> None:
            config = {"configurable": {"thread_id": uuid.uuid4().hex}}
            await graph.ainvoke(state_input, config, context=context, durability=durability)  # type: ignore[arg-type]

        medians[label] = await median_seconds(run, repeats)
    base = medians["no checkpointer"]
    return [
        [
            f"{case.name}, {label}",
            str(steps),
            f"{t * 1e3:.2f}",
            f"{t / steps * 1e3:.2f}",
            f"{(t - base) / steps * 1e3:+.2f}",
        ]
        for label, t in medians.items()
    ]


def debate_input(rounds: int) -> dict[str, Any]:
    return {"question": QUESTION, "stances": STANCES, "rounds": rounds}


def scenarios_default(base_size: int) -> dict[str, Any]:
    """The default simple / medium / complex (8x) scenarios on the instant sleep skill."""
    return {
        "skill": SLEEP_SKILL,
        "params": {"item_s": 0.0},
        "base_size": base_size,
        "scenarios": [{"name": "simple"}, {"name": "medium"}, {"name": "complex"}],
    }


def fitted_exponent(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of log(bytes) over log(length): 1 linear, 2 quadratic."""
    xs, ys = [math.log(n) for n, _ in points], [math.log(b) for _, b in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )


async def growth(dsn: str) -> None:
    rows = []
    async with open_async_saver(dsn) as saver:
        model = scripted(debate_script(), debate_agent)
        series: list[tuple[str, list[tuple[str, int, Graph, dict[str, Any]]]]] = [
            (
                "debate",
                [
                    (f"{n} rounds", n, debate.build(checkpointer=saver, model=model),
                     debate_input(n) | {"early_stop": False})
                    for n in (2, 3, 4, 6)
                ],
            ),
            (
                "scenarios",
                [
                    (f"{n} batches (free)", n, scenarios.build(checkpointer=saver),
                     long_scenario(n))
                    for n in (62, 125, 250, 500)
                ],
            ),
            (
                "scenarios",
                [
                    (f"base_size {n} (3 scenarios, 8x: {8 * n // 20} batches, milestones)", n,
                     scenarios.build(checkpointer=saver), scenarios_default(n))
                    for n in (20, 40, 80, 160)
                ],
            ),
        ]  # fmt: skip
        for pattern, runs in series:
            points: list[tuple[int, int]] = []
            for label, n, graph, raw in runs:
                state, _ = get_pattern(pattern).parse(raw)
                thread_id = uuid.uuid4().hex
                config = {"configurable": {"thread_id": thread_id}}
                await graph.ainvoke(
                    state, config, context=AgentContext(model=model), durability="sync"
                )
                size = await thread_bytes(dsn, thread_id)
                exponent = ""
                if points:
                    n0, total0 = points[-1]
                    exponent = f"{math.log(size['total'] / total0) / math.log(n / n0):.2f}"
                points.append((n, size["total"]))
                fit = f"{fitted_exponent(points):.2f}" if len(points) == len(runs) else ""
                rows.append(
                    [
                        f"{pattern}, {label}",
                        str(size["steps"]),
                        str(size["checkpoints"]),
                        f"{size['checkpoint_bytes'] / 1024:.1f}",
                        f"{size['blob_bytes'] / 1024:.1f}",
                        f"{size['write_bytes'] / 1024:.1f}",
                        f"{size['total'] / 1024:.1f}",
                        exponent,
                        fit,
                    ]
                )
    print_table(
        "Checkpoint bytes in Postgres per thread (durability sync); growth exp. = "
        "log(total ratio) / log(length ratio) against the row above, fit = least-squares "
        "exponent over the series (1 linear, 2 quadratic)",
        [
            "run",
            "supersteps",
            "checkpoints (all ns)",
            "checkpoints KiB",
            "blobs KiB",
            "writes KiB",
            "total KiB",
            "growth exp.",
            "fit",
        ],
        rows,
    )


async def main(repeats: int) -> None:
    dsn = benchmark_dsn()
    await timing(dsn, repeats)
    await growth(dsn)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="7 repeats")
    args = parser.parse_args()
    asyncio.run(main(7 if args.quick else args.repeats))
