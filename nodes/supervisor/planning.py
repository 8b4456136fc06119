"""Planning: the planner's batches, a person's review of the plan, and replanning the
rest of the plan after a batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from mas_graphs.nodes import prompts
from mas_graphs.nodes.context import AgentContext
from mas_graphs.nodes.inputs import ask_person
from mas_graphs.nodes.structured import StructuredOutputError, ask_agent
from mas_graphs.nodes.supervisor.workers import dispatch_batch, failed_in, with_roles
from mas_graphs.state.common import CallUsage
from mas_graphs.state.supervisor import (
    Assignment,
    Plan,
    PlanRecord,
    PlanReview,
    PlanRevision,
    PlanStep,
    Replan,
    SupervisorState,
    dependency_layers,
    plan_schema,
    replan_schema,
    review_answer_schema,
)


def after_planning(state: SupervisorState) -> list[Send] | str:
    """A person reviews the plan when the input asks for it; else the first batch runs."""
    return "review_plan" if state["review_plan"] else dispatch_batch(state)


class PlanError(ValueError):
    """A plan that parsed but cannot be run (unknown worker, cycle, duplicate...)."""


@dataclass(frozen=True)
class Batches:
    """A plan as dependency layers, and what was mended to get there."""

    layers: list[list[str]]
    notes: list[str]


def plan_batches(
    steps: list[PlanStep],
    known: list[str],
    *,
    allow_empty: bool = False,
    declared: dict[str, list[str]] | None = None,
) -> Batches:
    """Group the steps' workers into dependency layers, keeping the dependencies the input
    `declared` for them. Slips with one obvious reading are mended and noted (a worker
    listed twice, a dependency on a worker the plan left out or on itself); what cannot
    run raises `PlanError` (unknown workers, cycles, no steps)."""
    if not steps and not allow_empty:
        raise PlanError("the plan is empty")
    named = {step.worker for step in steps} | {d for s in steps for d in s.depends_on}
    if unknown := sorted(named - set(known)):
        raise PlanError(f"unknown workers: {', '.join(unknown)}")
    notes: list[str] = []
    needs: dict[str, set[str]] = {}
    for step in steps:
        if step.worker in needs:
            notes.append(f"{step.worker} was listed twice; its steps were merged")
        if step.worker in step.depends_on:
            notes.append(f"{step.worker} cannot depend on itself; that was dropped")
        kept = set((declared or {}).get(step.worker, []))
        needs.setdefault(step.worker, set()).update((set(step.depends_on) | kept) - {step.worker})
    for worker, deps in list(needs.items()):
        for missing in sorted(deps - set(needs)):
            needs[missing] = set((declared or {}).get(missing, []))
            notes.append(f"added {missing}, which {worker} depends on")
    try:
        return Batches(dependency_layers(needs, known), notes)
    except ValueError as error:
        raise PlanError(str(error)) from None


def assignments_of(steps: list[PlanStep]) -> dict[str, Assignment]:
    """Each planned worker's own part, where the planner gave one."""
    return {
        step.worker: Assignment(subtask=step.subtask, expected_output=step.expected_output)
        for step in steps
        if step.subtask
    }


def declared_dependencies(workers: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {w["name"]: w["depends_on"] for w in workers if w["depends_on"]}


async def plan_work(state: SupervisorState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    names = [w["name"] for w in state["workers"]]

    declared = declared_dependencies(state["workers"])

    def runnable(plan: Plan) -> None:
        plan_batches(plan.steps, names, declared=declared)

    try:
        reply = await ask_agent(
            runtime,
            "planner",
            system=prompts.PLANNER,
            user=prompts.planner_message(with_roles(state["workers"]), state["task"]),
            schema=plan_schema(tuple(names)),
            check=runnable,
        )
    except StructuredOutputError as error:
        fallback = plan_batches([PlanStep(worker=name) for name in names], names, declared=declared)
        plan = PlanRecord(
            batches=fallback.layers,
            rationale="every worker, in the order the input declares",
            source="fallback",
            note=f"planner failed, so every worker runs as soon as it can: {error.problem}",
            assignments={},
        )
        return {"plan": plan, "batch_index": 0, "usage": error.usage}
    batches = plan_batches(reply.value.steps, names, declared=declared)
    plan = PlanRecord(
        batches=batches.layers,
        rationale=reply.value.rationale,
        source="planner",
        note="; ".join(batches.notes),
        assignments=assignments_of(reply.value.steps),
    )
    return {"plan": plan, "batch_index": 0, "usage": [reply.usage]}


def plan_review_answer(payload: dict[str, Any]) -> type[PlanReview]:
    """The answer model for a pending plan-review interrupt."""
    return review_answer_schema(tuple(payload["workers"]))


def review_plan(state: SupervisorState) -> dict[str, Any]:
    """Pause for a person to approve, edit or reject the plan (only with review_plan)."""
    if not state["review_plan"]:
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
            assignments=state["plan"].get("assignments", {}),
        )
        return {"plan": plan}
    return {}


def after_review(state: SupervisorState) -> list[Send] | str:
    if state.get("synthesis", {}).get("rejected"):
        return END
    return dispatch_batch(state)


async def replan_work(state: SupervisorState, runtime: Runtime[AgentContext]) -> Command[Any]:
    """The planner sees the reports so far and revises the rest of the plan: the
    workers not yet run, and any that failed (which may run again)."""
    index, plan = state["batch_index"], state["plan"]
    results = state.get("results", {})
    settled = {n for n, r in results.items() if r["status"] != "failed"}
    waiting = [w for w in state["workers"] if w["name"] not in settled]
    names = [w["name"] for w in waiting]
    remaining = plan["batches"][index:]
    failed = failed_in(state, index - 1)
    usage: list[CallUsage] = []

    declared = {
        name: [d for d in deps if d in names]  # who already reported is no longer waited for
        for name, deps in declared_dependencies(waiting).items()
    }

    def runnable(replan: Replan) -> None:
        plan_batches(replan.steps, names, allow_empty=True, declared=declared)

    parts: dict[str, Assignment] = {}
    if not names:
        new, reason = remaining, "every worker has reported"
    else:
        try:
            reply = await ask_agent(
                runtime,
                "planner",
                system=prompts.REPLANNER,
                user=prompts.replan_message(
                    state["task"],
                    {r["worker"]: r["report"] for r in results.values() if r["report"]},
                    {n: results[n]["error"] or "" for n in failed},
                    with_roles(waiting),
                    remaining,
                ),
                schema=replan_schema(tuple(names)),
                check=runnable,
            )
        except StructuredOutputError as error:
            new, reason, usage = remaining, f"replanner failed: {error.problem}", error.usage
        else:
            new = plan_batches(reply.value.steps, names, allow_empty=True, declared=declared).layers
            reason, usage = reply.value.reason, [reply.usage]
            parts = assignments_of(reply.value.steps)
    revision = PlanRevision(
        after_batch=index - 1,
        trigger="failure" if failed else "batch",
        failed={n: results[n]["error"] or "" for n in failed},
        reason=reason,
        before=remaining,
        after=new,
        changed=new != remaining,
    )
    revised = PlanRecord(
        **{
            **plan,
            "batches": [*plan["batches"][:index], *new],
            "assignments": {**plan.get("assignments", {}), **parts},
        },
    )
    if revision["changed"]:
        revised["source"] = "replanner"
    advanced: SupervisorState = {
        **state,
        "plan": revised,
        "plan_revisions": [*state.get("plan_revisions", []), revision],
    }
    return Command(
        update={"plan": revised, "plan_revisions": [revision], "usage": usage},
        goto=dispatch_batch(advanced),
    )
