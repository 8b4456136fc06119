"""Nested runs are durable at every depth: a SIGKILL while a debate nested in a
supervisor is mid-round, then a resume in a new process; and the CLI shows the nesting."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

import mas
from tests.support.factories import decode, encode
from tests.support.processes import (
    json_tail,
    logged_calls,
    mas_cli,
    start_mas,
    subprocess_env,
    wait_for,
)
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_debate import STANCES
from tests.support.scripts_mixed import any_agent
from tests.support.scripts_supervisor import plan
from tests.support.teams import CLASSIFY, member, teams_script

MODEL = "factory:tests.support.factories:scripted_from_env"
TASK = "Should a five-person team run its own Kafka cluster?"
# researcher first; then the board, a three-round debate, argues in the researcher's light
INPUT = {
    "task": TASK,
    "workers": [
        member("researcher"),
        {
            "name": "board",
            "pattern": "debate",
            "role": "Argue it out and decide",
            "input": {"stances": STANCES, "rounds": 3},
        },
    ],
}
SCRIPT = teams_script(planner=plan(("researcher", []), ("board", ["researcher"])))


def scripted_env(tmp_path: Path, call_log: Path, delays: dict[str, float]) -> dict[str, str]:
    script_path = tmp_path / "script.json"
    script_path.write_text(encode(SCRIPT))
    return subprocess_env(
        MAS_TEST_SCRIPT=str(script_path),
        MAS_TEST_CLASSIFY=CLASSIFY,
        MAS_TEST_DELAYS=json.dumps(delays),
        MAS_TEST_CALL_LOG=str(call_log),
        MAS_MODEL=MODEL,
    )


def saved_writes(dsn: str, thread_id: str, channel: str, namespace: str) -> int:
    """Finished tasks' writes to `channel` in namespaces like `namespace`."""
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FROM checkpoint_writes WHERE thread_id = %s "
                "AND channel = %s AND checkpoint_ns LIKE %s",
                (thread_id, channel, namespace),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def outcome(values: dict[str, Any]) -> dict[str, Any]:
    """A run's outcome at every depth, without timings and attempt counts."""
    board = values["results"]["board"]["team"]["values"]
    return {
        "plan": values["plan"],
        "reports": {name: r["report"] for name, r in values["results"].items()},
        "board": {key: board[key] for key in ("transcript", "verdict", "stopped", "rounds")},
        "synthesis": values["synthesis"],
        "usage": Counter(u["agent"] for u in values["usage"]),
    }


async def test_sigkill_mid_round_of_a_nested_debate_resumes_without_repeating_calls(
    tmp_path: Path, thread_id: str, pg_dsn: str
) -> None:
    first_log, resume_log = tmp_path / "first.log", tmp_path / "resume.log"
    # negative is slow, so the kill lands while it argues round 2 and affirmative is done
    delays = {"negative": 2.0}
    args = ["run", "supervisor", "--input", json.dumps(INPUT), "--model", MODEL]
    process = start_mas(
        *args, "--thread-id", thread_id, env=scripted_env(tmp_path, first_log, delays)
    )
    try:
        wait_for(
            lambda: saved_writes(pg_dsn, thread_id, "transcript", "run_team:%") == 3,
            30,
            "round 1 and affirmative's round 2, saved in the nested namespace",
        )
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert Counter(logged_calls(first_log)) == {
        "planner": 1,
        "member": 1,
        "affirmative": 2,
        "negative": 2,  # round 2's in flight at the kill
    }

    resumed = mas_cli("resume", thread_id, "--json", env=scripted_env(tmp_path, resume_log, delays))
    assert resumed.returncode == 0, resumed.stderr
    final = json_tail(resumed.stdout)
    assert final["status"] == "done"
    # no finished call at either depth is made again: only the turn in flight
    assert Counter(logged_calls(resume_log)) == {
        "affirmative": 1,
        "negative": 2,
        "judge": 1,
        "conflict_detector": 1,
        "synthesizer": 1,
    }

    model = ScriptedChatModel(
        script={agent: decode(entry) for agent, entry in SCRIPT.items()}, classify=any_agent
    )
    reference = await mas.arun("supervisor", INPUT, model=model)
    assert outcome(final["values"]) == outcome(reference)


def test_the_cli_shows_the_nesting_live_and_after(tmp_path: Path, call_log: Path) -> None:
    env = scripted_env(tmp_path, call_log, {})
    run = mas_cli("run", "supervisor", "--input", json.dumps(INPUT), "--model", MODEL, env=env)
    assert run.returncode == 0, run.stderr
    assert "board › argue" in run.stdout, run.stdout  # the live view names the nesting
    thread_id = next(word for word in run.stdout.split() if word.startswith("supervisor-")).strip(
        ".,:"
    )
    shown = mas_cli("show", thread_id, env=env)
    assert shown.returncode == 0, shown.stderr
    tree = shown.stdout
    assert "├── researcher ok · batch 0" in tree, tree
    assert "└── board ok · debate · batch 1" in tree
    assert "    └── verdict: negative (judge, 0.85) after 3 round(s)" in tree
