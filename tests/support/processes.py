"""Helpers for tests, benchmarks and scripts that drive mas-graphs in other processes:
the CLI as a user runs it, and polling for what another process did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def logged_calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200", **extra}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def python(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """This interpreter run with `args` in a new process, its output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def mas_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the `mas` CLI in a new process, the way a user would."""
    return python("-m", "mas", *args, env=env, timeout=timeout)


def start_mas(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mas", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def listed_status(thread_id: str, env: dict[str, str] | None = None) -> str:
    """The status `mas threads` shows on this thread's own row."""
    listing = mas_cli("threads", env=env)
    row = next(line for line in listing.stdout.splitlines() if thread_id in line)
    cells = [cell.strip() for cell in row.split("│")]  # | thread id | pattern | status | ...
    return cells[3]


def wait_for(
    predicate: Any, timeout: float = 60.0, what: str = "condition", every: float = 0.05
) -> None:
    """Poll `predicate` until it holds, or fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def json_tail(output: str) -> Any:
    """The JSON document a `--json` command printed last."""
    return json.loads(output.strip().splitlines()[-1])
