"""Scenarios against real PostgreSQL: crash and resume from another process, the CLI,
Langfuse tracing."""

from __future__ import annotations

import collections
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import mas
from tests.support.processes import (
    json_tail,
    listed_status,
    logged_calls,
    mas_cli,
    start_mas,
    subprocess_env,
)
from tests.support.scripts_scenarios import SLEEP_SKILL, notebook_model

FACTORY = "factory:tests.support.scripts_scenarios:notebook_model"
TIMING_KEYS = {
    "elapsed_ms",
    "work_ms",
    "ms_per_item",
    "at_ms",
    "wall_ms",
    "parallel_efficiency",
    "scaling",
    "recommendations",
}


def crash_input(sync: str) -> dict[str, Any]:
    return {
        "skill": SLEEP_SKILL,
        "params": {"item_s": 0.1},
        "sync": sync,
        "base_size": 4,
        "scenarios": [
            {"name": "a", "scale": 1, "batch_size": 2, "difficulty": 0.2},
            {"name": "b", "scale": 2, "batch_size": 2},
            {"name": "c", "scale": 3, "batch_size": 3, "difficulty": 0.5},
        ],
    }


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def start_run(thread_id: str, data: dict[str, Any], env: dict[str, str]) -> Any:
    """`mas run scenarios` in a process of its own."""
    args = ["run", "scenarios", "--input", json.dumps(data), "--thread-id", thread_id, "--json"]
    return start_mas(*args, env=env)


def kill_under_way(process: Any, log: Path, items: int) -> None:
    """SIGKILL `process` once the skill has logged `items` items in all."""
    try:
        wait_for_lines(log, items)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)


def wait_for_lines(path: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(logged_calls(path)) < count:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.01)


