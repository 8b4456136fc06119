"""The debate through the runner and the `mas` CLI, against real PostgreSQL: a person's
decision across processes, a SIGKILL mid-round and its resume, live output, tracing."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from mas import runner
from mas.tracing import trace_id_for
from tests.support.factories import decode, encode
from tests.support.processes import json_tail, logged_calls, mas_cli, start_mas, subprocess_env
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_debate import QUESTION, STANCES, debate_agent, debate_script

MODEL = "factory:tests.support.factories:scripted_from_env"
CLASSIFY = "tests.support.scripts_debate:debate_agent"


def scripted_env(
    tmp_path: Path, call_log: Path, script: dict[str, Any], delays: dict[str, float] | None = None
) -> dict[str, str]:
    script_path = tmp_path / "script.json"
    script_path.write_text(encode(script))
    return subprocess_env(
        MAS_TEST_SCRIPT=str(script_path),
        MAS_TEST_CLASSIFY=CLASSIFY,
        MAS_TEST_DELAYS=json.dumps(delays or {}),
        MAS_TEST_CALL_LOG=str(call_log),
        MAS_MODEL=MODEL,  # resumes re-make a factory model only from the environment
    )


def model_for(script: dict[str, Any]) -> ScriptedChatModel:
    return ScriptedChatModel(
        script={agent: decode(entry) for agent, entry in script.items()}, classify=debate_agent
    )


# --- a person decides, in another process ----------------------------------------------


def test_human_decision_is_given_by_a_later_process(
    tmp_path: Path, call_log: Path, thread_id: str
) -> None:
    env = scripted_env(tmp_path, call_log, debate_script())
    task = json.dumps({"question": QUESTION, "stances": STANCES, "strategy": "human"})
    started = mas_cli(
        "run", "debate", "--input", task, "--model", MODEL, "--thread-id", thread_id, "--json",
        env=env,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    paused = json_tail(started.stdout)
    assert paused["status"] == "interrupted"
    (pending,) = paused["interrupts"]
    assert pending["kind"] == "debate_decision"
    assert pending["draft_verdict"]["winner"] == "negative"
    assert [t["speaker"] for t in pending["transcript"]] == ["affirmative", "negative"] * 2
    calls_before = len(logged_calls(call_log))

    refused = mas_cli("resume", thread_id, "--answer", '{"winner": "maybe"}', env=env)
    assert refused.returncode == 1
    assert "invalid answer to debate_decision: answer.winner: Input should be 'affirmative'" in (
        " ".join(refused.stderr.split())
    )
    assert "still waiting" in refused.stderr
    shown = mas_cli("show", thread_id, "--json", env=env)
    assert json_tail(shown.stdout)["interrupts"][0]["kind"] == "debate_decision"
    assert json_tail(shown.stdout)["next"] == ["human_decision"]

    answer = json.dumps({"winner": "affirmative", "reasoning": "an ops team is being hired"})
    resumed = mas_cli("resume", thread_id, "--answer", answer, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    done = json_tail(resumed.stdout)
    assert done["status"] == "done"
    assert done["values"]["verdict"]["decided_by"] == "human"
    assert done["values"]["verdict"]["winner"] == "affirmative"
    assert done["values"]["verdict"]["reasoning"] == "an ops team is being hired"
    assert len(logged_calls(call_log)) == calls_before, "the debate is not argued again"


# --- crash and resume ------------------------------------------------------------------


async def wait_for(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def saved_turns(dsn: str, thread_id: str) -> int:
    """Debater turns saved to the checkpoint store (a finished task's write is saved as
    the task finishes, before its superstep's checkpoint)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM checkpoint_writes "
            "WHERE thread_id = %s AND channel = 'transcript'",
            (thread_id,),
        ).fetchone()
    return int(row[0]) if row else 0


