"""PostgreSQL goes away mid-run, for every pattern: the run fails with one clear line,
nothing half-written is trusted, and once the database is back the thread resumes to
the result an uninterrupted run has, without redoing the work that was saved."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgserver._commands import pg_ctl
from pgserver.postgres_server import PostgresServer, get_server

from tests.support.factories import encode
from tests.support.processes import (
    json_tail,
    listed_status,
    logged_calls,
    mas_cli,
    start_mas,
    subprocess_env,
    wait_for,
)
from tests.support.scripts_debate import QUESTION, STANCES
from tests.support.scripts_mixed import CLASSIFY, mixed_script
from tests.support.scripts_saga import order
from tests.support.scripts_scenarios import SLEEP_SKILL
from tests.support.scripts_supervisor import TEAM

MODEL = "factory:tests.support.factories:scripted_from_env"


@dataclass(frozen=True)
class Case:
    input: Callable[[], dict[str, Any]]
    delays: dict[str, float]  # a slow agent, so the outage lands mid-run
    saved: str  # the channel whose first saved write means work is on record
    outcome: Callable[[dict[str, Any]], Any]  # what must equal an uninterrupted run's
    done_before: str  # an agent whose finished call must not be made again


def supervisor_outcome(values: dict[str, Any]) -> Any:
    results = values["results"]
    return values["plan"], {n: (r["status"], r["report"]) for n, r in results.items()}


CASES = {
    "supervisor": Case(
        lambda: {"task": "Queue or not?", "workers": TEAM},
        {"analyst": 3},
        "results",
        supervisor_outcome,
        "researcher",
    ),
    "debate": Case(
        lambda: {"question": QUESTION, "stances": STANCES, "rounds": 2},
        {"negative": 3},
        "transcript",
        lambda v: (
            sorted((t["round"], t["speaker"], t["argument"]) for t in v["transcript"]),
            v["verdict"]["winner"],
        ),
        "affirmative",
    ),
    "scenarios": Case(
        lambda: {
            "skill": SLEEP_SKILL,
            "params": {"item_s": 0.25},
            "base_size": 4,
            "sync": "free",
            "scenarios": [
                {"name": "a", "batch_size": 1},
                {"name": "b", "scale": 2, "batch_size": 2},
            ],
        },
        {},
        "run",
        lambda v: {
            n: (s["status"], s["items_processed"]) for n, s in v["aggregate"]["scenarios"].items()
        },
        "",
    ),
    "saga": Case(
        lambda: {"order": order(), "backoff_s": 0, "max_attempts": 1},
        {"risk_checker": 3},
        "started_at",  # open_saga is on record; the risk check is slow
        lambda v: (v["status"], [(e["node"], e["event"]) for e in v["step_log"]]),
        "",
    ),
}


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[PostgresServer]:
    """A server of this test's own, so stopping it leaves the session's server alone."""
    server = get_server(tmp_path / "pgdata", cleanup_mode="delete")
    yield server
    server.ensure_postgres_running()
    server.cleanup()


def saved(dsn: str, thread_id: str, channel: str) -> int:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FROM checkpoint_writes WHERE thread_id = %s AND channel = %s",
                (thread_id, channel),
            ).fetchone()
        except psycopg.errors.UndefinedTable:  # the run has not set the database up yet
            return 0
    return int(row[0]) if row else 0


@pytest.mark.parametrize("pattern", list(CASES))
def test_run_survives_postgres_going_away(
    pattern: str, own_server: PostgresServer, tmp_path: Path, thread_id: str
) -> None:
    case = CASES[pattern]
    dsn = own_server.get_uri()
    (tmp_path / "script.json").write_text(encode(mixed_script()))
    call_log = tmp_path / "calls.log"
    env = subprocess_env(
        DATABASE_URL=dsn,
        MAS_MODEL=MODEL,
        MAS_TEST_SCRIPT=str(tmp_path / "script.json"),
        MAS_TEST_CLASSIFY=CLASSIFY,
        MAS_TEST_CALL_LOG=str(call_log),
        MAS_TEST_DELAYS=json.dumps(case.delays),
        MAS_TEST_SKILL_LOG=str(tmp_path / "items.log"),
    )
    args = ["run", pattern, "--input", json.dumps(case.input()), "--thread-id", thread_id]
    process = start_mas(*args, env=env)
    try:
        wait_for(lambda: saved(dsn, thread_id, case.saved) >= 1, what=f"{case.saved} saved")
        pg_ctl(
            ["-w", "-m", "immediate", "stop"], pgdata=own_server.pgdata, user=own_server.system_user
        )
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert process.returncode == 1, stderr
    failure = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(failure) == 1 and f"mas resume {thread_id}" in failure[0], stderr
    assert "Traceback" not in stderr

    own_server.ensure_postgres_running()
    # The server ends the dead process's session, and with it the lock, within moments.
    wait_for(lambda: listed_status(thread_id, env) == "failed", 10, "the run to show as failed")

    fast = {**env, "MAS_TEST_DELAYS": "{}"}
    resumed = mas_cli("resume", thread_id, "--json", env=fast)
    assert resumed.returncode == 0, resumed.stderr
    final = json_tail(resumed.stdout)["values"]
    interrupted_thread = logged_calls(call_log)
    reference = mas_cli("run", pattern, "--input", json.dumps(case.input()), "--json", env=fast)
    assert reference.returncode == 0, reference.stderr
    assert case.outcome(final) == case.outcome(json_tail(reference.stdout)["values"])
    if case.done_before:
        # A call that finished before the outage is not made again: the thread, across
        # both processes, made it as often as an uninterrupted run does.
        uninterrupted = logged_calls(call_log)[len(interrupted_thread) :]
        assert interrupted_thread.count(case.done_before) == uninterrupted.count(case.done_before)
