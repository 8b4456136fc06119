"""What every side of the peers benchmark shares: its command line, its peak memory, and
its one JSON line of results (stdlib only: the peers' scripts import it from their own
virtual environments, as a module beside them)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from typing import Any


def peak_rss_mib() -> float:
    """This process's peak RSS. Not ru_maxrss alone: Linux keeps it across exec, so a process
    started from a bigger one reports the parent's size; /proc's VmHWM starts at exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def arguments(description: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--persist", metavar="DIR", help="persistence on; its files go here")
    return parser.parse_args()


def quiet_stdout() -> int:
    """Send whatever a framework prints to stderr; returns the real stdout, for `report`."""
    result_fd = os.dup(1)
    os.dup2(2, 1)
    return result_fd


def report(
    result_fd: int,
    framework: str,
    version: str,
    args: argparse.Namespace,
    samples: list[float],
    calls: list[int],
) -> None:
    """The side's JSON line; a side whose runs did not each make N+1 model calls measured
    something else, so it exits instead."""
    if bad := [count for count in calls if count != args.n + 1]:
        sys.exit(f"{framework}: expected {args.n + 1} model calls per run, got {bad}")
    record: dict[str, Any] = {
        "framework": framework,
        "version": version,
        "persistence": args.persist is not None,
        "n": args.n,
        "latency": args.latency,
        "samples": samples,
        "calls": calls,
        "peak_rss_mib": peak_rss_mib(),
    }
    os.write(result_fd, (json.dumps(record) + "\n").encode())
