"""A critic's rounds on a worker's report: critique, revise, and what a failed round
leaves."""

from __future__ import annotations

import time
from typing import Any

from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from mas_graphs.nodes.agents import (
    critique,
    revise_report,
    worker_sampling,
)
from mas_graphs.nodes.context import AgentContext, agent_context
from mas_graphs.nodes.errors import describe_error, failed_usage
from mas_graphs.nodes.limits import raise_if_run_stops
from mas_graphs.state.supervisor import (
    ReportReview,
    ReviewTask,
    WorkerResult,
)


async def critique_report(task: ReviewTask, runtime: Runtime[AgentContext]) -> Command[Any]:
    """The critic reads the report; accepted, or out of rounds, it counts; rejected, the
    worker revises it."""
    worker, result = task["worker"], task["result"]
    name = worker["name"]
    verdict, usage = await critique(
        agent_context(runtime).model_for("critic"),
        agent=f"critic:{name}",
        task=task["task"],
        what=f"the {name}'s report",
        text=result["report"] or {},
    )
    review = ReportReview(round=task["round"], accepted=verdict.accept, problems=verdict.problems)
    done = verdict.accept or task["round"] > worker["revise_rounds"]
    reviewed = WorkerResult(**{**result, "reviews": [*result["reviews"], review], "final": done})
    update = {"results": {name: reviewed}, "usage": [usage]}
    runtime.stream_writer({"worker": name, "review_round": task["round"], "accepted": done})
    if done:
        return Command(update=update, goto="collect_batch")
    revision = ReviewTask(**{**task, "result": reviewed, "problems": verdict.problems})
    return Command(update=update, goto=Send("revise_report", revision))


async def revise_report_node(task: ReviewTask, runtime: Runtime[AgentContext]) -> Command[Any]:
    """The worker rewrites its report with the critic's problems fixed; the critic reads
    it again."""
    worker, result = task["worker"], task["result"]
    report, usage = await revise_report(
        await agent_context(runtime).chosen(f"worker:{worker['name']}", worker["model"]),
        agent=worker["name"],
        role=worker["role"],
        task=task["task"],
        draft=result["report"] or {},
        problems=task["problems"],
        sampling=worker_sampling(worker["name"], worker["temperature"]),
    )
    revised = WorkerResult(**{**result, "report": report.model_dump(), "finished_at": time.time()})
    again = ReviewTask(**{**task, "result": revised, "round": task["round"] + 1, "problems": []})
    return Command(
        update={"results": {worker["name"]: revised}, "usage": [usage]},
        goto=Send("critique_report", again),
    )


def review_failed(task: ReviewTask, error: NodeError) -> Command[Any]:
    """The critic or the revision failed for good: the report as it stands counts."""
    raise_if_run_stops(error)
    result = task["result"]
    note = f"review round {task['round']} failed: {describe_error(error.error)}"
    final = WorkerResult(**{**result, "final": True, "notes": [*result["notes"], note]})
    return Command(
        update={"results": {result["worker"]: final}, "usage": failed_usage(error.error)},
        goto="collect_batch",
    )