async def test_sigkill_mid_round_resumes_without_rearguing_finished_turns(
    tmp_path: Path, thread_id: str, pg_dsn: str
) -> None:
    script = debate_script()
    task = {"question": QUESTION, "stances": STANCES, "rounds": 3}
    first_log, resume_log = tmp_path / "first.log", tmp_path / "resume.log"
    # negative is slow, so the kill lands while it argues round 2 and affirmative is done.
    delays = {"negative": 2.0}
    proc = start_mas(
        "run", "debate", "--input", json.dumps(task), "--model", MODEL, "--thread-id", thread_id,
        env=scripted_env(tmp_path, first_log, script, delays),
    )  # fmt: skip
    try:
        # Round 1 (2 turns) and affirmative's round 2 are saved; negative's is in flight.
        await wait_for(lambda: saved_turns(pg_dsn, thread_id) == 3, seconds=30)
        assert logged_calls(first_log).count("negative") == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert Counter(logged_calls(first_log)) == {"affirmative": 2, "negative": 2}

    resumed = mas_cli(
        "resume", thread_id, "--json", env=scripted_env(tmp_path, resume_log, script, delays)
    )
    assert resumed.returncode == 0, resumed.stderr
    values = json_tail(resumed.stdout)["values"]
    # round 1 is not argued again, nor affirmative's finished round 2
    assert Counter(logged_calls(resume_log)) == {"affirmative": 1, "negative": 2, "judge": 1}

    reference = await runner.arun("debate", task, model=model_for(script))
    assert values["verdict"] == reference["verdict"]
    assert values["transcript"] == reference["transcript"]
    assert (
        values["stopped"]
        == reference["stopped"]
        == {
            "round": 3,
            "reason": "round_limit",
            "note": "all 3 rounds argued; positions still differ: affirmative, negative",
        }
    )


# --- the command line --------------------------------------------------------------------


def test_cli_shows_rounds_verdict_and_token_totals(tmp_path: Path, call_log: Path) -> None:
    env = scripted_env(tmp_path, call_log, debate_script())
    task = json.dumps({"question": QUESTION, "rounds": 2})
    result = mas_cli("run", "debate", "--input", task, "--model", MODEL, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    live, _, final = out.partition("transcript")
    assert "debater" in live and "affirmative" in live and "negative" in live
    assert "stopped after round 2: round limit reached" in out
    assert "verdict" in final and "decided by judge, confidence 0.85" in final
    assert "+ ops cost is real" in final
    assert "usage" in final and "input tokens" in final
    assert re.search(r"│\s+2\s+negative\s+negative\s+0\.80\s", live), "the live view shows round 2"
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in final.splitlines()]
    rows = [row for row in cells if row]
    totals = next(row for row in rows if row[0] == "all")  # the usage table's last row
    assert totals[:2] == ["all", "5"]  # 4 debater turns, 1 verdict


def test_cli_refuses_bad_input_naming_the_field() -> None:
    result = mas_cli("run", "debate", "--input", json.dumps({"question": "x", "rounds": 9}))
    assert result.returncode == 1
    assert "invalid debate input: rounds: Input should be less than or equal to 6" in (
        " ".join(result.stderr.split())
    )


# --- tracing --------------------------------------------------------------------------


async def test_each_debater_gets_a_span_per_round(langfuse_spans: Any) -> None:
    task = {"question": QUESTION, "stances": STANCES, "rounds": 2}
    result = await runner.arun("debate", task, model=model_for(debate_script()))
    spans = langfuse_spans.get_finished_spans()
    trace_id = trace_id_for(result.thread_id, 1)
    assert {format(span.context.trace_id, "032x") for span in spans} == {trace_id}
    (root,) = [span for span in spans if span.name == "debate"]
    assert root.attributes["session.id"] == result.thread_id

    by_id = {span.context.span_id: span for span in spans}
    argued = Counter()
    for span in spans:
        if span.name != "argue":
            continue
        task_input = json.loads(span.attributes["langfuse.observation.input"])
        speaker, number = task_input["debater"]["name"], task_input["round"]
        argued[(speaker, number)] += 1
        (call,) = [s for s in spans if s.parent and s.parent.span_id == span.context.span_id]
        assert call.name == f"{speaker} round {number}"
        assert call.attributes["langfuse.observation.type"] == "generation"
        assert by_id[span.parent.span_id].name == "debate"
    assert argued == {(s["name"], r): 1 for s in STANCES for r in (1, 2)}
