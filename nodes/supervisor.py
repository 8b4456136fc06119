"""Supervisor nodes: plan, review, run workers (with fallback), critique and revise,
replan, resolve conflicts, synthesise, and ask a person.

Every node is a small function of its input that returns a partial state update or
a `Command` saying where the run goes next; retries, timeouts and fallbacks are
configured on the graph's nodes (see graphs/supervisor.py), and every loop (a
critic's rounds, replanning, a person's re-runs) is a path through the graph, one
checkpointed superstep per turn, not a loop hidden in a node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.errors import NodeError
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, Overwrite, Send

from mas_graphs.nodes import prompts
from mas_graphs.nodes.agents import (
    AGENTS,
    AgentRequest,
    critique,
    revise_report,
    run_registered_agent,
    run_role_agent,
    task_key,
    worker_sampling,
)
from mas_graphs.nodes.context import AgentContext, agent_context, node_attempt
from mas_graphs.nodes.errors import describe_error, failed_usage
from mas_graphs.nodes.inputs import ask_person, input_fields, validated_input
from mas_graphs.nodes.mcp import unavailable
from mas_graphs.nodes.structured import StructuredOutputError, ask_agent, cut_at_word
from mas_graphs.nodes.tools import TOOLS
from mas_graphs.state.common import DEFAULT_MAX_PARALLEL, CallUsage
from mas_graphs.state.pattern import PATTERNS
from mas_graphs.state.supervisor import (
    Conflict,
    ConflictFound,
    ConflictTask,
    Escalation,
    Plan,
    PlanRecord,
    PlanReview,
    PlanRevision,
    PlanStep,
    Replan,
    ReportReview,
    Resolution,
    ReviewTask,
    SupervisorInput,
    SupervisorState,
    Synthesis,
    SynthesisReview,
    ToolCall,
    WorkerReport,
    WorkerResult,
    WorkerTask,
    arbitration_schema,
    conflict_scan_schema,
    plan_schema,
    replan_schema,
    review_answer_schema,
    synthesis_review_schema,
)

# --- input ---------------------------------------------------------------------------


def check_workers(data: SupervisorInput) -> None:
    """Names are an allow-list: every tool and agent must be registered; a team's input
    passes its own pattern's checks."""
    for worker in data.workers:
        if unknown := TOOLS.unknown(worker.tools):
            if down := [reason for name in unknown if (reason := unavailable(name))]:
                raise ValueError(f"workers[{worker.name}].tools: {'; '.join(down)}")
            raise ValueError(
                f"workers[{worker.name}].tools: unknown tools {', '.join(unknown)}; "
                f"allowed: {', '.join(TOOLS.names())}"
            )
        if worker.agent and worker.agent not in AGENTS:
            raise ValueError(
                f"workers[{worker.name}].agent: unknown agent '{worker.agent}'; "
                f"registered: {', '.join(AGENTS.names()) or 'none'}"
            )
        if worker.pattern and worker.input is not None:
            try:
                check_team(worker.pattern, worker.input)
            except ValueError as error:
                raise ValueError(f"workers[{worker.name}].input: {error}") from None


def check_team(pattern: str, values: dict[str, Any]) -> None:
    """A team's (validated) input passes its own pattern's checks."""
    spec = PATTERNS.get(pattern)
    if spec.check is not None:
        spec.check(spec.input.model_validate(values))


