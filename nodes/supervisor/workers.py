"""Workers: each batch fanned out with `Send`, a worker's attempt (role agent,
registered agent), its fallback, its recorded failure, and the batch barrier."""

from __future__ import annotations

import time
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from mas_graphs.nodes.agents import (
    AGENTS,
    AgentRequest,
    run_registered_agent,
    run_role_agent,
    task_key,
    worker_sampling,
)
from mas_graphs.nodes.context import AgentContext, agent_context, node_attempt
from mas_graphs.nodes.errors import describe_error, failed_usage
from mas_graphs.nodes.limits import raise_if_run_stops
from mas_graphs.state.common import budget_of
from mas_graphs.state.supervisor import (
    Memory,
    ReviewTask,
    SupervisorState,
    ToolCall,
    WorkerReport,
    WorkerResult,
    WorkerTask,
)


def described(worker: dict[str, Any]) -> str:
    """What the planner (and a fallback) is told a worker does."""
    if worker["role"]:
        return str(worker["role"])
    if worker["kind"] == "agent":
        return AGENTS.get(worker["agent"]).description
    return f"a nested {worker['pattern']} run that reports its conclusion"


def with_roles(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**w, "role": described(w)} for w in workers]


def finished_reports(state: SupervisorState) -> list[dict[str, Any]]:
    return [
        {"worker": r["worker"], **r["report"]}
        for r in state.get("results", {}).values()
        if r["report"] is not None and r.get("final", True)
    ]


def replans_left(state: SupervisorState) -> int:
    return state["max_replans"] - len(state.get("plan_revisions", []))


def dispatch_batch(
    state: SupervisorState, guidance: str = ""
) -> list[Send] | Literal["detect_conflicts", "synthesize"]:
    """Fan the current batch out as parallel `Send`s (a team's worker to `run_team`), or
    move on when batches are done."""
    index, batches = state["batch_index"], state["plan"]["batches"]
    if index >= len(batches):
        return "detect_conflicts" if state["conflict_scan"] else "synthesize"
    specs = {w["name"]: w for w in state["workers"]}
    replan = state["on_worker_failure"] == "replan" and replans_left(state) > 0
    context = finished_reports(state)
    return [
        Send(
            "run_team" if specs[name]["kind"] == "team" else "run_worker",
            WorkerTask(
                task=state["task"],
                worker=specs[name],
                batch=index,
                context=context,
                failed_with=None,
                guidance=guidance,
                on_failure="replan" if replan else "fallback",
                max_parallel=state["max_parallel"],
                # older threads' plans have no assignments
                assignment=state["plan"].get("assignments", {}).get(name),
                token_budget=budget_of(state),
            ),
        )
        for name in batches[index]
    ]


def worker_result(
    task: WorkerTask,
    report: WorkerReport | None,
    *,
    status: Literal["ok", "fallback", "failed"],
    started: float,
    attempts: int,
    error: str | None = None,
    final: bool = True,
    notes: list[str] | None = None,
    tool_calls: list[ToolCall] | None = None,
    team: dict[str, Any] | None = None,
    memory: Memory | None = None,
) -> WorkerResult:
    worker = task["worker"]
    return WorkerResult(
        worker=worker["name"],
        kind=worker["kind"],
        status=status,
        report=report.model_dump() if report is not None else None,
        error=error,
        attempts=attempts,
        batch=task["batch"],
        started_at=started,
        finished_at=time.time(),
        final=final,
        reviews=[],
        team=team,
        notes=notes or [],
        tool_calls=tool_calls or [],
        memory=memory,
    )


def reported(
    task: WorkerTask,
    report: WorkerReport,
    runtime: Runtime[AgentContext],
    *,
    status: Literal["ok", "fallback"],
    started: float,
    **extra: Any,
) -> WorkerResult:
    """This attempt's result for the worker, announced on the run's stream."""
    result = worker_result(
        task,
        report,
        status=status,
        started=started,
        attempts=node_attempt(runtime),
        error=task["failed_with"],
        **extra,
    )
    runtime.stream_writer(
        {"worker": task["worker"]["name"], "status": status, "batch": task["batch"]}
    )
    return result


def worker_request(task: WorkerTask, role: str) -> AgentRequest:
    """What a worker (or a fallback standing in, with the worker's `role`) is given: the
    same for a role agent and a registered agent."""
    return AgentRequest(
        worker=task["worker"]["name"],
        task=task["task"],
        role=role,
        context=task["context"],
        guidance=task["guidance"],
        assignment=task.get("assignment"),  # tasks of older threads have none
    )


