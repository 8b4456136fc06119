"""Reliability debts paid: a lost thread lock stops the run, setup waits with a deadline,
a pool of one works, ids are never cut short, saga effects are keyed by the order,
budgets and timeouts stop the work itself, nothing blocks the event loop, and the
corrections a review found. Each test fails without its fix."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint

import mas
from mas.errors import ResumeAnswerError, RunFailedError, ThreadFinishedError
from mas.settings import get_settings
from mas_graphs.checkpoints import savers
from mas_graphs.checkpoints.errors import DatabaseUnavailable, LockLostError, ThreadLocked
from mas_graphs.checkpoints.locks import ThreadLocks
from mas_graphs.checkpoints.schema import SETUP_LOCK_KEY, thread_lock_key
from tests.support.factories import decode, encode
from tests.support.fake_ollama import FakeOllama, serve
from tests.support.processes import json_tail, mas_cli, subprocess_env
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_saga import order, saga_agent, saga_rows, saga_script
from tests.support.scripts_supervisor import TEAM, supervisor_script

SCRIPTED = "factory:tests.support.factories:scripted_from_env"
# What a run killed before the registry heard of its end leaves behind.
MARK_RUNNING = "UPDATE mas_threads SET status = 'running' WHERE thread_id = %s"


def supervisor_model(**delays: float) -> ScriptedChatModel:
    return ScriptedChatModel(
        script={a: decode(e) for a, e in supervisor_script().items()}, delays=delays
    )


def saga_model() -> ScriptedChatModel:
    return ScriptedChatModel(
        script={a: decode(e) for a, e in saga_script().items()}, classify=saga_agent
    )


def lock_holder(dsn: str, thread_id: str) -> int | None:
    """The backend pid of the session holding a thread's advisory lock."""
    key = thread_lock_key(thread_id)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchone()
    return int(row[0]) if row else None


# --- locks and threads -----------------------------------------------------------------------


async def test_a_run_that_loses_its_lock_stops_and_resumes_cleanly(
    pg_dsn: str, thread_id: str
) -> None:
    model = supervisor_model(analyst=1.5)
    task = {"task": "Queue or not?", "workers": TEAM, "backoff_s": 0.0}
    running = asyncio.create_task(mas.arun("supervisor", task, thread_id=thread_id, model=model))
    deadline = time.monotonic() + 30
    while "analyst" not in model.calls:  # the analyst's call is under way
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    holder = lock_holder(pg_dsn, thread_id)
    assert holder is not None, "the run holds its thread's lock"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (holder,))
    with pytest.raises(RunFailedError) as failed:
        await running
    message = str(failed.value)
    assert "\n" not in message and f"lost the lock on thread {thread_id}" in message
    assert f"mas resume {thread_id}" in message
    assert "synthesizer" not in model.calls, "the run stopped at the next write"
    # The lost lock is nobody's: the thread resumes to the end.
    done = await mas.aresume(thread_id, model=supervisor_model())
    assert done.status == "done" and done["synthesis"]["confidence"] == 0.8


async def test_writes_commit_only_while_their_threads_lock_is_held(pg_dsn: str) -> None:
    """The check runs in each write's transaction: a thread whose lock is gone (its
    session alive) gets nothing written, and its writes batched with another thread's
    do not cost that thread its own."""
    kept, lost = f"kept-{uuid.uuid4().hex}", f"lost-{uuid.uuid4().hex}"

    def config(thread_id: str) -> Any:
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": "1"}}

    locks = ThreadLocks(pg_dsn)
    await locks.open()
    try:
        async with savers.open_async_saver(pg_dsn) as saver:
            saver.lock_check = locks.holder
            async with locks.hold(kept), locks.hold(lost):
                assert await locks._execute("SELECT pg_advisory_unlock(%s)", thread_lock_key(lost))
                outcomes = await asyncio.gather(
                    saver.aput_writes(config(kept), [("results", {"a": 1})], "task-a"),
                    saver.aput_writes(config(lost), [("results", {"b": 2})], "task-b"),
                    return_exceptions=True,
                )
                assert outcomes[0] is None
                assert isinstance(outcomes[1], LockLostError) and lost in str(outcomes[1])
                checkpoint = empty_checkpoint()
                with pytest.raises(LockLostError):
                    await saver.aput(config(lost), checkpoint, {}, {})
                await saver.aput(config(kept), checkpoint, {}, {})
    finally:
        await locks.close()
    with psycopg.connect(pg_dsn) as conn:
        written = conn.execute(
            "SELECT thread_id, (SELECT count(*) FROM checkpoint_writes w"
            " WHERE w.thread_id = t.thread_id) FROM (VALUES (%s), (%s)) t(thread_id)"
            " WHERE EXISTS (SELECT 1 FROM checkpoints c WHERE c.thread_id = t.thread_id)"
            " OR EXISTS (SELECT 1 FROM checkpoint_writes w WHERE w.thread_id = t.thread_id)",
            (kept, lost),
        ).fetchall()
    assert written == [(kept, 1)]