async def open_supervisor(state: SupervisorState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Validate the input and fill in its defaults: a graph a server runs gets its input
    straight from a client, and must refuse bad input as the runner does (with the
    operator's limits, from the context)."""
    given = input_fields(SupervisorInput, state)
    limits = {"max_workers": agent_context(runtime).max_workers}
    values = validated_input(
        "supervisor", SupervisorInput, given, check_workers, limits=limits
    ).model_dump()
    if values["planning"] == "parallel":
        # A plain fan-out: the plan is the input's workers, all at once, no planning call.
        names = [w["name"] for w in values["workers"]]
        plan = PlanRecord(
            batches=[names], rationale="all workers at once", source="parallel", note=""
        )
        values |= {"plan": plan, "batch_index": 0}
    return values


def after_opening(state: SupervisorState) -> list[Send] | str:
    return "plan_work" if state["planning"] == "planner" else after_planning(state)


def after_planning(state: SupervisorState) -> list[Send] | str:
    """A person reviews the plan when the input asks for it; else the first batch runs."""
    return "review_plan" if state.get("review_plan") else dispatch_batch(state)


def described(worker: dict[str, Any]) -> str:
    """What the planner (and a fallback) is told a worker does."""
    if worker["role"]:
        return str(worker["role"])
    if worker["kind"] == "agent":
        return AGENTS.get(worker["agent"]).description
    return f"a nested {worker['pattern']} run that reports its conclusion"


def with_roles(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**w, "role": described(w)} for w in workers]


# --- planning -----------------------------------------------------------------------


class PlanError(ValueError):
    """A plan that parsed but cannot be run (unknown worker, cycle, duplicate...)."""


@dataclass(frozen=True)
class Batches:
    """A plan as dependency layers, and what was mended to get there."""

    layers: list[list[str]]
    notes: list[str]


def plan_batches(steps: list[PlanStep], known: list[str], *, allow_empty: bool = False) -> Batches:
    """Group the steps' workers into dependency layers. Slips with one obvious reading
    are mended and noted (a worker listed twice, a dependency on a worker the plan left
    out or on itself); what cannot run raises `PlanError` (unknown workers, cycles, no
    steps)."""
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
        needs.setdefault(step.worker, set()).update(set(step.depends_on) - {step.worker})
    for worker, deps in list(needs.items()):
        for missing in sorted(deps - set(needs)):
            needs[missing] = set()
            notes.append(f"added {missing}, which {worker} depends on")
    layers: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(needs):
        ready = [w for w in known if w in needs and w not in done and needs[w] <= done]
        if not ready:
            raise PlanError(
                "the dependencies form a cycle: " + ", ".join(sorted(set(needs) - done))
            )
        layers.append(ready)
        done.update(ready)
    return Batches(layers, notes)


async def plan_work(state: SupervisorState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    names = [w["name"] for w in state["workers"]]

    def runnable(plan: Plan) -> None:
        plan_batches(plan.steps, names)

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
        plan = PlanRecord(
            batches=[names],
            rationale="all workers in parallel",
            source="fallback",
            note=f"planner failed, so every worker runs in one batch: {error.problem}",
        )
        return {"plan": plan, "batch_index": 0, "usage": error.usage}
    batches = plan_batches(reply.value.steps, names)
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


def after_review(state: SupervisorState) -> list[Send] | str:
    if state.get("synthesis", {}).get("rejected"):
        return END
    return dispatch_batch(state)


# --- workers --------------------------------------------------------------------------


def finished_reports(state: SupervisorState) -> list[dict[str, Any]]:
    return [
        {"worker": r["worker"], **r["report"]}
        for r in state.get("results", {}).values()
        if r["report"] is not None and r.get("final", True)
    ]


def replans_left(state: SupervisorState) -> int:
    return state.get("max_replans", 0) - len(state.get("plan_revisions", []))


def dispatch_batch(
    state: SupervisorState, guidance: str = ""
) -> list[Send] | Literal["detect_conflicts", "synthesize"]:
    """Fan the current batch out as parallel `Send`s (a team's worker to `run_team`), or
    move on when batches are done."""
    index, batches = state["batch_index"], state["plan"]["batches"]
    if index >= len(batches):
        return "detect_conflicts" if state.get("conflict_scan", True) else "synthesize"
    specs = {w["name"]: w for w in state["workers"]}
    replan = state.get("on_worker_failure") == "replan" and replans_left(state) > 0
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
                max_parallel=state.get("max_parallel", DEFAULT_MAX_PARALLEL),
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


async def run_worker(task: WorkerTask, runtime: Runtime[AgentContext]) -> Command[Any]:
    """A role agent or a registered agent does the work; a role worker with revise
    rounds hands its report to the critic before it counts."""
    worker = task["worker"]
    started, notes = time.time(), []
    tool_calls: list[ToolCall] = []
    if worker["kind"] == "agent":
        request = AgentRequest(
            worker=worker["name"],
            task=task["task"],
            role=worker["role"],
            context=task["context"],
            guidance=task["guidance"],
        )
        report, usage = await run_registered_agent(
            AGENTS.get(worker["agent"]), request, get_config()
        )
        notes = usage[0]["notes"]
    else:
        report, usage, tool_calls = await run_role_agent(
            await agent_context(runtime).chosen(f"worker:{worker['name']}", worker["model"]),
            agent=worker["name"],
            role=worker["role"],
            task=task["task"],
            context=task["context"],
            tool_names=worker["tools"],
            max_steps=worker["max_steps"],
            guidance=task["guidance"],
            sampling=worker_sampling(worker["name"], worker["temperature"]),
            call_key=task_key(get_config()),
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
    )
    return Command(update=update, goto=Send("critique_report", review))


async def run_fallback(task: WorkerTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """A role agent stands in for a worker whose retries ran out, given its part."""
    worker = task["worker"]
    started = time.time()
    report, usage, _ = await run_role_agent(
        agent_context(runtime).model_for("fallback"),
        agent=worker["name"],
        role=described(worker),
        task=task["task"],
        context=task["context"],
        tool_names=[],
        max_steps=0,
        fallback=True,
        guidance=task["guidance"],
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
    first = task["failed_with"] or ""
    update = failed_result(task, f"{first}; fallback: {describe_error(error.error)}")
    return Command(update={**update, "usage": failed_usage(error.error)}, goto="collect_batch")


# --- critic and revision of a worker's report ------------------------------------------


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
    result = task["result"]
    note = f"review round {task['round']} failed: {describe_error(error.error)}"
    final = WorkerResult(**{**result, "final": True, "notes": [*result["notes"], note]})
    return Command(
        update={"results": {result["worker"]: final}, "usage": failed_usage(error.error)},
        goto="collect_batch",
    )


# --- batches and replanning -----------------------------------------------------------


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

    def runnable(replan: Replan) -> None:
        plan_batches(replan.steps, names, allow_empty=True)

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
            new = plan_batches(reply.value.steps, names, allow_empty=True).layers
            reason, usage = reply.value.reason, [reply.usage]
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
        **{**plan, "batches": [*plan["batches"][:index], *new]},
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


# --- conflicts and synthesis ------------------------------------------------------


def reports_of(state: SupervisorState) -> dict[str, dict[str, Any]]:
    return {
        name: r["report"] for name, r in state.get("results", {}).items() if r["report"] is not None
    }


async def detect_conflicts(
    state: SupervisorState, runtime: Runtime[AgentContext]
) -> dict[str, Any]:
    # Each check starts the resolutions afresh: after a re-run the conflicts are new.
    fresh = {"resolutions": Overwrite([]), "conflict_note": ""}
    reports = reports_of(state)
    if len(reports) < 2:
        return {**fresh, "conflicts": []}
    schema = conflict_scan_schema(tuple(reports))
    try:
        reply = await ask_agent(
            runtime,
            "conflict_detector",
            system=prompts.CONFLICT_DETECTOR,
            user=prompts.reports_message(state["task"], reports),
            schema=schema,
        )
    except StructuredOutputError as error:
        return {
            **fresh,
            "conflicts": [],
            "conflict_note": f"conflict detection failed, so none were resolved: {error.problem}",
            "usage": error.usage,
        }
    conflicts = distinct_conflicts(reply.value.conflicts)
    return {**fresh, "conflicts": conflicts, "usage": [reply.usage]}


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
                max_parallel=state.get("max_parallel", DEFAULT_MAX_PARALLEL),
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
    reply = await ask_agent(
        runtime,
        "arbiter",
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


def structured_result(
    state: SupervisorState,
    synthesis: Synthesis,
    note: str,
    reviews: list[ReportReview] | None = None,
) -> dict[str, Any]:
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
        "reviews": reviews or [],
    }


def after_synthesis(state: SupervisorState) -> str:
    """A critic round first when the input asks for one, then the person's check."""
    return "critique_synthesis" if state.get("revise_rounds", 0) > 0 else review_or_end(state)


def review_or_end(state: SupervisorState) -> str:
    """Only a run with `escalate_below` may go to a person; others end with the synthesis."""
    return "review_synthesis" if state.get("escalate_below") is not None else END


async def synthesize(state: SupervisorState, runtime: Runtime[AgentContext]) -> Command[Any]:
    reports = reports_of(state)
    try:
        reply = await ask_agent(
            runtime,
            "synthesizer",
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
        update = {"synthesis": structured_result(state, fallback, note), "usage": error.usage}
        return Command(update=update, goto=after_synthesis(state))
    update = {"synthesis": structured_result(state, reply.value, ""), "usage": [reply.usage]}
    return Command(update=update, goto=after_synthesis(state))


def draft_of(synthesis: dict[str, Any]) -> dict[str, Any]:
    return {k: synthesis[k] for k in ("summary", "recommendations", "confidence")}


async def critique_synthesis(
    state: SupervisorState, runtime: Runtime[AgentContext]
) -> Command[Any]:
    """The critic reads the team's answer; accepted, or out of rounds, it goes on."""
    synthesis = state["synthesis"]
    reviews = synthesis.get("reviews", [])
    try:
        verdict, usage = await critique(
            agent_context(runtime).model_for("critic"),
            agent="critic:synthesis",
            task=state["task"],
            what="the team's answer",
            text=draft_of(synthesis),
        )
    except StructuredOutputError as error:
        note = "; ".join(n for n in (synthesis["note"], f"critic failed: {error.problem}") if n)
        update: dict[str, Any] = {"synthesis": {**synthesis, "note": note}, "usage": error.usage}
        return Command(update=update, goto=review_or_end(state))
    review = ReportReview(
        round=len(reviews) + 1, accepted=verdict.accept, problems=verdict.problems
    )
    done = verdict.accept or review["round"] > state.get("revise_rounds", 0)
    update = {"synthesis": {**synthesis, "reviews": [*reviews, review]}, "usage": [usage]}
    return Command(update=update, goto=review_or_end(state) if done else "revise_synthesis")


async def revise_synthesis(state: SupervisorState, runtime: Runtime[AgentContext]) -> Command[Any]:
    """The synthesiser rewrites the answer with the critic's problems fixed."""
    synthesis = state["synthesis"]
    reviews = synthesis["reviews"]
    try:
        reply = await ask_agent(
            runtime,
            "synthesizer",
            system=prompts.SYNTHESIS_REVISER,
            user=prompts.synthesis_revision_message(
                state["task"], reports_of(state), draft_of(synthesis), reviews[-1]["problems"]
            ),
            schema=Synthesis,
        )
    except StructuredOutputError as error:
        note = "; ".join(n for n in (synthesis["note"], f"revision failed: {error.problem}") if n)
        update: dict[str, Any] = {"synthesis": {**synthesis, "note": note}, "usage": error.usage}
        return Command(update=update, goto=review_or_end(state))
    revised = structured_result(state, reply.value, synthesis["note"], reviews)
    return Command(update={"synthesis": revised, "usage": [reply.usage]}, goto="critique_synthesis")


# --- a person steps in -------------------------------------------------------------------


def escalation_reason(state: SupervisorState) -> str | None:
    """Why the answer goes to a person: too little confidence, or a worker failed."""
    threshold = state.get("escalate_below")
    if threshold is None:
        return None
    synthesis = state["synthesis"]
    reasons = []
    if synthesis["confidence"] < threshold:
        reasons.append(f"confidence {synthesis['confidence']:.2f} is below {threshold:.2f}")
    if failed := sorted(synthesis["failed_workers"]):
        reasons.append(f"failed workers: {', '.join(failed)}")
    return "; ".join(reasons) or None


def synthesis_review_answer(payload: dict[str, Any]) -> type[SynthesisReview]:
    """The answer model for a pending synthesis-review interrupt."""
    return synthesis_review_schema(tuple(payload["workers"]))


def review_synthesis(state: SupervisorState) -> Command[Any]:
    """With `escalate_below`: an unsure answer, or one with failed workers, waits for a
    person, who accepts it, edits it, or runs named workers again (with a note)."""
    reason = escalation_reason(state)
    if reason is None:
        return Command(goto=END)
    names = [w["name"] for w in state["workers"]]
    answer = ask_person(
        {
            "kind": "synthesis_review",
            "reason": reason,
            "draft": draft_of(state["synthesis"]),
            "failed_workers": state["synthesis"]["failed_workers"],
            "workers": names,
        },
        synthesis_review_schema(tuple(names)),
    )
    record = Escalation(
        reason=reason, action=answer.action, workers=answer.workers, note=answer.note
    )
    if answer.action == "accept":
        return Command(update={"escalations": [record]}, goto=END)
    if answer.action == "edit" and answer.synthesis is not None:
        edited = {**state["synthesis"], **answer.synthesis.model_dump(), "edited_by_person": True}
        return Command(update={"escalations": [record], "synthesis": edited}, goto=END)
    plan = state["plan"]
    index = len(plan["batches"])
    again = PlanRecord(
        **{**plan, "batches": [*plan["batches"], answer.workers], "source": "person"}
    )
    rerun: SupervisorState = {**state, "plan": again, "batch_index": index}
    return Command(
        update={"escalations": [record], "plan": again, "batch_index": index},
        goto=dispatch_batch(rerun, guidance=answer.note),
    )
