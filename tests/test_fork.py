"""Forking a run from one of its checkpoints, on real PostgreSQL: the copy runs from that
step with an input field changed (checked like a run's input), the source is left as it
is, the fork says where it came from, and its edits survive a crash before it runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import mas
from mas.errors import InputError
from mas.runner import Runner
from mas_graphs.checkpoints.admin import get_thread
from mas_graphs.checkpoints.savers import connection, open_saver
from tests.support.factories import encode
from tests.support.processes import json_tail, mas_cli, subprocess_env
from tests.support.scripts_supervisor import TEAM, supervisor_script

SCRIPTED = "factory:tests.support.factories:scripted_from_env"
TASK = "Should the team move its job queue to PostgreSQL?"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "script.json"
    script.write_text(encode(supervisor_script()))
    return subprocess_env(MAS_TEST_SCRIPT=str(script), MAS_MODEL=SCRIPTED)


def history(thread_id: str, env: dict[str, str]) -> list[dict[str, object]]:
    shown = mas_cli("show", thread_id, "--history", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    return json_tail(shown.stdout)["history"]  # type: ignore[no-any-return]


def test_an_over_budget_run_forked_with_a_larger_budget_finishes_and_the_source_stays(
    env: dict[str, str], thread_id: str
) -> None:
    given = {"task": TASK, "workers": TEAM, "max_tokens_total": 1500}
    stopped = mas_cli("run", "supervisor", "--input", json.dumps(given),
                      "--thread-id", thread_id, "--json", env=env)  # fmt: skip
    assert json_tail(stopped.stdout)["status"] == "over_budget", stopped.stdout[-500:]
    last = history(thread_id, env)[0]
    assert last["next"], "the stopped run's last checkpoint still has work"

    forked = mas_cli("fork", thread_id, str(last["checkpoint_id"]), "--set",
                     "max_tokens_total=100000", "--json", env=env)  # fmt: skip
    assert forked.returncode == 0, forked.stderr
    result = json_tail(forked.stdout)
    assert result["status"] == "done"
    assert result["values"]["synthesis"]["summary"] == "Use PostgreSQL with SKIP LOCKED."
    assert result["values"]["max_tokens_total"] == 100000
    fork_id = result["thread_id"]
    assert fork_id.startswith(f"{thread_id}-fork-")

    source = json_tail(mas_cli("show", thread_id, "--json", env=env).stdout)
    assert source["status"] == "over_budget" and "synthesis" not in source["values"]
    threads = json_tail(mas_cli("threads", "--json", env=env).stdout)
    row = next(t for t in threads if t["thread_id"] == fork_id)
    assert row["forked_from"] == f"{thread_id}@{last['checkpoint_id']}"
    assert row["fork_edits"] is None  # applied, and cleared when the run ended


def test_fork_edits_are_checked_like_input_and_survive_a_crash_before_the_run(
    env: dict[str, str], thread_id: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAS_TEST_SCRIPT", env["MAS_TEST_SCRIPT"])
    done = mas.run("supervisor", {"task": TASK, "workers": TEAM}, thread_id=thread_id,
                   model=SCRIPTED, dsn=pg_dsn)  # fmt: skip
    assert done.status == "done"
    steps = history(thread_id, env)
    after_plan = next(s for s in steps if s["next"] == ["run_worker", "run_worker"])

    async def start(**update: object) -> str:
        async with Runner(pg_dsn) as runner:
            return await runner.start_fork(
                thread_id, str(after_plan["checkpoint_id"]), update=dict(update)
            )

    with pytest.raises(InputError, match="not usage"):
        asyncio.run(start(usage=[]))
    with pytest.raises(InputError, match="max_parallel: Input should be less than or equal"):
        asyncio.run(start(max_parallel=10_000))
    with pytest.raises(InputError, match="has nothing left to run"):
        asyncio.run(start_at_end(pg_dsn, thread_id, str(steps[0]["checkpoint_id"])))

    # the fork is made, then the process dies before it runs: `mas resume` runs it, edits too
    fork_id = asyncio.run(start(task="Should the team keep Redis for its queue?"))
    with open_saver(pg_dsn) as saver, connection(saver) as conn:
        record = get_thread(conn, fork_id)
    assert record is not None and record.fork_edits == {
        "task": "Should the team keep Redis for its queue?"
    }
    resumed = mas_cli("resume", fork_id, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    values = json_tail(resumed.stdout)["values"]
    assert values["task"] == "Should the team keep Redis for its queue?"
    # the plan the source made is kept (the fork starts after it); the workers ran again
    assert values["plan"] == done["plan"] and set(values["results"]) == {
        "researcher",
        "analyst",
        "critic",
    }


async def start_at_end(pg_dsn: str, thread_id: str, checkpoint_id: str) -> str:
    async with Runner(pg_dsn) as runner:
        return await runner.start_fork(thread_id, checkpoint_id)
