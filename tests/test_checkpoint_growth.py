"""Checkpoint bytes grow with a run's length, not its square (growing lists are stored
as deltas), and a pruned thread still rebuilds them (real PostgreSQL)."""

from __future__ import annotations

import math
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

import mas
from mas.patterns import delta_channels, get_pattern
from mas_graphs.checkpoints.admin import prune_thread
from mas_graphs.graphs import debate, scenarios
from mas_graphs.nodes.context import AgentContext
from tests.support.factories import decode
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_debate import QUESTION, STANCES, debate_agent, debate_script
from tests.support.scripts_scenarios import long_scenario

BYTES = """
SELECT (SELECT coalesce(sum(octet_length(checkpoint::text)), 0) FROM checkpoints
          WHERE thread_id = %(t)s)
     + (SELECT coalesce(sum(octet_length(blob)), 0) FROM checkpoint_blobs WHERE thread_id = %(t)s)
     + (SELECT coalesce(sum(octet_length(blob)), 0) FROM checkpoint_writes WHERE thread_id = %(t)s)
"""


def thread_bytes(dsn: str, thread_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(BYTES, {"t": thread_id}).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_scenarios_runs_checkpoint_bytes_grow_linearly_in_its_batches(
    pg_dsn: str,
) -> None:
    sizes = (50, 100, 200, 400)
    totals = []
    async with mas.Runner() as runner:
        graph = scenarios.build(checkpointer=runner.saver)
        for batches in sizes:
            state, _ = get_pattern("scenarios").parse(long_scenario(batches))
            config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
            values = await graph.ainvoke(state, config, context=AgentContext(model=None))
            assert len(values["batches"]["long"]) == batches
            totals.append(thread_bytes(pg_dsn, config["configurable"]["thread_id"]))
    # least-squares slope of log(bytes) over log(batches): 1 linear, 2 quadratic
    xs, ys = [math.log(n) for n in sizes], [math.log(b) for b in totals]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    assert slope <= 1.1, (slope, totals)


async def test_a_pruned_debate_still_rebuilds_its_transcript_and_usage(pg_dsn: str) -> None:
    model = ScriptedChatModel(
        script={a: decode(e) for a, e in debate_script().items()}, classify=debate_agent
    )
    async with mas.Runner() as runner:
        graph = debate.build(checkpointer=runner.saver, model=model)
        thread_id = uuid.uuid4().hex
        config: Any = {"configurable": {"thread_id": thread_id}}
        task = {"question": QUESTION, "stances": STANCES, "rounds": 6, "early_stop": False}
        await graph.ainvoke(task, config)
        before = (await graph.aget_state(config)).values
        assert len(before["transcript"]) == 12
        with psycopg.connect(pg_dsn, autocommit=True, row_factory=dict_row) as conn:
            removed = prune_thread(conn, thread_id, keep=1, delta_channels=delta_channels())
        assert removed > 0
        after = (await graph.aget_state(config)).values
    assert after["transcript"] == before["transcript"]
    assert after["usage"] == before["usage"]
    assert after["verdict"] == before["verdict"]
