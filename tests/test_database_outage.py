"""PostgreSQL goes away mid-run: the run fails with a clear error, nothing half-written
is trusted, and once the database is back the thread resumes to the same result."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgserver._commands import pg_ctl
from pgserver.postgres_server import PostgresServer, get_server

from tests.conftest import json_tail, listed_status, logged_calls, mas_cli
from tests.test_durability import (
    comparable,
    reference_values,
    saved_results,
    scripted_env,
    start_supervisor,
    wait_for,
)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[PostgresServer]:
    """A server of this test's own, so stopping it leaves the session's server alone."""
    server = get_server(tmp_path / "pgdata", cleanup_mode="delete")
    yield server
    server.ensure_postgres_running()
    server.cleanup()


def test_run_survives_postgres_going_away(
    own_server: PostgresServer, tmp_path: Path, thread_id: str
) -> None:
    dsn = own_server.get_uri()
    call_log = tmp_path / "calls.log"
    env = {**scripted_env(tmp_path, call_log, delays={"analyst": 3}), "DATABASE_URL": dsn}
    process = start_supervisor(thread_id, env)
    try:
        wait_for(lambda: saved_results(dsn, thread_id) >= 1, what="researcher's saved result")
        pg_ctl(
            ["-w", "-m", "immediate", "stop"], pgdata=own_server.pgdata, user=own_server.system_user
        )
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert process.returncode == 1
    failure = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert failure and f"mas resume {thread_id}" in failure[-1], stderr

    own_server.ensure_postgres_running()
    # The server ends the dead process's session, and with it the lock, within moments.
    wait_for(lambda: listed_status(thread_id, env) == "failed", 10, "the run to show as failed")

    resumed = mas_cli("resume", thread_id, "--json", env={**env, "MAS_TEST_DELAYS": "{}"})
    assert resumed.returncode == 0, resumed.stderr
    final = json_tail(resumed.stdout)["values"]
    reference = reference_values({**env, "MAS_TEST_DELAYS": "{}"})
    assert comparable(final) == comparable(reference)
    assert logged_calls(call_log).count("researcher") == 2, "once per run, not again on resume"
