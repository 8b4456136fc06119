"""Supervisor nodes: plan, review, run workers (with fallback), resolve conflicts, synthesise.

Every node is a small function of its input that returns a partial state
update; retries, timeouts and fallbacks are configured on the graph's edges
and nodes (see graphs/supervisor.py), not hidden in loops here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from nodes import prompts
from nodes.agents import run_role_agent
from nodes.context import AgentContext, agent_context, node_attempt
from nodes.errors import describe_error, failed_usage
from nodes.inputs import ask_person, input_fields, validated_input
from nodes.structured import StructuredOutputError, ask_structured, cut_at_word
from nodes.tools import TOOLS
from state.supervisor import (
    Conflict,
    ConflictFound,
    ConflictTask,
    Plan,
    PlanRecord,
    PlanReview,
    Resolution,
    SupervisorInput,
    SupervisorState,
    Synthesis,
    WorkerResult,
    WorkerTask,
    arbitration_schema,
    conflict_scan_schema,
    plan_schema,
    review_answer_schema,
)

MAX_TOOL_STEPS = 4


# --- input ---------------------------------------------------------------------------


def check_workers(data: SupervisorInput) -> None:
    """Tools are an allow-list: every name must be registered in nodes.tools."""
    for worker in data.workers:
        if unknown := TOOLS.unknown(worker.tools):
            raise ValueError(
                f"workers[{worker.name}].tools: unknown tools {', '.join(unknown)}; "
                f"allowed: {', '.join(TOOLS.names())}"
            )


def open_supervisor(state: SupervisorState) -> dict[str, Any]:
    """Validate the input and fill in its defaults: a graph a server runs gets its input
    straight from a client, and must refuse bad input as the runner does."""
    given = input_fields(SupervisorInput, state)
    return validated_input("supervisor", SupervisorInput, given, check_workers).model_dump()


# --- planning -----------------------------------------------------------------------


class PlanError(ValueError):
    """A plan that parsed but cannot be run (unknown worker, cycle, duplicate...)."""


@dataclass(frozen=True)
class Batches:
    """A plan as dependency layers, and what was mended to get there."""

    layers: list[list[str]]
    notes: list[str]


def plan_batches(plan: Plan, known: list[str]) -> Batches:
    """Group the plan's workers into dependency layers. Slips with one obvious reading are
    mended and noted (a worker listed twice, a dependency on a worker the plan left out or
    on itself); what cannot run raises `PlanError` (unknown workers, cycles, no steps)."""
    if not plan.steps:
        raise PlanError("the plan is empty")
    named = {step.worker for step in plan.steps} | {d for s in plan.steps for d in s.depends_on}
    if unknown := sorted(named - set(known)):
        raise PlanError(f"unknown workers: {', '.join(unknown)}")
    notes: list[str] = []
    steps: dict[str, set[str]] = {}
    for step in plan.steps:
        if step.worker in steps:
            notes.append(f"{step.worker} was listed twice; its steps were merged")
        if step.worker in step.depends_on:
            notes.append(f"{step.worker} cannot depend on itself; that was dropped")
        steps.setdefault(step.worker, set()).update(set(step.depends_on) - {step.worker})
    for worker, deps in list(steps.items()):
        for missing in sorted(deps - set(steps)):
            steps[missing] = set()
            notes.append(f"added {missing}, which {worker} depends on")
    layers: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(steps):
        ready = [w for w in known if w in steps and w not in done and steps[w] <= done]
        if not ready:
            raise PlanError(
                "the dependencies form a cycle: " + ", ".join(sorted(set(steps) - done))
            )
        layers.append(ready)
        done.update(ready)
    return Batches(layers, notes)


async def plan_work(state: SupervisorState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    names = [w["name"] for w in state["workers"]]

    def runnable(plan: Plan) -> None:
        plan_batches(plan, names)

    try:
        reply = await ask_structured(
            agent_context(runtime).model_for("planner"),
            agent="planner",
            system=prompts.PLANNER,
            user=prompts.planner_message(state["workers"], state["task"]),
            schema=plan_schema(tuple(names)),
            check=runnable,
        )
    except StructuredOutputError as error:
        plan = PlanRecord(
            batches=[names],
            rationale="all workers in parallel",
            source="fallback",
            note=f"planner failed, so every worker runs in one batch: {error.problem}",
        )
        return {"plan": plan, "batch_index": 0, "usage": error.usage}
    batches = plan_batches(reply.value, names)
    plan = PlanRecord(
        batches=batches.layers,
        rationale=reply.value.rationale,
        source="planner",
        note="; ".join(batches.notes),
    )
    return {"plan": plan, "batch_index": 0, "usage": [reply.usage]}


def plan_review_answer(payload: dict[str, Any]) -> type[PlanReview]:
    """The answer model for a pending plan-review interrupt."""
    return review_answer_schema(tuple(payload["workers"]))


def review_plan(state: SupervisorState) -> dict[str, Any]:
    """Pause for a person to approve, edit or reject the plan (only with review_plan)."""
    if not state.get("review_plan"):
        return {}
    names = [w["name"] for w in state["workers"]]
    answer = ask_person(
        {"kind": "plan_review", "plan": state["plan"], "workers": names},
        review_answer_schema(tuple(names)),
    )
    if not answer.approve:
        note = answer.note or "rejected by reviewer"
        return {
            "plan": {**state["plan"], "batches": [], "source": "reviewer", "note": note},
            "synthesis": {"summary": f"Plan rejected: {note}", "rejected": True},
        }
    if answer.batches:
        plan = PlanRecord(
            batches=answer.batches,
            rationale=state["plan"]["rationale"],
            source="reviewer",
            note=answer.note or "batches edited by reviewer",
        )
        return {"plan": plan}
    return {}


# --- workers --------------------------------------------------------------------------


def dispatch_batch(state: SupervisorState) -> list[Send] | Literal["detect_conflicts"]:
    """Fan the current batch out as parallel `Send`s, or move on when batches are done."""
    index, batches = state["batch_index"], state["plan"]["batches"]
    if index >= len(batches):
        return "detect_conflicts"
    specs = {w["name"]: w for w in state["workers"]}
    results = state.get("results", {})
    context = [
        {"worker": r["worker"], **(r["report"] or {})}
        for r in results.values()
        if r["report"] is not None
    ]
    return [
        Send(
            "run_worker",
            WorkerTask(
                task=state["task"],
                worker=specs[name],
                batch=index,
                context=context,
                failed_with=None,
            ),
        )
        for name in batches[index]
    ]


async def _work(
    task: WorkerTask, runtime: Runtime[AgentContext], *, status: Literal["ok", "fallback"]
) -> dict[str, Any]:
    worker = task["worker"]
    started = time.time()
    report, usage = await run_role_agent(
        await agent_context(runtime).chosen(f"worker:{worker['name']}", worker.get("model")),
        agent=worker["name"],
        role=worker["role"],
        task=task["task"],
        context=task["context"],
        tool_names=worker.get("tools", []),
        max_steps=MAX_TOOL_STEPS,
        fallback=status == "fallback",
    )
    result = WorkerResult(
        worker=worker["name"],
        status=status,
        report=report.model_dump(),
        error=task["failed_with"],
        attempts=node_attempt(runtime),
        batch=task["batch"],
        started_at=started,
        finished_at=time.time(),
    )
    runtime.stream_writer({"worker": worker["name"], "status": status, "batch": task["batch"]})
    return {"results": {worker["name"]: result}, "usage": usage}


async def run_worker(task: WorkerTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    return await _work(task, runtime, status="ok")


async def run_fallback(task: WorkerTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    return await _work(task, runtime, status="fallback")


def failed_result(task: WorkerTask, error: str) -> dict[str, Any]:
    name = task["worker"]["name"]
    now = time.time()
    result = WorkerResult(
        worker=name,
        status="failed",
        report=None,
        error=error,
        attempts=0,
        batch=task["batch"],
        started_at=now,
        finished_at=now,
    )
    return {"results": {name: result}}


def worker_failed(task: WorkerTask, error: NodeError) -> Command[Any]:
    """Retries are exhausted: hand the work to the fallback worker (what the failed
    attempt cost still counts)."""
    return Command(
        update={"usage": failed_usage(error.error)},
        goto=Send("run_fallback", {**task, "failed_with": describe_error(error.error)}),
    )


def fallback_failed(task: WorkerTask, error: NodeError) -> Command[Any]:
    """The fallback failed too: record the failure; sibling results are kept."""
    first = task["failed_with"] or ""
    update = failed_result(task, f"{first}; fallback: {describe_error(error.error)}")
    return Command(update={**update, "usage": failed_usage(error.error)}, goto="collect_batch")


def collect_batch(state: SupervisorState) -> Command[Any]:
    """Barrier: once every worker of the batch has a result (fallbacks included), dispatch
    the next batch. Workers and fallbacks finishing in different supersteps each trigger
    it; only the trigger that completes the batch moves on, so a batch advances once."""
    index = state["batch_index"]
    results = state.get("results", {})
    if any(name not in results for name in state["plan"]["batches"][index]):
        return Command()
    advanced: SupervisorState = {**state, "batch_index": index + 1}
    return Command(update={"batch_index": index + 1}, goto=dispatch_batch(advanced))


# --- conflicts and synthesis ------------------------------------------------------


def reports_of(state: SupervisorState) -> dict[str, dict[str, Any]]:
    return {
        name: r["report"] for name, r in state.get("results", {}).items() if r["report"] is not None
    }


async def detect_conflicts(
    state: SupervisorState, runtime: Runtime[AgentContext]
) -> dict[str, Any]:
    reports = reports_of(state)
    if len(reports) < 2:
        return {"conflicts": []}
    schema = conflict_scan_schema(tuple(reports))
    try:
        reply = await ask_structured(
            agent_context(runtime).model_for("conflict_detector"),
            agent="conflict_detector",
            system=prompts.CONFLICT_DETECTOR,
            user=prompts.reports_message(state["task"], reports),
            schema=schema,
        )
    except StructuredOutputError as error:
        return {
            "conflicts": [],
            "conflict_note": f"conflict detection failed, so none were resolved: {error.problem}",
            "usage": error.usage,
        }
    return {"conflicts": distinct_conflicts(reply.value.conflicts), "usage": [reply.usage]}


def distinct_conflicts(found: list[ConflictFound]) -> list[Conflict]:
    """Each contradiction once: listings of one topic (in any case or spacing) merge, with
    every worker named in any of them; a 'conflict' of one worker is none."""
    merged: dict[str, Conflict] = {}
    for item in found:
        key = " ".join(item.topic.lower().split())
        if key in merged:
            merged[key]["workers"] = sorted({*merged[key]["workers"], *item.workers})
        else:
            merged[key] = Conflict(
                topic=item.topic, workers=sorted(set(item.workers)), description=item.description
            )
    return [c for c in merged.values() if len(c["workers"]) >= 2]


def route_conflicts(state: SupervisorState) -> list[Send] | Literal["synthesize"]:
    conflicts = state.get("conflicts", [])
    if not conflicts:
        return "synthesize"
    reports = reports_of(state)
    return [
        Send(
            "resolve_conflict",
            ConflictTask(
                task=state["task"],
                conflict=conflict,
                reports={w: reports[w] for w in conflict["workers"]},
                conflict_gap=state.get("conflict_gap", 0.25),
            ),
        )
        for conflict in conflicts
    ]


def settle_by_confidence(task: ConflictTask) -> Resolution | None:
    """The most confident side wins when it leads the next by at least the gap."""
    ranked = sorted(task["reports"].items(), key=lambda item: -item[1]["confidence"])
    (best, top), (_, runner_up) = ranked[0], ranked[1]
    if top["confidence"] - runner_up["confidence"] < task["conflict_gap"]:
        return None
    return Resolution(
        topic=task["conflict"]["topic"],
        method="confidence",
        winner=best,
        resolution=f"{best} was more confident ({top['confidence']:.2f} vs "
        f"{runner_up['confidence']:.2f}); its position stands.",
    )


async def resolve_conflict(task: ConflictTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    if (settled := settle_by_confidence(task)) is not None:
        return {"resolutions": [settled]}
    schema = arbitration_schema(tuple(task["reports"]))
    reply = await ask_structured(
        agent_context(runtime).model_for("arbiter"),
        agent="arbiter",
        system=prompts.ARBITER,
        user=prompts.reports_message(task["task"], task["reports"], conflict=task["conflict"]),
        schema=schema,
    )
    resolution = Resolution(
        topic=task["conflict"]["topic"],
        method="arbitration",
        winner=reply.value.winner,
        resolution=reply.value.resolution,
    )
    return {"resolutions": [resolution], "usage": [reply.usage]}


def structured_result(state: SupervisorState, synthesis: Synthesis, note: str) -> dict[str, Any]:
    """The final result: the synthesiser's text plus what the state already knows for sure."""
    results = state.get("results", {})
    resolutions = {r["topic"]: r for r in state.get("resolutions", [])}
    return {
        **synthesis.model_dump(),
        "findings": {
            name: r["report"]["findings"] if r["report"] else [] for name, r in results.items()
        },
        "failed_workers": {
            name: r["error"] for name, r in results.items() if r["status"] == "failed"
        },
        "conflicts": [
            {**c, "resolution": resolutions.get(c["topic"])} for c in state.get("conflicts", [])
        ],
        "note": "; ".join(n for n in (state.get("conflict_note", ""), note) if n),
    }


async def synthesize(state: SupervisorState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    reports = reports_of(state)
    try:
        reply = await ask_structured(
            agent_context(runtime).model_for("synthesizer"),
            agent="synthesizer",
            system=prompts.SYNTHESIZER,
            user=prompts.reports_message(
                state["task"], reports, resolved_conflicts=state.get("resolutions", [])
            ),
            schema=Synthesis,
        )
    except StructuredOutputError as error:
        # The workers' results are the valuable part; never lose them to a bad summary.
        confidences = [r["confidence"] for r in reports.values()]
        fallback = Synthesis(
            summary=cut_at_word(" ".join(r["summary"] for r in reports.values()), 1_500),
            recommendations=[],
            confidence=round(sum(confidences) / len(confidences), 2) if confidences else 0.0,
        )
        note = f"synthesizer failed: {error.problem}"
        return {"synthesis": structured_result(state, fallback, note), "usage": error.usage}
    return {"synthesis": structured_result(state, reply.value, ""), "usage": [reply.usage]}


def after_review(state: SupervisorState) -> list[Send] | Literal["detect_conflicts", "__end__"]:
    if state.get("synthesis", {}).get("rejected"):
        return "__end__"
    return dispatch_batch(state)
