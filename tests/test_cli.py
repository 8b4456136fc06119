"""The `mas` CLI in a subprocess: each command, and each error as one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.factories import encode
from tests.support.processes import json_tail, mas_cli, subprocess_env
from tests.support.scripts_supervisor import TEAM, supervisor_script

SCRIPTED = "factory:tests.support.factories:scripted_from_env"
TASK = json.dumps({"task": "Queue or not?", "workers": TEAM})


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "script.json"
    script.write_text(encode(supervisor_script()))
    return subprocess_env(MAS_TEST_SCRIPT=str(script), MAS_MODEL=SCRIPTED)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_run_shows_progress_and_a_readable_result(env: dict[str, str], thread_id: str) -> None:
    result = mas_cli("run", "supervisor", "--input", TASK, "--thread-id", thread_id, env=env)
    assert result.returncode == 0, result.stderr
    for expected in (
        "plan_work",
        "run_worker",
        "synthesize",
        "synthesis",
        "Use PostgreSQL with SKIP LOCKED.",
        f"thread {thread_id} done",
    ):
        assert expected in result.stdout


def test_run_from_an_input_file(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text(TASK)
    result = mas_cli("run", "supervisor", "--input-file", str(path), "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json_tail(result.stdout)["status"] == "done"


def test_interrupt_then_resume_with_an_answer_then_show_and_threads(
    env: dict[str, str], thread_id: str
) -> None:
    task = json.dumps({"task": "Queue or not?", "workers": TEAM, "review_plan": True})
    paused = mas_cli("run", "supervisor", "--input", task, "--thread-id", thread_id, env=env)
    assert paused.returncode == 0, paused.stderr
    assert "waiting for an answer" in paused.stdout and f"mas resume {thread_id}" in paused.stdout

    waiting = mas_cli("resume", thread_id, env=env)
    assert "waiting for an answer to plan_review" in one_error_line(waiting.stderr)
    bad = mas_cli("resume", thread_id, "--answer", '{"approve": "maybe"}', env=env)
    assert "answer.approve" in one_error_line(bad.stderr)
    unknown_worker = mas_cli(
        "resume", thread_id, "--answer", '{"approve": true, "batches": [["intern"]]}', env=env
    )
    assert "answer.batches" in one_error_line(unknown_worker.stderr)

    edited = json.dumps({"approve": True, "batches": [["critic"], ["analyst"]]})
    resumed = mas_cli("resume", thread_id, "--answer", edited, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    values = json_tail(resumed.stdout)["values"]
    assert values["plan"]["source"] == "reviewer"
    assert sorted(values["results"]) == ["analyst", "critic"]

    shown = mas_cli("show", thread_id, "--history", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "history (newest first)" in shown.stdout and "loop" in shown.stdout
    history = json_tail(mas_cli("show", thread_id, "--history", "--json", env=env).stdout)[
        "history"
    ]
    assert len(history) > 5 and history[-1]["source"] == "input"

    listing = mas_cli("threads", env=env)
    assert listing.returncode == 0 and thread_id in listing.stdout

    again = mas_cli("resume", thread_id, env=env)
    assert "already finished" in one_error_line(again.stderr)
    rerun = mas_cli("run", "supervisor", "--input", TASK, "--thread-id", thread_id, env=env)
    assert "already finished" in one_error_line(rerun.stderr)


def test_rejected_plan_ends_the_run_without_workers(env: dict[str, str], thread_id: str) -> None:
    task = json.dumps({"task": "Queue or not?", "workers": TEAM, "review_plan": True})
    paused = mas_cli("run", "supervisor", "--input", task, "--thread-id", thread_id, env=env)
    assert paused.returncode == 0 and "waiting for an answer" in paused.stdout, paused.stderr
    answer = json.dumps({"approve": False, "note": "too broad"})
    result = mas_cli("resume", thread_id, "--answer", answer, "--json", env=env)
    assert result.returncode == 0, result.stderr
    values = json_tail(result.stdout)["values"]
    assert values["synthesis"] == {"summary": "Plan rejected: too broad", "rejected": True}
    assert not values.get("results")


def test_graph_prints_mermaid() -> None:
    result = mas_cli("graph", "supervisor")
    assert result.returncode == 0
    assert result.stdout.lstrip().startswith("---") and "graph TD;" in result.stdout
    assert "run_worker -.-> run_fallback;" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "supervisor", "--input", "{bad"], "--input is not valid JSON"),
        (["run", "supervisor", "--input", '{"task": ""}'], "task: String should have at least 1"),
        (["run", "supervisor", "--input", '{"task": "x", "colour": 1}'], "colour: Extra inputs"),
        (["run", "supervisor", "--input", '["task"]'], "must be a JSON object"),
        (
            [
                "run",
                "supervisor",
                "--input",
                '{"task": "x", "workers": [{"name": "a", "role": "r", "tools": ["shell"]}]}',
            ],
            "unknown tools shell",
        ),
        (["run", "nope", "--input", "{}"], "unknown pattern 'nope'"),
        (["run", "supervisor"], "exactly one of --input"),
        (["resume", "no-such-thread"], "no thread 'no-such-thread'"),
        (["show", "no-such-thread"], "no thread 'no-such-thread'"),
        (["graph", "nope"], "unknown pattern 'nope'"),
        (["run", "supervisor", "--input", TASK, "--model", "gpt:4"], "unknown model spec 'gpt:4'"),
        (
            ["run", "supervisor", "--input", TASK, "--model", "llamacpp:/no/such.gguf"],
            "no GGUF file at /no/such.gguf",
        ),
    ],
)
def test_errors_are_one_clear_line(env: dict[str, str], args: list[str], message: str) -> None:
    result = mas_cli(*args, env=env)
    assert result.returncode == 1
    assert message in one_error_line(result.stderr)


def test_unreachable_postgres_is_one_line_without_the_password(env: dict[str, str]) -> None:
    env = {**env, "DATABASE_URL": "postgresql://mas:hunter2@127.0.0.1:1/mas"}
    result = mas_cli("run", "supervisor", "--input", TASK, env=env)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "PostgreSQL is unreachable at postgresql://mas:***@127.0.0.1:1/mas" in line
    assert "hunter2" not in result.stderr + result.stdout
    assert "hunter2" not in mas_cli("threads", env=env).stderr


def test_unreachable_ollama_names_the_url_and_the_fix(env: dict[str, str]) -> None:
    env = {**env, "OLLAMA_HOST": "http://127.0.0.1:1"}
    result = mas_cli("run", "supervisor", "--input", TASK, "--model", "ollama:llama3.2", env=env)
    line = one_error_line(result.stderr)
    assert "Ollama is unreachable at http://127.0.0.1:1" in line and "ollama serve" in line
