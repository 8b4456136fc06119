"""The fan-out on Microsoft Agent Framework, run by its own venv (see `python -m benchmarks.peers`).

N agents, each one model call (its role as instructions, the task as the message), run in one
superstep through a workflow's fan-out edges; a fan-in edge hands all N responses to a synthesis
executor whose agent makes the one synthesis call (what `ConcurrentBuilder` assembles, but that
lives in the separate agent-framework-orchestrations package). The model is a custom chat client
(`BaseChatClient` with `_inner_get_response`) that sleeps `latency` and counts its calls.
Persistence: workflow checkpointing to `FileCheckpointStorage(DIR)`, a JSON file at the start
and after each superstep (4 a run).

    python maf_fanout.py --n 8 --latency 0.2 --repeats 5 --warmup 1 [--persist DIR]
"""

import os

# Before the framework is imported: no OpenTelemetry, no user-agent telemetry.
os.environ.update(
    OTEL_SDK_DISABLED="true",
    ENABLE_INSTRUMENTATION="false",
    AGENT_FRAMEWORK_USER_AGENT_DISABLED="true",
)

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Mapping, Sequence
from typing import Any, Never

from agent_framework import (
    Agent,
    AgentExecutorRequest,
    AgentExecutorResponse,
    BaseChatClient,
    ChatMiddlewareLayer,
    ChatResponse,
    ChatResponseUpdate,
    Executor,
    FileCheckpointStorage,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
    Workflow,
    WorkflowBuilder,
    WorkflowContext,
    __version__,
    handler,
)
from agent_framework.observability import ChatTelemetryLayer
from harness import arguments, quiet_stdout, report  # beside this script

TASK = "Assess the launch plan for a budget electric bike."
REPLY = "Done: one short paragraph."


class FakeChatClient(
    FunctionInvocationLayer, ChatMiddlewareLayer, ChatTelemetryLayer, BaseChatClient
):
    """Sleeps `latency` per call (asyncio: the framework awaits the client) and counts calls.
    The layers are the ones the shipped clients compose (in the documented order), so each call
    takes the same path as with a real model; telemetry is disabled above."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency
        self.calls = 0
        self._lock = threading.Lock()

    def _inner_get_response(
        self, *, messages: Sequence[Message], stream: bool, options: Mapping[str, Any], **_: Any
    ) -> Awaitable[ChatResponse] | ResponseStream[ChatResponseUpdate, ChatResponse]:
        with self._lock:
            self.calls += 1
        response = ChatResponse(messages=[Message(role="assistant", contents=[REPLY])])
        if not stream:

            async def reply() -> ChatResponse:
                await asyncio.sleep(self.latency)
                return response

            return reply()

        async def updates() -> AsyncIterable[ChatResponseUpdate]:
            await asyncio.sleep(self.latency)
            yield ChatResponseUpdate(role="assistant", contents=[REPLY])

        return ResponseStream(updates(), finalizer=lambda _: response)


class Dispatch(Executor):
    @handler
    async def start(self, task: str, ctx: WorkflowContext[AgentExecutorRequest]) -> None:
        # No target: the fan-out edge group delivers it to every worker.
        request = AgentExecutorRequest(messages=[Message(role="user", contents=[task])])
        await ctx.send_message(request)


class Synthesis(Executor):
    def __init__(self, agent: Agent) -> None:
        super().__init__(id="synthesis")
        self.agent = agent

    @handler
    async def synthesize(
        self, results: list[AgentExecutorResponse], ctx: WorkflowContext[Never, str]
    ) -> None:
        outputs = "\n".join(f"{r.executor_id}: {r.agent_response.text}" for r in results)
        answer = await self.agent.run(f"Synthesize these {len(results)} reports:\n{outputs}")
        await ctx.yield_output(answer.text)


def build(client: FakeChatClient, n: int, persist: str | None) -> Workflow:
    workers = [
        Agent(client=client, name=f"worker_{i}", instructions=f"You are worker {i}, analyst {i}.")
        for i in range(n)
    ]
    synthesis = Synthesis(Agent(client=client, name="synthesizer", instructions="Synthesize."))
    dispatch = Dispatch(id="dispatch")
    storage = FileCheckpointStorage(persist) if persist else None
    return (
        # Only the synthesis is the workflow's output (agent executors yield theirs too).
        WorkflowBuilder(
            start_executor=dispatch, checkpoint_storage=storage, output_from=[synthesis]
        )
        .add_fan_out_edges(dispatch, workers)
        .add_fan_in_edges(workers, synthesis)
        .build()
    )


async def main(args: argparse.Namespace, result_fd: int) -> None:
    n, latency, persist = args.n, args.latency, args.persist
    warmup, repeats = args.warmup, args.repeats
    client = FakeChatClient(latency)
    samples: list[float] = []
    calls: list[int] = []
    for run in range(warmup + repeats):
        # A fresh workflow per run (not timed): agent executors keep each run's conversation.
        workflow = build(client, n, persist)
        client.calls = 0
        started = time.perf_counter()
        result = await workflow.run(TASK)
        elapsed = time.perf_counter() - started
        calls.append(client.calls)
        if client.calls != n + 1:
            sys.exit(f"MAF run {run}: {client.calls} model calls, expected {n + 1}")
        if result.get_outputs() != [REPLY]:
            sys.exit(f"MAF run {run}: outputs {result.get_outputs()!r}, expected the synthesis")
        if run >= warmup:
            samples.append(elapsed)
    report(result_fd, "MAF", __version__, args, samples, calls)


if __name__ == "__main__":
    args = arguments(__doc__)
    result_fd = quiet_stdout()  # only the JSON line goes to stdout
    asyncio.run(main(args, result_fd))
