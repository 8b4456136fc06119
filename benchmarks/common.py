"""Shared helpers: the benchmark database, timing, and table printing."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(width=200)


def use_test_plugins() -> None:
    """Register the tests' plugin (the `sleep` skill, tests/support/plugins.py) the way a user's
    package would, for this process and any it starts."""
    from tests.support.plugins import install_test_plugins

    directory = str(install_test_plugins(Path(tempfile.mkdtemp(prefix="mas-bench-plugins-"))))
    sys.path.append(directory)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.environ.get("PYTHONPATH"), str(Path(__file__).parent.parent), directory) if p
    )


use_test_plugins()


def benchmark_dsn() -> str:
    """DATABASE_URL if set, else a throwaway embedded server (deleted at exit)."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    from mas_graphs.checkpoints.embedded import embedded_dsn

    dsn = embedded_dsn(Path(tempfile.mkdtemp(prefix="mas-bench-")), cleanup_mode="delete")
    os.environ["DATABASE_URL"] = dsn
    from mas.settings import get_settings

    get_settings.cache_clear()
    return dsn


async def median_seconds(
    run: Callable[[], Awaitable[object]], repeats: int, warmup: int = 2
) -> float:
    for _ in range(warmup):
        await run()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == columns[0] else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def uptime() -> str:
    """The load while the benchmark ran (other processes share the cores)."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min), {five:.2f} (5 min)"
