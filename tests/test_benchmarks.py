"""The benchmark scripts still run. Their numbers are in the README, and a script that
crashes (as the overhead benchmark once did, reusing one saga order across runs) would
otherwise be found only the next time someone measured. No timing is asserted: the
scripts print their tables, and timings belong there."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import python


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    done = python(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_overhead_benchmark_measures_every_configuration() -> None:
    table = run_python("-m", "benchmarks.overhead", "--repeats", "3").stdout
    for pattern in ("supervisor", "debate", "scenarios", "saga"):
        assert f"{pattern}, no checkpointer" in table
        assert f"{pattern}, Postgres (sync)" in table
    assert "mas.Runner (shared pool) vs bare+Postgres" in table


def test_the_console_benchmark_times_every_page_of_a_long_thread() -> None:
    args = ("-m", "benchmarks.console", "--checkpoints", "260", "--repeats", "2")
    table = run_python(*args).stdout
    assert "a thread of 260 checkpoints" in table
    for page in ("(floor)", "threads list", "run page", "a checkpoint's state", "a diff of two"):
        assert page in table


@pytest.mark.parametrize("persist", [False, True], ids=["persistence off", "persistence on"])
@pytest.mark.parametrize("side", ["mas_fanout", "langgraph_fanout"])
def test_a_peers_side_makes_n_plus_one_calls_a_run(
    side: str, persist: bool, tmp_path: Path
) -> None:
    """The sides of `python -m benchmarks.peers` that run in this project's environment
    (the peers need venvs of their own); persistence on uses DATABASE_URL."""
    args = [f"benchmarks/peers/{side}.py", "--n", "4", "--repeats", "2", "--warmup", "1"]
    done = run_python(*args, *(["--persist", str(tmp_path)] if persist else []))
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["persistence"] is persist
    assert record["calls"] == [5, 5, 5]  # warmup and repeats: 4 workers + 1 synthesis each
    assert len(record["samples"]) == 2 and all(s > 0 for s in record["samples"])


def test_the_embedded_benchmark_measures_before_and_after_the_fix() -> None:
    """On an Intel CPU with AMX the "before" row dies by SIGILL, and says so; the rows of
    the path the product takes run everywhere."""
    table = run_python("-m", "benchmarks.embedded", "--repeats", "1", "--tokens", "8").stdout
    rows = [line for line in table.splitlines() if "before:" in line or "after:" in line]
    assert len(rows) == 3, table
    for row in rows[1:]:
        assert "crashed" not in row and "failed" not in row, row
        assert re.search(r"\d+ \(\d+ tokens\)", row), row