async def test_the_lock_connection_comes_back_after_it_dropped_between_runs(pg_dsn: str) -> None:
    locks = ThreadLocks(pg_dsn)
    await locks.open()
    try:
        async with locks.hold("idle-1"):
            pid = lock_holder(pg_dsn, "idle-1")
        assert pid is not None
        with psycopg.connect(pg_dsn, autocommit=True) as admin:  # e.g. idle_session_timeout
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await asyncio.sleep(0.2)
        async with locks.hold("idle-2"):  # a new session, not an error
            assert lock_holder(pg_dsn, "idle-2") not in (None, pid)
            with pytest.raises(ThreadLocked):  # one run per thread still holds
                async with locks.hold("idle-2"):
                    pass
    finally:
        await locks.close()


async def test_the_setup_lock_has_a_deadline(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(savers, "SETUP_DEADLINE_S", 0.5)
    # The same database under a DSN this process has not set up yet.
    fresh = psycopg.conninfo.make_conninfo(pg_dsn, application_name=f"setup-{uuid.uuid4().hex}")
    with psycopg.connect(pg_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_KEY,))
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match=r"setting up the tables .* for 0\.5 s"):
            async with savers.open_async_saver(fresh):
                pass
        assert time.monotonic() - started < 5
        holder.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))


def test_a_pool_of_one_connection_works(tmp_path: Path) -> None:
    (tmp_path / "script.json").write_text(encode({**supervisor_script(), **saga_script()}))
    env = subprocess_env(
        MAS_POOL_SIZE="1",
        MAS_MODEL=SCRIPTED,
        MAS_TEST_SCRIPT=str(tmp_path / "script.json"),
        MAS_TEST_CLASSIFY="tests.support.scripts_mixed:any_agent",
    )
    for pattern, data in (
        ("supervisor", {"task": "Queue or not?", "workers": TEAM}),
        ("saga", {"order": order(), "backoff_s": 0}),
    ):
        result = mas_cli("run", pattern, "--input", json.dumps(data), "--json", env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert json_tail(result.stdout)["status"] == "done"


def test_thread_ids_are_never_cut_short(thread_id: str) -> None:
    long_id = f"{thread_id}-a-thread-id-longer-than-a-narrow-terminal-column"
    mas.run(
        "supervisor", {"task": "t", "workers": TEAM}, thread_id=long_id, model=supervisor_model()
    )
    narrow = mas_cli("threads", env=subprocess_env(COLUMNS="80"))
    assert narrow.returncode == 0
    assert any(long_id in line for line in narrow.stdout.splitlines()), narrow.stdout
    listed = json.loads(mas_cli("threads", "--json").stdout)
    row = next(r for r in listed if r["thread_id"] == long_id)
    assert (row["pattern"], row["status"], row["served_by"]) == ("supervisor", "done", "mas")
    assert json_tail(mas_cli("show", long_id, "--json").stdout)["thread_id"] == long_id


def test_a_lock_in_another_database_does_not_make_a_dead_run_look_alive(
    pg_dsn: str, thread_id: str
) -> None:
    """Advisory lock keys are per database: the same key held in another database of the
    server says nothing about this one's thread."""
    from mas_graphs.checkpoints.admin import get_thread

    other = f"other_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {other}")
        # A run that died mid-run: its registry row still says running.
        admin.execute(
            "INSERT INTO mas_threads (thread_id, pattern, lock_key, status, runs) "
            "VALUES (%s, 'supervisor', %s, 'running', 1)",
            (thread_id, thread_lock_key(thread_id)),
        )
    elsewhere = psycopg.conninfo.make_conninfo(pg_dsn, dbname=other)
    try:
        with psycopg.connect(elsewhere, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (thread_lock_key(thread_id),))
            with psycopg.connect(pg_dsn, row_factory=psycopg.rows.dict_row) as conn:
                record = get_thread(conn, thread_id)
            assert record is not None and record.status == "failed"
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {other}")