async def run_worker(task: WorkerTask, runtime: Runtime[AgentContext]) -> Command[Any]:
    """A role agent or a registered agent does the work; a role worker with revise
    rounds hands its report to the critic before it counts."""
    worker = task["worker"]
    started, notes = time.time(), []
    tool_calls: list[ToolCall] = []
    memory: Memory | None = None
    request = worker_request(task, worker["role"])
    if worker["kind"] == "agent":
        report, usage = await run_registered_agent(
            AGENTS.get(worker["agent"]), request, get_config()
        )
        notes = usage[0]["notes"]
    else:
        report, usage, tool_calls, memory = await run_role_agent(
            await agent_context(runtime).chosen(f"worker:{worker['name']}", worker["model"]),
            request,
            tool_names=worker["tools"],
            max_steps=worker["max_steps"],
            sampling=worker_sampling(worker["name"], worker["temperature"]),
            call_key=task_key(get_config()),
            memory_tokens=worker["memory_tokens"],
        )
    in_review = worker["kind"] == "role" and worker["revise_rounds"] > 0
    result = reported(
        task,
        report,
        runtime,
        status="ok",
        started=started,
        final=not in_review,
        notes=notes,
        tool_calls=tool_calls,
        memory=memory,
    )
    update = {"results": {worker["name"]: result}, "usage": usage}
    if not in_review:
        return Command(update=update, goto="collect_batch")
    review = ReviewTask(
        task=task["task"],
        worker=worker,
        result=result,
        round=1,
        problems=[],
        max_parallel=task["max_parallel"],
        token_budget=task.get("token_budget"),
    )
    return Command(update=update, goto=Send("critique_report", review))


async def run_fallback(task: WorkerTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """A role agent stands in for a worker whose retries ran out, given its part."""
    worker = task["worker"]
    started = time.time()
    report, usage, _, _ = await run_role_agent(
        agent_context(runtime).model_for("fallback"),
        worker_request(task, described(worker)),
        tool_names=[],
        max_steps=0,
        fallback=True,
    )
    result = reported(task, report, runtime, status="fallback", started=started)
    return {"results": {worker["name"]: result}, "usage": usage}


def failed_result(task: WorkerTask, error: str) -> dict[str, Any]:
    now = time.time()
    result = worker_result(task, None, status="failed", started=now, attempts=0, error=error)
    return {"results": {task["worker"]["name"]: result}}


def worker_failed(task: WorkerTask, error: NodeError) -> Command[Any]:
    """Retries are exhausted: hand the work to the fallback worker, or record the failure
    for the planner to replan around (what the failed attempt cost still counts)."""
    raise_if_run_stops(error)
    described_error = describe_error(error.error)
    if task["on_failure"] == "replan":
        update = failed_result(task, described_error)
        return Command(update={**update, "usage": failed_usage(error.error)}, goto="collect_batch")
    return Command(
        update={"usage": failed_usage(error.error)},
        goto=Send("run_fallback", {**task, "failed_with": described_error}),
    )


def fallback_failed(task: WorkerTask, error: NodeError) -> Command[Any]:
    """The fallback failed too: record the failure; sibling results are kept."""
    raise_if_run_stops(error)
    first = task["failed_with"] or ""
    update = failed_result(task, f"{first}; fallback: {describe_error(error.error)}")
    return Command(update={**update, "usage": failed_usage(error.error)}, goto="collect_batch")


def batch_done(state: SupervisorState, index: int) -> bool:
    """Every worker of batch `index` has a final result from that batch (a worker run
    again has an older one, which does not count)."""
    results = state.get("results", {})
    return all(
        name in results
        and results[name]["batch"] == index
        and results[name].get("final", True)  # older threads' results have no flag
        for name in state["plan"]["batches"][index]
    )


def collect_batch(state: SupervisorState) -> Command[Any]:
    """Barrier: once every worker of the batch has a final result (fallbacks and review
    rounds included), replan or dispatch the next batch. Results arriving in different
    supersteps each trigger it; only the one that completes the batch moves on."""
    index = state["batch_index"]
    if not batch_done(state, index):
        return Command()
    after: SupervisorState = {**state, "batch_index": index + 1}
    if wants_replan(after):
        return Command(update={"batch_index": index + 1}, goto="replan_work")
    return Command(update={"batch_index": index + 1}, goto=dispatch_batch(after))


def failed_in(state: SupervisorState, index: int) -> list[str]:
    results = state.get("results", {})
    return [n for n in state["plan"]["batches"][index] if results[n]["status"] == "failed"]


def wants_replan(state: SupervisorState) -> bool:
    """Replan after a batch while replans remain, if work remains or a worker failed."""
    index = state["batch_index"]
    if replans_left(state) <= 0 or index > len(state["plan"]["batches"]):
        return False
    remaining = state["plan"]["batches"][index:]
    return bool(remaining) or bool(failed_in(state, index - 1))
