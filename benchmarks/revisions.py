"""This checkout against an earlier revision, measured in the same run: the same
workloads (each pattern through `mas.Runner` on an instant scripted model, so only the
framework's own cost shows), `import mas`, and the CLI's start-up, alternating between
the two trees so both see the same machine.

    python -m benchmarks.revisions [--against REF] [--rounds N] [--repeats N]

REF (default: HEAD~1) is unpacked with `git archive` into a temporary directory; each
tree runs in its own processes with itself first on the import path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import benchmark_dsn, console, machine, print_table

ROOT = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).with_name("revision_probe.py")


def unpack(ref: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="mas-revision-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory


def tree_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def probe(tree: Path, repeats: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-P", str(PROBE), str(repeats)],
        cwd=tree,
        env=tree_env(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    numbers: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return numbers


def cli_start(tree: Path, repeats: int = 5) -> float:
    """`mas --help` in a new process: what every command pays before it starts."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mas", "--help"],
            cwd=tree,
            env=tree_env(tree),
            capture_output=True,
            check=True,
        )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main(against: str, rounds: int, repeats: int) -> None:
    benchmark_dsn()
    trees = {against: unpack(against), "this checkout": ROOT}
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    for number in range(rounds):
        for name, tree in trees.items():
            console.print(f"[dim]round {number + 1}/{rounds}: {name}[/dim]")
            numbers = {**probe(tree, repeats), "mas --help (CLI start)": cli_start(tree)}
            for metric, seconds in numbers.items():
                samples[name].setdefault(metric, []).append(seconds)
    before, after = (samples[name] for name in trees)
    rows = []
    for metric in after:
        old, new = statistics.median(before[metric]), statistics.median(after[metric])
        rows.append([metric, f"{old * 1000:.1f}", f"{new * 1000:.1f}", f"{new / old:.2f}"])
    print_table(
        f"this checkout against {against}, medians of {rounds} alternating rounds "
        f"({repeats} runs each) · {machine()}",
        ["", f"{against} ms", "this ms", "ratio"],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", default="HEAD~1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    arguments = parser.parse_args()
    main(arguments.against, arguments.rounds, arguments.repeats)
