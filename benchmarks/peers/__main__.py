"""Peers: the same fan-out in mas-graphs, CrewAI and Microsoft Agent Framework, and in
LangGraph alone (the floor mas-graphs builds on).

N workers each make one call to a fake chat model (in parallel, by each framework's own
mechanism), then one synthesis call sees all N outputs: N+1 calls a run. Each side runs in
its own process (the peers in their own cached venvs), with its persistence off and on.

    python -m benchmarks.peers [--sizes 8,64] [--latency 0 0.2] [--repeats R] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import machine, print_table, uptime

HERE = Path(__file__).parent
CACHE = Path.home() / ".cache" / "mas-graphs" / "peers"


@dataclass(frozen=True)
class Side:
    label: str
    script: Path
    venv: str | None = None  # cache name of the peer's venv; None: this project's python
    packages: tuple[str, ...] = ()


MAS = Side("mas", HERE / "mas_fanout.py")
LANGGRAPH = Side("LangGraph", HERE / "langgraph_fanout.py")
PEERS = (
    Side("CrewAI", HERE / "crewai_fanout.py", "crewai-1.15", ("crewai==1.15.*",)),
    Side("MAF", HERE / "maf_fanout.py", "maf-1.23", ("agent-framework-core==1.23.*",)),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def base_python() -> str:
    """python3.12 if it runs (a version-manager shim may be on PATH without the version),
    else this interpreter."""
    found = shutil.which("python3.12")
    if found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0:
        return found
    return sys.executable


def peer_env() -> dict[str, str]:
    """This environment without PYTHONPATH (set for this project's own subprocesses), so a
    peer's venv sees only its own packages."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def peer_python(side: Side) -> str:
    """The peer's venv python, created and installed once; a marker file tells a finished
    install from an interrupted one."""
    if side.venv is None:
        return sys.executable
    root = CACHE / side.venv
    python = root / "bin" / "python"
    marker = root / ".installed"
    if marker.exists():
        return str(python)
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    log(f"{side.label}: creating {root} and installing {', '.join(side.packages)} ...")
    subprocess.run([base_python(), "-m", "venv", str(root)], check=True, env=peer_env())
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *side.packages], check=True, stdout=sys.stderr, env=peer_env())
    marker.write_text(" ".join(side.packages) + "\n")
    log(f"{side.label}: venv ready in {time.perf_counter() - started:.0f} s")
    return str(python)


def run_side(
    side: Side, python: str, n: int, latency: float, persist: bool, repeats: int, warmup: int
) -> dict[str, Any]:
    command = [python, str(side.script), "--n", str(n), "--latency", str(latency)]
    command += ["--repeats", str(repeats), "--warmup", str(warmup)]
    with tempfile.TemporaryDirectory(prefix=f"peers-{side.label.lower()}-") as directory:
        done = subprocess.run(
            command + (["--persist", directory] if persist else []),
            capture_output=True,
            text=True,
            cwd=HERE.parent.parent,
            env=None if side.venv is None else peer_env(),
        )
    errors = done.stderr.splitlines()
    if done.returncode != 0:
        log("\n".join(errors[-20:]))
        raise SystemExit(f"{side.label} failed (exit {done.returncode}): {' '.join(command)}")
    # The scripts' own per-run warnings (e.g. checkpoints not written); the rest is framework noise.
    for line in errors:
        if line.startswith(f"{side.label} run "):
            log(line)
    try:
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"{side.label} printed no JSON line: {done.stdout[-500:]!r}") from None
    if len(result["calls"]) != repeats + warmup or any(c != n + 1 for c in result["calls"]):
        raise SystemExit(f"{side.label}: model calls per run {result['calls']}, expected {n + 1}")
    return result


def main(sizes: list[int], latencies: list[float], repeats: int, warmup: int) -> None:
    sides = [MAS, LANGGRAPH, *PEERS]
    pythons = {side.label: peer_python(side) for side in sides}
    rows = []
    versions: dict[str, str] = {}
    for n in sizes:
        for latency in latencies:
            for persist in (False, True):
                # All sides back to back for each configuration, each starting in turn, so
                # load and drift hit them alike.
                turn = len(rows) % len(sides)
                results = {}
                for side in sides[turn:] + sides[:turn]:
                    log(f"N={n}, latency {latency} s, persistence {persist}: {side.label}")
                    results[side.label] = run_side(
                        side, pythons[side.label], n, latency, persist, repeats, warmup
                    )
                    versions[side.label] = results[side.label]["version"]
                rows.append(row(n, latency, persist, results))
    labels = [side.label for side in sides]
    print_table(
        f"Fan-out: N parallel model calls + 1 synthesis call, median ms of {repeats} runs "
        f"({', '.join(f'{k} {v}' for k, v in versions.items())}); {machine()}; {uptime()}",
        ["N, latency, persistence"]
        + [f"{label} ms" for label in labels]
        + ["mas / LangGraph"]
        + [f"{side.label} / mas" for side in PEERS]
        + [f"{label} / 2×latency" for label in labels]
        + [f"{label} MiB" for label in labels],
        rows,
    )


def row(n: int, latency: float, persist: bool, results: dict[str, dict[str, Any]]) -> list[str]:
    """Medians; what mas costs over LangGraph alone; the peers' ratios to mas (> 1: mas is
    faster); wall over the ideal 2 × latency (the workers in parallel, then the
    synthesis); and each process's peak RSS."""
    medians = {label: statistics.median(r["samples"]) for label, r in results.items()}
    labels = [side.label for side in (MAS, LANGGRAPH, *PEERS)]
    mas, langgraph = medians.get("mas"), medians.get("LangGraph")
    return (
        [f"{n}, {latency * 1e3:.0f} ms, {'on' if persist else 'off'}"]
        + [f"{medians[label] * 1e3:.1f}" if label in medians else "—" for label in labels]
        + [f"{mas / langgraph:.2f}" if mas and langgraph else "—"]
        + [f"{medians[side.label] / mas:.2f}" if mas else "—" for side in PEERS]
        + [
            f"{medians[label] / (2 * latency):.2f}" if latency and label in medians else "—"
            for label in labels
        ]
        + [f"{results[label]['peak_rss_mib']:.0f}" if label in results else "—" for label in labels]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="8,64", help="worker counts, comma-separated")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    args = parser.parse_args()
    main(
        [int(size) for size in args.sizes.split(",")],
        args.latency,
        3 if args.quick else args.repeats,
        args.warmup,
    )
