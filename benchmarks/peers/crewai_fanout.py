"""The fan-out on CrewAI, run by its own venv (see `python -m benchmarks.peers`).

N agents, each with one task marked `async_execution=True` (CrewAI's documented way to run
tasks in parallel), then a synthesis task whose `context` is all N tasks, so it waits for them
and sees their outputs. The model is a custom LLM (`BaseLLM`) that sleeps `latency` and counts
its calls. Persistence: the crew's own checkpointing, `checkpoint=CheckpointConfig(location=DIR)`
with its defaults (a JSON file of the whole run state per completed task).

The crew runs with `akickoff()`, the native-async kickoff: the async tasks become asyncio tasks,
but each agent still calls the model's sync `call`, in asyncio's default executor, so at most
min(32, cores + 4) calls overlap. `kickoff()` would overlap all N (a thread per async task) but
loses checkpoints: with that many threads emitting events, many writes (most at N=64) fail with
"dictionary changed size during iteration" while serializing the shared event record. The same
race drops a few at N=64 here too; the script says so on stderr after each such run.

    python crewai_fanout.py --n 8 --latency 0.2 --repeats 5 --warmup 1 [--persist DIR]
"""

from __future__ import annotations

import os

# Before crewai is imported: no telemetry, no tracing prompt or upload, no version check.
os.environ.update(
    CREWAI_DISABLE_TELEMETRY="true",
    CREWAI_DISABLE_TRACKING="true",
    CREWAI_TRACING_ENABLED="false",
    CREWAI_DISABLE_VERSION_CHECK="true",
    OTEL_SDK_DISABLED="true",
)

import argparse
import asyncio
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from crewai import Agent, BaseLLM, CheckpointConfig, Crew, Task
from crewai.events.event_bus import crewai_event_bus
from harness import arguments, quiet_stdout, report  # beside this script

TASK = "Assess the launch plan for a budget electric bike."
REPLY = "Done: one short paragraph."


class FakeLLM(BaseLLM):
    """Sleeps `latency` per call (time.sleep in `call`, which is what the agents use;
    asyncio.sleep in `acall`) and counts calls across threads."""

    latency: float = 0.0
    calls: int = 0

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._lock = threading.Lock()

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        self._count()
        time.sleep(self.latency)
        return REPLY

    async def acall(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        self._count()
        await asyncio.sleep(self.latency)
        return REPLY

    def supports_function_calling(self) -> bool:
        return False

    def get_input_tokens_count(self, messages: Any, *args: Any, **kwargs: Any) -> int:
        # The base class's estimate (4 characters a token) without its warning on every call;
        # providers are expected to override it.
        text = messages if isinstance(messages, str) else "".join(str(m) for m in messages)
        return (len(text) + 3) // 4


def build(llm: FakeLLM, n: int, persist: str | None) -> Crew:
    agents = [
        Agent(role=f"Analyst {i}", goal=f"Analysis {i}", backstory=f"Worker {i}.", llm=llm)
        for i in range(n)
    ]
    workers = [
        Task(description=TASK, expected_output="A paragraph.", agent=a, async_execution=True)
        for a in agents
    ]
    writer = Agent(role="Synthesizer", goal="Synthesize", backstory="Editor.", llm=llm)
    synthesis = Task(
        description="Synthesize the analysts' reports.",
        expected_output="A paragraph.",
        agent=writer,
        context=workers,
    )
    checkpoint = CheckpointConfig(location=persist) if persist else None
    return Crew(agents=[*agents, writer], tasks=[*workers, synthesis], checkpoint=checkpoint)


def checkpoint_files(persist: str | None) -> int:
    return sum(1 for _ in Path(persist).rglob("*.json")) if persist else 0


async def main(args: argparse.Namespace, result_fd: int) -> None:
    n, latency, persist = args.n, args.latency, args.persist
    warmup, repeats = args.warmup, args.repeats
    llm = FakeLLM(model="fake", latency=latency)
    samples: list[float] = []
    calls: list[int] = []
    for run in range(warmup + repeats):
        # A fresh crew per run (not timed): a kickoff leaves its task outputs on the crew.
        crew = build(llm, n, persist)
        llm.calls = 0
        files = checkpoint_files(persist)
        started = time.perf_counter()
        result = await crew.akickoff()
        # Checkpoint writes run as event handlers on a thread pool: count them all.
        crewai_event_bus.flush()
        elapsed = time.perf_counter() - started
        calls.append(llm.calls)
        if llm.calls != n + 1:
            sys.exit(f"CrewAI run {run}: {llm.calls} model calls, expected {n + 1}")
        if len(result.tasks_output) != n + 1:
            sys.exit(f"CrewAI run {run}: {len(result.tasks_output)} task outputs, not {n + 1}")
        if persist and (written := checkpoint_files(persist) - files) != n + 1:
            print(f"CrewAI run {run}: {written} of {n + 1} checkpoints written", file=sys.stderr)
        if run >= warmup:
            samples.append(elapsed)
    report(result_fd, "CrewAI", version("crewai"), args, samples, calls)


if __name__ == "__main__":
    args = arguments(__doc__)
    result_fd = quiet_stdout()  # only the JSON line goes to stdout
    asyncio.run(main(args, result_fd))