async def test_a_run_killed_after_its_last_checkpoint_resumes_to_its_result(
    pg_dsn: str, thread_id: str
) -> None:
    """The process died between the final checkpoint and the registry update: resume
    reads the checkpoint, returns the result and puts the registry right."""
    task = {"task": "Queue or not?", "workers": TEAM, "backoff_s": 0.0}
    finished = await mas.arun("supervisor", task, thread_id=thread_id, model=supervisor_model())
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(MARK_RUNNING, (thread_id,))
    assert mas_cli("show", thread_id, "--json").returncode == 0
    again = await mas.aresume(thread_id, model=supervisor_model())
    assert again.status == "done" and dict(again) == dict(finished)
    listed = json_tail(mas_cli("show", thread_id, "--json").stdout)
    assert listed["status"] == "done"
    with pytest.raises(ThreadFinishedError):
        await mas.aresume(thread_id, model=supervisor_model())


async def test_a_run_killed_between_a_steps_writes_and_its_checkpoint_is_not_finished(
    pg_dsn: str, thread_id: str
) -> None:
    """Killed after a superstep's writes were saved but before the next checkpoint: the
    newest checkpoint lists no node to run next, yet the graph is not done. Resume runs
    on from the saved writes instead of calling the thread finished."""
    task = {"task": "Queue or not?", "workers": TEAM, "backoff_s": 0.0}
    finished = await mas.arun("supervisor", task, thread_id=thread_id, model=supervisor_model())
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        # back to a checkpoint whose task's writes are saved but whose successor is lost
        newest = admin.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' "
            "ORDER BY checkpoint_id DESC LIMIT 3",
            (thread_id,),
        ).fetchall()
        for (checkpoint_id,) in newest:
            for table in ("checkpoint_writes", "checkpoints"):
                admin.execute(
                    f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id = %s",
                    (thread_id, checkpoint_id),
                )
        admin.execute(MARK_RUNNING, (thread_id,))
    shown = json_tail(mas_cli("show", thread_id, "--json").stdout)
    assert shown["next"] == [] and "synthesis" not in shown["values"]
    model = supervisor_model()
    again = await mas.aresume(thread_id, model=model)
    assert again.status == "done" and model.calls == ["synthesizer"]
    assert again["synthesis"] == finished["synthesis"]


# --- saga effects are the order's -------------------------------------------------------------


async def test_a_thread_id_reused_for_another_order_is_refused(thread_id: str) -> None:
    first = order()
    done = await mas.arun("saga", {"order": first}, thread_id=thread_id, model=saga_model())
    assert done["status"] == "completed"
    assert mas_cli("delete", thread_id).returncode == 0  # the checkpoints go, the ledger stays
    before = await saga_rows(thread_id)
    with pytest.raises(RunFailedError, match=f"thread {thread_id} already applied effects for"):
        await mas.arun("saga", {"order": order()}, thread_id=thread_id, model=saga_model())
    assert await saga_rows(thread_id) == before, "the new order was neither charged nor replayed"


async def test_an_order_started_again_on_a_new_thread_is_refused(
    thread_id: str, pg_dsn: str
) -> None:
    same = order()
    done = await mas.arun("saga", {"order": same}, thread_id=thread_id, model=saga_model())
    assert done["status"] == "completed"
    other = f"{thread_id}-again"
    with pytest.raises(RunFailedError, match=f"already has a saga on thread {thread_id}"):
        await mas.arun("saga", {"order": same}, thread_id=other, model=saga_model())
    with psycopg.connect(pg_dsn) as conn:
        charges = conn.execute(
            "SELECT count(*) FROM order_payments WHERE order_id = %s", (same["order_id"],)
        ).fetchone()
    assert charges == (1,), "charged once"


# --- timeouts that stop the work ------------------------------------------------------------


async def test_a_pure_python_skill_over_budget_stops_computing() -> None:
    data = {
        "skill": "rank",
        "params": {"cost": "quadratic", "repeat": 50},
        "base_size": 4_000,
        "sync": "free",
        "scenarios": [{"name": "big", "budget_s": 0.3, "batch_size": 4_000}],
    }
    started = time.monotonic()
    result = await mas.arun("scenarios", data, model=supervisor_model())
    assert result["aggregate"]["scenarios"]["big"]["status"] == "timed_out"
    assert time.monotonic() - started < 10
    # The worker thread stopped between items: the process does no more work.
    cpu = time.process_time()
    await asyncio.sleep(1.0)
    assert time.process_time() - cpu < 0.3, "a skill thread is still computing"


