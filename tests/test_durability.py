"""Crash, resume, locking and thread admin against real PostgreSQL, across processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

import mas
from mas_graphs.checkpoints.admin import count_checkpoints, get_thread, list_threads, prune_thread
from mas_graphs.checkpoints.errors import ThreadLocked
from mas_graphs.checkpoints.locks import ThreadLocks
from mas_graphs.checkpoints.savers import CONNECTION_KWARGS
from tests.support.factories import decode, encode
from tests.support.processes import (
    json_tail,
    listed_status,
    logged_calls,
    mas_cli,
    start_mas,
    subprocess_env,
    wait_for,
)
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_supervisor import TEAM, supervisor_script

TASK = {"task": "Queue or not?", "workers": TEAM}
SCRIPTED = "factory:tests.support.factories:scripted_from_env"


def scripted_env(
    tmp_path: Path, call_log: Path, delays: dict[str, float] | None = None
) -> dict[str, str]:
    script = tmp_path / "script.json"
    script.write_text(encode(supervisor_script()))
    return subprocess_env(
        MAS_TEST_SCRIPT=str(script),
        MAS_TEST_CALL_LOG=str(call_log),
        MAS_TEST_DELAYS=json.dumps(delays or {}),
        MAS_MODEL=SCRIPTED,  # resumes re-make a factory model only from the environment
    )


def start_supervisor(thread_id: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`mas run supervisor` on the scripted model, in a process of its own."""
    args = ["run", "supervisor", "--input", json.dumps(TASK), "--model", SCRIPTED]
    return start_mas(*args, "--thread-id", thread_id, env=env)