@pytest.mark.parametrize("sync", ["milestone", "free"])
async def test_crash_mid_run_resumes_without_redoing_finished_batches(
    sync: str, thread_id: str, tmp_path: Path
) -> None:
    log = tmp_path / "skill.log"
    env = subprocess_env(MAS_TEST_SKILL_LOG=str(log), MAS_MODEL=FACTORY)
    data = crash_input(sync)
    process = start_run(thread_id, data, env)  # on FACTORY, the model MAS_MODEL names
    kill_under_way(process, log, 9)
    assert process.returncode == -signal.SIGKILL, "the run finished before the kill"
    before_kill = set(logged_calls(log))

    resumed = mas_cli("resume", thread_id, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    final = json_tail(resumed.stdout)
    assert final["status"] == "done"
    values = final["values"]

    counts = collections.Counter(logged_calls(log))
    assert sum(run["size"] for run in values["runs"].values()) == len(counts) == 24
    assert 0 < len(before_kill) < 24
    assert any(counts[item] == 1 for item in before_kill), "finished batches were redone"
    for name in values["runs"]:
        redone = {
            int(i.split(":")[1]) for i, n in counts.items() if n > 1 and i.split(":")[0] == name
        }
        assert redone <= {int(i.split(":")[1]) for i in before_kill if i.split(":")[0] == name}
        # only the batch that was in flight when the process died ran twice
        in_flight = [
            b for b in values["batches"][name] if any(b["start"] <= i < b["end"] for i in redone)
        ]
        assert len(in_flight) <= 1, (name, redone)

    uninterrupted = await mas.arun("scenarios", data, model=notebook_model())
    assert without_timings(values["aggregate"]) == without_timings(uninterrupted["aggregate"])
    assert without_timings(values["timeline"]) == without_timings(uninterrupted["timeline"])


def test_a_failed_scenario_restarts_alone_after_a_crash(thread_id: str, tmp_path: Path) -> None:
    """`mas resume THREAD --restart NAME`: only that scenario runs again, from its last
    finished batch, the others' results stay, and the aggregate is recomputed; a restart
    killed midway finishes with a plain `mas resume`."""
    log, heal = tmp_path / "skill.log", tmp_path / "healed"
    env = subprocess_env(
        MAS_TEST_SKILL_LOG=str(log), MAS_MODEL=FACTORY, MAS_TEST_HEAL_FILE=str(heal)
    )
    data = {
        "skill": SLEEP_SKILL,
        "params": {"item_s": 0.2},
        "base_size": 8,
        "max_attempts": 1,
        "scenarios": [
            {"name": "ok", "scale": 1, "batch_size": 4},
            {"name": "broken", "scale": 1, "batch_size": 2, "characteristics": {"fail_from": 2}},
        ],
    }
    ran = mas_cli(
        "run", "scenarios", "--input", json.dumps(data), "--thread-id", thread_id, "--json", env=env
    )
    assert ran.returncode == 0, ran.stderr
    first = json_tail(ran.stdout)["values"]
    assert (
        first["runs"]["broken"]["status"] == "failed" and first["runs"]["broken"]["items_done"] == 2
    )
    assert first["runs"]["ok"]["status"] == "done"

    # What cannot restart is refused before anything is written.
    for parts, problem in ((["ok"], "ok: done"), (["nobody"], "unknown scenarios nobody")):
        refused = mas_cli("resume", thread_id, *(f"--restart={p}" for p in parts), env=env)
        assert refused.returncode == 1 and problem in refused.stderr, refused.stderr
    assert listed_status(thread_id) == "done"

    heal.touch()
    process = start_mas("resume", thread_id, "--restart", "broken", "--json", env=env)
    kill_under_way(process, log, len(logged_calls(log)) + 2)  # the restart is under way
    resumed = mas_cli("resume", thread_id, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    values = json_tail(resumed.stdout)["values"]

    assert (
        values["runs"]["broken"]["status"] == "done" and values["runs"]["broken"]["items_done"] == 8
    )
    assert values["batches"]["ok"] == first["batches"]["ok"], "the finished scenario stayed"
    counts = collections.Counter(logged_calls(log))
    assert all(counts[f"ok:{i}"] == 1 for i in range(8)), "the finished scenario ran once"
    assert counts["broken:0"] == counts["broken:1"] == 1, "its finished batch was kept"
    assert values["aggregate"]["scenarios"]["broken"]["status"] == "done"
    assert values["aggregate"]["scenarios"]["broken"]["items_processed"] == 8


async def test_when_all_scenarios_fail_they_retry_with_smaller_batches_then_say_why() -> None:
    data = {
        "skill": SLEEP_SKILL,
        "params": {"item_s": 0.0},
        "base_size": 8,
        "max_attempts": 1,
        "backoff_s": 0,
        "scenarios": [
            {"name": "a", "scale": 1, "batch_size": 4, "characteristics": {"fail_from": 2}},
            {"name": "b", "scale": 1, "batch_size": 8, "characteristics": {"fail_from": 6}},
        ],
    }
    result = await mas.arun("scenarios", data, model=notebook_model())
    assert result["auto_retried"] is True
    # each went on from its last finished batch with half the batch size: a got further
    assert (result["runs"]["a"]["batch_size"], result["runs"]["a"]["items_done"]) == (2, 2)
    assert (result["runs"]["b"]["batch_size"], result["runs"]["b"]["items_done"]) == (4, 6)
    aggregate = result["aggregate"]
    assert aggregate["aborted"] is True
    assert aggregate["diagnosis"] == [
        "a: failed at batch 1 after 2 of 8 items: batch 1: ConnectionError: item a:2 failed",
        "b: failed at batch 3 after 6 of 8 items: batch 3: ConnectionError: item b:6 failed",
    ]


def test_watch_follows_a_run_in_another_process_until_it_ends(
    thread_id: str, tmp_path: Path
) -> None:
    """`mas watch` reads the run from its checkpoints, nested phases included, while
    `mas run` executes it elsewhere, and ends with the result when the run ends."""
    log = tmp_path / "skill.log"
    env = subprocess_env(MAS_TEST_SKILL_LOG=str(log), MAS_MODEL=FACTORY)
    process = start_run(thread_id, crash_input("milestone"), env)
    try:
        wait_for_lines(log, 2)  # under way
        watched = mas_cli("watch", thread_id, "--every", "0.1", env=env)
        finished = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert watched.returncode == 0, watched.stderr
    assert finished == 0
    assert len(logged_calls(log)) == 24, "the watch ended only with the run"
    out = watched.stdout
    assert f"{thread_id} · scenarios · done" in out
    assert all(f"{name} " in out and "quality ranking by accuracy" in out for name in "abc")


def test_watch_ends_when_the_process_running_the_thread_died(
    thread_id: str, tmp_path: Path
) -> None:
    log = tmp_path / "skill.log"
    env = subprocess_env(MAS_TEST_SKILL_LOG=str(log), MAS_MODEL=FACTORY)
    kill_under_way(start_run(thread_id, crash_input("free"), env), log, 2)
    watched = mas_cli("watch", thread_id, env=env)
    assert watched.returncode == 1
    assert f"thread {thread_id} failed: the process running it exited mid-run" in watched.stderr
    assert "`mas resume` continues it" in watched.stderr


def test_cli_shows_the_aggregate(thread_id: str) -> None:
    data = crash_input("milestone") | {"params": {"item_s": 0.001}}
    result = mas_cli(
        "run", "scenarios", "--input", json.dumps(data), "--thread-id", thread_id,
        "--model", FACTORY,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for text in ("12/12", "milestones", "100%", "quality ranking by accuracy", "done"):
        assert text in result.stdout, text


async def test_spans_per_scenario_batch_and_per_sync_node(langfuse_spans: Any) -> None:
    data = crash_input("milestone") | {"params": {"item_s": 0.001}}
    result = await mas.arun("scenarios", data, model=notebook_model())
    spans = langfuse_spans.get_finished_spans()
    names = collections.Counter(span.name for span in spans)
    batches = sum(len(records) for records in result["batches"].values())
    assert names["run_batch"] == batches
    assert names["run_phase"] >= len(result["runs"])
    assert names["milestone_sync"] == len(result["timeline"]) == 5
    batch_inputs = [
        str(span.attributes.get("langfuse.observation.input", ""))
        for span in spans
        if span.name == "run_batch"
    ]
    for name, records in result["batches"].items():
        assert sum(f'"name": "{name}"' in text for text in batch_inputs) == len(records)