@pytest.mark.embedded
async def test_a_timed_out_generation_gives_the_model_back_at_once() -> None:
    from langchain_core.messages import HumanMessage

    from mas.providers.models import make_model

    model = make_model("llamacpp")
    await model.ainvoke([HumanMessage("Say hi.")])  # loaded
    story = [HumanMessage("Write a very long story about a lighthouse keeper.")]
    started = time.perf_counter()
    full = await model.ainvoke(story)
    full_s = time.perf_counter() - started
    assert full.usage_metadata and full.usage_metadata["output_tokens"] >= 200, "a long one"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await model.ainvoke(story)
    started = time.perf_counter()
    await model.ainvoke([HumanMessage("Say hi.")])
    assert time.perf_counter() - started < full_s / 3, "the next call waited for the orphan"


async def test_an_ollama_check_does_not_block_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeOllama(lambda messages: "{}", tags_delay_s=1.0)
    with serve(fake) as url:
        monkeypatch.setenv("OLLAMA_HOST", url)
        get_settings.cache_clear()
        lags: list[float] = []
        stop = threading.Event()

        async def tick() -> None:
            while not stop.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.05)
                lags.append(time.perf_counter() - before - 0.05)

        ticker = asyncio.create_task(tick())
        try:
            # The fake answers `{}` to everything: turns fail, the run still finishes.
            done = await mas.arun("debate", {"question": "q?", "rounds": 1}, model="ollama:fake")
        finally:
            stop.set()
            await ticker
            get_settings.cache_clear()
        assert done.status == "done"
    assert lags and max(lags) < 0.5, f"the loop stalled for {max(lags):.2f} s"


# --- corrections ----------------------------------------------------------------------------


async def test_a_reviewer_cannot_approve_a_plan_that_cannot_run(thread_id: str) -> None:
    task = {"task": "t", "workers": TEAM, "review_plan": True}
    paused = await mas.arun("supervisor", task, thread_id=thread_id, model=supervisor_model())
    assert paused.status == "interrupted"
    for bad, problem in (
        ({"approve": True, "batches": [[]]}, "a worker in every batch"),
        ({"approve": True, "batches": [["analyst"], ["analyst"]]}, "repeated: analyst"),
        ({"approve": False, "batches": [["analyst"]]}, "only an approved plan can be edited"),
    ):
        with pytest.raises(ResumeAnswerError, match=problem):
            await mas.aresume(thread_id, answer=bad, model=supervisor_model())
    done = await mas.aresume(
        thread_id, answer={"approve": True, "batches": [["analyst"]]}, model=supervisor_model()
    )
    assert done["synthesis"]["summary"] == "Use PostgreSQL with SKIP LOCKED."


async def test_a_failed_conflict_check_is_on_record() -> None:
    model = ScriptedChatModel(
        script={a: decode(e) for a, e in supervisor_script(conflict_detector="garbage").items()}
    )
    done = await mas.arun("supervisor", {"task": "t", "workers": TEAM}, model=model)
    assert done["conflicts"] == []
    assert done["synthesis"]["note"].startswith("conflict detection failed, so none were resolved")
    failed = [u for u in done["usage"] if u["agent"] == "conflict_detector"]
    assert failed and failed[0]["calls"] == 2 and not failed[0]["ok"], "its calls still count"


async def test_a_runner_whose_lock_connection_fails_closes_its_pool(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(self: ThreadLocks) -> None:
        raise psycopg.OperationalError("no lock connection")

    monkeypatch.setattr(ThreadLocks, "open", refuse)
    runner = mas.Runner(pg_dsn)
    with pytest.raises(psycopg.OperationalError):
        await runner.__aenter__()
    assert runner.saver.conn.closed, "the pool was closed, not leaked"  # type: ignore[union-attr]


async def test_an_approval_keeps_the_time_it_was_asked(thread_id: str) -> None:
    data: dict[str, Any] = {"order": order(), "require_approval": ["charge_payment"]}
    paused = await mas.arun("saga", data, thread_id=thread_id, model=saga_model())
    assert paused.status == "interrupted"
    await asyncio.sleep(1.2)
    done = await mas.aresume(thread_id, answer={"approve": True}, model=saga_model())
    (approval,) = [e for e in done["step_log"] if e["phase"] == "approval"]
    asked = time.mktime(time.strptime(approval["started_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    answered = time.mktime(time.strptime(approval["finished_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert answered - asked >= 1, "asked when the run paused, not when it was answered"
