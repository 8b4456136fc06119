"""One source tree's numbers, for benchmarks/revisions.py: started with that tree first on
the import path (`python -P revision_probe.py REPEATS`), it uses only what every
revision has (`mas.Runner`, the tests' scripted models) and prints one JSON object of
median seconds."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

started = time.perf_counter()
import mas  # noqa: E402  (timed: what a user's first import costs)

IMPORT_S = time.perf_counter() - started

from tests.support.factories import decode  # noqa: E402
from tests.support.plugins import install_test_plugins  # noqa: E402
from tests.support.scripted import ScriptedChatModel  # noqa: E402
from tests.support.scripts_debate import QUESTION, STANCES, debate_agent, debate_script  # noqa: E402
from tests.support.scripts_saga import order, saga_agent, saga_script  # noqa: E402
from tests.support.scripts_scenarios import SLEEP_SKILL  # noqa: E402
from tests.support.scripts_supervisor import TEAM, supervisor_script  # noqa: E402


def scripted(script: dict[str, Any], classify: Any = None) -> ScriptedChatModel:
    extra: dict[str, Any] = {"classify": classify} if classify else {}
    return ScriptedChatModel(script={a: decode(e) for a, e in script.items()}, **extra)


def workloads() -> dict[str, tuple[Any, Any]]:
    """Pattern -> (a function making a fresh input, the instant scripted model)."""
    scenarios = {
        "skill": SLEEP_SKILL,
        "params": {"item_s": 0.0},
        "base_size": 20,
        "scenarios": [{"name": f"s{i}", "scale": i, "batch_size": 5} for i in (1, 2, 3)],
    }
    return {
        "supervisor": (
            lambda: {"task": "Queue or not?", "workers": TEAM},
            scripted(supervisor_script()),
        ),
        "debate": (
            lambda: {"question": QUESTION, "stances": STANCES, "rounds": 3},
            scripted(debate_script(), debate_agent),
        ),
        "scenarios": (lambda: scenarios, scripted(supervisor_script())),
        # an order has one saga: every run fulfils a new one
        "saga": (
            lambda: {"order": {**order(), "order_id": f"R-{uuid.uuid4().hex[:10]}"}},
            scripted(saga_script(), saga_agent),
        ),
    }


async def measure(repeats: int) -> dict[str, float]:
    numbers = {"import mas": IMPORT_S}
    async with mas.Runner() as runner:
        for pattern, (make_input, model) in workloads().items():
            started = time.perf_counter()
            await runner.run(pattern, make_input(), model=model)
            numbers[f"{pattern}: first run"] = time.perf_counter() - started
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                await runner.run(pattern, make_input(), model=model)
                samples.append(time.perf_counter() - started)
            numbers[f"{pattern}: run (median)"] = statistics.median(samples)
    return numbers


if __name__ == "__main__":
    sys.path.append(str(install_test_plugins(Path(tempfile.mkdtemp(prefix="mas-probe-")))))
    print(json.dumps(asyncio.run(measure(int(sys.argv[1])))))
