"""A user's own pattern as a plugin: the README's example, verbatim, in a package whose
`*.dist-info` (on the import path, as pip would install it) names it in the
`mas_graphs.patterns` entry point group. With no change to this project, the CLI lists,
runs, shows and resumes it, a run killed mid-graph resumes where it stopped, and a
supervisor runs it as a team worker."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.factories import encode
from tests.support.processes import (
    ROOT,
    json_tail,
    listed_status,
    logged_calls,
    mas_cli,
    start_mas,
    subprocess_env,
    wait_for,
)
from tests.support.scripts_supervisor import report
from tests.support.servers import free_port, start_mas_serve

SCRIPTED = "factory:tests.support.factories:scripted_from_env"
DRAFT = "Tabs let each reader pick a width. Spaces look the same everywhere. Teams pick one."
BRIEF = "Pick spaces: they look the same in every editor."
TOPIC = "Tabs or spaces for a new Python project?"


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- plugin-example -->\n```python\n")
    code = readme[start:].split("```python\n", 1)[1]
    return code.split("\n```\n", 1)[0] + "\n"


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed as the package `brief_pattern`, its entry point declared."""
    directory = tmp_path_factory.mktemp("brief-plugin")
    (directory / "brief_pattern.py").write_text(readme_example())
    info = directory / "brief_pattern-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brief-pattern\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mas_graphs.patterns]\nbrief = brief_pattern:PATTERN\n")
    return directory


def plugin_env(
    plugin: Path, tmp_path: Path, script: dict[str, Any], **extra: str
) -> dict[str, str]:
    path = tmp_path / f"script-{uuid.uuid4().hex[:6]}.json"
    path.write_text(encode(script))
    env = subprocess_env(
        MAS_MODEL=SCRIPTED,
        MAS_TEST_SCRIPT=str(path),
        MAS_TEST_CLASSIFY="tests.support.plugins:brief_agent",
        **extra,
    )
    env["PYTHONPATH"] = os.pathsep.join((env["PYTHONPATH"], str(plugin)))
    return env


def brief_input(topic: str = TOPIC) -> str:
    return json.dumps({"topic": topic})


def test_the_cli_lists_runs_shows_and_lists_the_plugged_in_pattern(
    plugin: Path, tmp_path: Path
) -> None:
    env = plugin_env(plugin, tmp_path, {"writer": DRAFT, "editor": BRIEF})
    listed = mas_cli("patterns", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "brief" in listed.stdout and "A writer drafts" in listed.stdout
    assert "supervisor" in listed.stdout  # the built-in ones are still there

    thread_id = f"brief-{uuid.uuid4().hex[:8]}"
    ran = mas_cli(
        "run", "brief", "--input", brief_input(), "--thread-id", thread_id, "--json", env=env
    )
    assert ran.returncode == 0, ran.stderr
    done = json_tail(ran.stdout)
    assert done["status"] == "done"
    assert done["values"] == {"topic": TOPIC, "draft": DRAFT, "brief": BRIEF}

    shown = mas_cli("show", thread_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert BRIEF in shown.stdout
    assert listed_status(thread_id, env) == "done"

    bad = mas_cli("run", "brief", "--input", '{"topic": ""}', env=env)
    assert bad.returncode == 1
    assert "invalid brief input: topic: String should have at least 1 character" in bad.stderr


def test_a_killed_run_of_the_plugged_in_pattern_resumes_where_it_stopped(
    plugin: Path, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    script = {"writer": DRAFT, "editor": BRIEF}
    slow = plugin_env(
        plugin, tmp_path, script, MAS_TEST_CALL_LOG=str(log), MAS_TEST_DELAYS='{"editor": 120}'
    )
    thread_id = f"brief-kill-{uuid.uuid4().hex[:8]}"
    process = start_mas(
        "run", "brief", "--input", brief_input(), "--thread-id", thread_id, env=slow
    )
    try:
        wait_for(lambda: "editor" in logged_calls(log), timeout=120, what="the editor's call")
    finally:
        process.kill()
        process.wait()

    env = plugin_env(plugin, tmp_path, script, MAS_TEST_CALL_LOG=str(log))
    resumed = mas_cli("resume", thread_id, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    done = json_tail(resumed.stdout)
    assert done["status"] == "done" and done["values"]["brief"] == BRIEF
    # The writer's step was checkpointed before the kill: only the editor ran again.
    assert logged_calls(log) == ["writer", "editor", "editor"]


def test_a_supervisor_runs_the_plugged_in_pattern_as_a_team(plugin: Path, tmp_path: Path) -> None:
    script = {
        "writer": DRAFT,
        "editor": BRIEF,
        "analyst": report("Spaces are the community default", 0.8),
        "synthesizer": {
            "summary": "Use spaces: the brief and the analysis agree.",
            "recommendations": ["configure the formatter for spaces"],
            "confidence": 0.8,
        },
    }
    env = plugin_env(plugin, tmp_path, script)
    workers = [
        {"name": "briefing", "pattern": "brief"},
        {"name": "analyst", "role": "Weigh the options [analyst]"},
    ]
    task = {"task": TOPIC, "workers": workers, "planning": "parallel", "conflict_scan": False}
    ran = mas_cli("run", "supervisor", "--input", json.dumps(task), "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    values = json_tail(ran.stdout)["values"]
    briefing = values["results"]["briefing"]
    assert briefing["kind"] == "team" and briefing["status"] == "ok"
    assert briefing["team"]["pattern"] == "brief"
    # The supervisor's task became the team's topic, and its conclusion the report.
    assert briefing["team"]["values"]["topic"] == TOPIC
    assert briefing["report"]["summary"] == BRIEF
    assert values["synthesis"]["summary"].startswith("Use spaces")

    # Its team role counts its agents: two, plus the analyst.
    capped = mas_cli("run", "supervisor", "--input", json.dumps({**task, "max_agents": 2}), env=env)
    assert capped.returncode == 1
    assert "3 agents at every depth in all; max_agents is 2" in capped.stderr


def test_mas_serve_serves_the_plugged_in_pattern(
    plugin: Path, tmp_path: Path, server_python: Path
) -> None:
    """`mas serve` lists every registered pattern for Aegra, and the server process finds
    the plugin on its import path: the CLI runs it there through the SDK."""
    env = plugin_env(plugin, tmp_path, {"writer": DRAFT, "editor": BRIEF})
    env["MAS_SERVER_PYTHON"] = str(server_python)
    server = start_mas_serve(env, free_port(), tmp_path / "serve.log")
    try:
        ran = mas_cli(
            "--server", server.url, "run", "brief", "--input", brief_input(), "--json", env=env
        )
        assert ran.returncode == 0, ran.stderr + server.log.read_text()[-3_000:]
        done = json_tail(ran.stdout)
        assert done["status"] == "done"
        assert done["values"]["brief"] == BRIEF
    finally:
        server.stop()
