"""Concurrency: 20 threads of mixed patterns at once on one Runner (one pool), and two
processes racing to resume one thread. Nothing interleaves, nothing is lost."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import mas
from scripts.fault_campaign import saga_rows, without_timings
from tests.support.factories import decode, encode
from tests.support.processes import ROOT, json_tail, logged_calls, subprocess_env
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_debate import STANCES
from tests.support.scripts_mixed import any_agent, mixed_script
from tests.support.scripts_saga import FLAG, order, saga_script
from tests.support.scripts_saga import saga_rows as read_saga_rows
from tests.support.scripts_supervisor import TEAM

MODEL = "factory:tests.support.factories:scripted_from_env"


def mixed_model() -> ScriptedChatModel:
    script = mixed_script()
    return ScriptedChatModel(
        script={a: decode(e) for a, e in script.items()}, classify=any_agent, delays={"*": 0.05}
    )


def inputs(index: int) -> tuple[str, dict[str, Any]]:
    kind = index % 4
    if kind == 0:
        return "supervisor", {"task": f"task {index}", "workers": TEAM}
    if kind == 1:
        return "debate", {"question": f"question {index}", "stances": STANCES, "rounds": 2}
    if kind == 2:
        return "scenarios", {"skill": "rank", "base_size": 5 + index, "seed": index}
    return "saga", {"order": order(order_id=f"C-{index}", quantity=1 + index), "backoff_s": 0}


async def test_twenty_mixed_threads_on_one_runner(pg_dsn: str) -> None:
    async with mas.Runner(pool_size=5) as runner:
        results = await asyncio.gather(
            *(runner.run(*inputs(i), model=mixed_model()) for i in range(20))
        )
        # Each alone, one at a time, for comparison (the saga, whose order can run only
        # once, is checked by its rows below).
        alone = [await runner.run(*inputs(i), model=mixed_model()) for i in range(3)]
    assert [r.status for r in results] == ["done"] * 20
    assert len({r.thread_id for r in results}) == 20
    for index, result in enumerate(results):
        pattern, data = inputs(index)
        if index < 3:
            assert without_timings(dict(result), result.thread_id) == without_timings(
                dict(alone[index]), alone[index].thread_id
            ), pattern
        # Each thread's state is its own input's: nothing from a neighbour leaked in.
        if pattern == "supervisor":
            assert result["task"] == data["task"]
        elif pattern == "debate":
            assert result["question"] == data["question"]
        elif pattern == "scenarios":
            assert (result["base_size"], result["seed"]) == (data["base_size"], data["seed"])
        else:
            assert result["status"] == "completed"
            rows = await read_saga_rows(result.thread_id)
            assert all(len(table) == 1 for table in rows.values()), rows
            assert all(
                row["order_id"] == data["order"]["order_id"]
                for table in rows.values()
                for row in table
            ), rows


def test_two_processes_racing_to_resume_one_thread(tmp_path: Path, pg_dsn: str) -> None:
    script = tmp_path / "script.json"
    script.write_text(encode(saga_script(FLAG)))
    call_log = tmp_path / "calls.log"
    env = subprocess_env(
        MAS_TEST_SCRIPT=str(script),
        MAS_TEST_CLASSIFY="tests.support.scripts_saga:saga_agent",
        MAS_TEST_CALL_LOG=str(call_log),
        MAS_MODEL=MODEL,
    )
    thread_id = "race-" + tmp_path.name[-8:]
    data = json.dumps({"order": order(), "backoff_s": 0})
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "mas",
            "run",
            "saga",
            "--input",
            data,
            "--thread-id",
            thread_id,
            "--model",
            MODEL,
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json_tail(started.stdout)["status"] == "interrupted", started.stderr
    command = [
        sys.executable,
        "-m",
        "mas",
        "resume",
        thread_id,
        "--answer",
        '{"approve": true}',
        "--json",
    ]
    racers = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [racer.communicate(timeout=120) for racer in racers]
    codes = sorted(racer.returncode for racer in racers)
    assert codes == [0, 1], outputs
    winner = next(out for (out, _), r in zip(outputs, racers, strict=True) if r.returncode == 0)
    loser = next(err for (_, err), r in zip(outputs, racers, strict=True) if r.returncode == 1)
    assert json_tail(winner)["values"]["status"] == "completed"
    last = loser.strip().splitlines()[-1]
    assert "error: " in last and (
        "already running" in last or "already finished" in last or "not waiting" in last
    ), loser
    # Each effect once: the loser applied nothing.
    counts = {table: len(rows) for table, rows in saga_rows(pg_dsn, thread_id).items()}
    assert counts == {
        "order_risk_checks": 1,
        "order_reservations": 1,
        "order_payments": 1,
        "order_shipments": 1,
    }
    assert logged_calls(call_log) == ["risk_checker"]