def saved_results(dsn: str, thread_id: str) -> int:
    """Finished tasks' writes to the `results` channel, as the checkpointer stored them."""
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FROM checkpoint_writes "
                "WHERE thread_id = %s AND channel = 'results'",
                (thread_id,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:  # the run has not set the database up yet
            return 0
    return int(row[0]) if row else 0


def comparable(values: dict[str, Any]) -> dict[str, Any]:
    """A run's outcome without what legitimately differs between runs (attempt counts)."""
    return {
        "plan": values["plan"],
        "reports": {name: r["report"] for name, r in values["results"].items()},
        "statuses": {name: r["status"] for name, r in values["results"].items()},
        "synthesis": values["synthesis"],
    }


def reference_values(env: dict[str, str]) -> dict[str, Any]:
    """The final state of an uninterrupted scripted supervisor run."""
    args = ["run", "supervisor", "--input", json.dumps(TASK), "--model", SCRIPTED, "--json"]
    reference = mas_cli(*args, env=env)
    assert reference.returncode == 0, reference.stderr
    values: dict[str, Any] = json_tail(reference.stdout)["values"]
    return values


def test_killed_run_resumes_in_a_new_process_without_repeating_finished_workers(
    tmp_path: Path, pg_dsn: str, thread_id: str
) -> None:
    reference = reference_values(scripted_env(tmp_path, tmp_path / "reference.log"))

    call_log = tmp_path / "calls.log"
    slow = scripted_env(tmp_path, call_log, delays={"analyst": 60})
    process = start_supervisor(thread_id, slow)
    try:
        # researcher and analyst run in one batch; kill once researcher's result is durable.
        wait_for(lambda: saved_results(pg_dsn, thread_id) >= 1, what="researcher's saved result")
        assert "analyst" in logged_calls(call_log)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    # The server ends the dead process's session, and with it the lock, within moments.
    wait_for(lambda: listed_status(thread_id, slow) == "failed", 10, "the run to show as failed")

    resumed = mas_cli("resume", thread_id, "--json", env=scripted_env(tmp_path, call_log))
    assert resumed.returncode == 0, resumed.stderr
    final = json_tail(resumed.stdout)
    assert final["status"] == "done"
    assert comparable(final["values"]) == comparable(reference)

    calls = logged_calls(call_log)
    assert calls.count("planner") == 1
    assert calls.count("researcher") == 1, "a worker that finished before the kill ran again"
    assert calls.count("analyst") == 2, "the worker in flight runs again after the resume"
    assert calls.count("critic") == 1


def test_second_process_resuming_a_running_thread_is_refused(
    tmp_path: Path, thread_id: str, call_log: Path
) -> None:
    env = scripted_env(tmp_path, call_log, delays={"analyst": 60})
    process = start_supervisor(thread_id, env)
    try:
        wait_for(lambda: "analyst" in logged_calls(call_log), what="the run to be in its batch")
        second = mas_cli("resume", thread_id, env=env)
        assert second.returncode == 1
        assert f"thread {thread_id} is already running" in second.stderr
        assert listed_status(thread_id, env) == "running"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


async def test_runner_refuses_a_thread_whose_lock_is_held(pg_dsn: str, thread_id: str) -> None:
    model = ScriptedChatModel(script={a: decode(e) for a, e in supervisor_script().items()})
    other_process = ThreadLocks(pg_dsn)
    await other_process.open()
    try:
        async with other_process.hold(thread_id):
            with pytest.raises(ThreadLocked, match="already running"):
                await mas.arun("supervisor", TASK, thread_id=thread_id, model=model)
    finally:
        await other_process.close()
    assert (await mas.arun("supervisor", TASK, thread_id=thread_id, model=model)).status == "done"


async def test_one_runner_runs_many_threads_and_refuses_a_duplicate(thread_id: str) -> None:
    model = scripted_model()
    async with mas.Runner() as runner:
        results = await asyncio.gather(
            *(runner.run("supervisor", TASK, model=model) for _ in range(5)),
            runner.run("supervisor", TASK, thread_id=thread_id, model=model),
            runner.run("supervisor", TASK, thread_id=thread_id, model=model),
            return_exceptions=True,
        )
    refused = [r for r in results if isinstance(r, ThreadLocked)]
    done = [r for r in results if isinstance(r, mas.RunResult) and r.status == "done"]
    assert len(refused) == 1 and len(done) == 6
    assert len({r.thread_id for r in done}) == 6


def scripted_model() -> ScriptedChatModel:
    return ScriptedChatModel(script={a: decode(e) for a, e in supervisor_script().items()})


def test_pruned_thread_still_shows_its_state_and_resumes(pg_dsn: str, thread_id: str) -> None:
    model = scripted_model()
    paused = mas.run("supervisor", {**TASK, "review_plan": True}, thread_id=thread_id, model=model)
    assert paused.status == "interrupted"
    with psycopg.connect(pg_dsn, **CONNECTION_KWARGS) as conn:
        assert count_checkpoints(conn, thread_id) > 1
        removed = prune_thread(conn, thread_id, keep=1)
        assert removed >= 1 and count_checkpoints(conn, thread_id) == 1

    done = mas.resume(thread_id, answer={"approve": True}, model=model)
    assert done.status == "done" and done["synthesis"]["summary"]

    with psycopg.connect(pg_dsn, **CONNECTION_KWARGS) as conn:
        prune_thread(conn, thread_id, keep=2)
        assert count_checkpoints(conn, thread_id) == 2
        orphans = conn.execute(
            """SELECT count(*) FROM checkpoint_blobs b WHERE b.thread_id = %s AND NOT EXISTS (
                 SELECT 1 FROM checkpoints c, jsonb_each_text(c.checkpoint -> 'channel_versions') v
                 WHERE c.thread_id = b.thread_id AND v.key = b.channel AND v.value = b.version)""",
            (thread_id,),
        ).fetchone()
        assert orphans == {"count": 0}
    shown = json_tail(mas_cli("show", thread_id, "--json").stdout)
    assert shown["values"]["synthesis"] == done["synthesis"]
    assert shown["status"] == "done"


def test_thread_listing_reports_status_step_and_pattern(pg_dsn: str, thread_id: str) -> None:
    model = scripted_model()
    mas.run("supervisor", {**TASK, "review_plan": True}, thread_id=thread_id, model=model)
    done_id = mas.run("supervisor", TASK, model=model).thread_id
    with psycopg.connect(pg_dsn, **CONNECTION_KWARGS) as conn:
        paused, finished = get_thread(conn, thread_id), get_thread(conn, done_id)
        assert paused is not None and finished is not None
        assert (paused.status, paused.pattern) == ("interrupted", "supervisor")
        assert finished.status == "done" and finished.last_step is not None
        assert finished.last_step > paused.last_step  # type: ignore[operator]
        assert {thread_id, done_id} <= {r.thread_id for r in list_threads(conn)}


def test_delete_removes_every_row_of_a_thread(pg_dsn: str, thread_id: str) -> None:
    mas.run("supervisor", TASK, thread_id=thread_id, model=scripted_model())
    deleted = mas_cli("delete", thread_id)
    assert deleted.returncode == 0, deleted.stderr
    with psycopg.connect(pg_dsn) as conn:
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs", "mas_threads"):
            row = conn.execute(f"SELECT count(*) FROM {table} WHERE thread_id = %s", (thread_id,))
            assert row.fetchone() == (0,), table
    assert "no thread" in mas_cli("show", thread_id).stderr
