"""Every benchmark in turn, each printing its table.

    python -m benchmarks.all [--quick]

`--quick` (a few minutes on 2 cores) uses fewer repeats; without it the defaults of
each script apply.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import mas  # noqa: F401  (imported first: checkpoints.savers and mas import each other)
from benchmarks import checkpoints, embedded, overhead, parallel, resume, scale
from benchmarks.common import benchmark_dsn, console


async def main(quick: bool) -> None:
    benchmark_dsn()  # one database for all of them
    steps = [
        ("overhead", overhead.main(9 if quick else 30)),
        ("parallel", parallel.main(0.2, 3 if quick else 5)),
        ("checkpoints", checkpoints.main(7 if quick else 20)),
        ("scale", scale.main(quick)),
        ("resume", resume.main(3 if quick else 5)),
        ("embedded", asyncio.to_thread(embedded.main, 2 if quick else 5, 128)),
    ]
    for name, coroutine in steps:
        started = time.perf_counter()
        await coroutine
        console.print(f"[dim]{name}: {time.perf_counter() - started:.0f} s[/dim]\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
