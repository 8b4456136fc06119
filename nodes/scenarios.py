"""Multi-scenario nodes: start the scenarios, run their batches, meet at sync points,
aggregate. Retries, timeouts and the fan-out live in graphs/scenarios.py.

Scenario records are plain dicts (`ScenarioRun`) keyed by name in the `runs`
channel; every finished batch writes a new version of its scenario's record.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, Literal, cast

from langchain_core.language_models import BaseChatModel
from langgraph.errors import NodeError
from langgraph.graph import END
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from pydantic import ValidationError

from mas_graphs.nodes.context import AgentContext, agent_context, node_attempt
from mas_graphs.nodes.errors import describe_error
from mas_graphs.nodes.inputs import input_fields, validated_input
from mas_graphs.nodes.skills import InputSpec, Item, Skill, resolve_skill
from mas_graphs.nodes.structured import cut_at_word
from mas_graphs.state.common import validation_problems
from mas_graphs.state.registry import UnknownNameError
from mas_graphs.state.scenarios import (
    BatchRecord,
    MilestoneRecord,
    PhaseTask,
    ScenarioRun,
    ScenariosInput,
    ScenarioSnapshot,
    ScenariosState,
    scenario_size,
)
from mas_graphs.state.supervisor import MAX_FINDINGS, Finding, WorkerReport

# Total time ~ n^exponent; within this distance of 1 the growth counts as linear.
LINEAR_TOLERANCE = 0.2
QUALITY_GAP = 0.1


# --- start and dispatch ------------------------------------------------------------------


def check_skill(data: ScenariosInput) -> None:
    """The skill must be registered, and its params must fit the skill's params model."""
    try:
        skill = resolve_skill(data.skill)
    except UnknownNameError as error:
        raise ValueError(f"skill: {error}") from None
    try:
        skill.params_model.model_validate(data.params)
    except ValidationError as error:
        raise ValueError(validation_problems(error, prefix="params.")) from None


def start_scenarios(state: ScenariosState) -> dict[str, Any]:
    """Validate the input (a server's client sends it straight here), then turn the
    scenario specs into run records; all scenarios start together."""
    given = input_fields(ScenariosInput, state)
    data = validated_input("scenarios", ScenariosInput, given, check_skill)
    if data.restart:
        if problem := restart_problem(state, data.restart):
            raise ValueError(f"restart: {problem}")
        return restarted(state, data.restart, time.time())
    runs = {
        spec.name: ScenarioRun(
            name=spec.name,
            size=scenario_size(data.base_size, spec.scale),
            budget_s=spec.budget_s,
            batch_size=spec.batch_size,
            difficulty=spec.difficulty,
            characteristics=spec.characteristics,
            seed=data.seed,
            status="running",
            items_done=0,
            elapsed_ms=0.0,
            work_ms=0.0,
            batch_count=0,
            errors=[],
        )
        for spec in data.scenarios
    }
    values = {**data.model_dump(), "runs": runs, "phase": 0}
    now = time.time()
    deadline = sync_deadline(cast(ScenariosState, values), 0, now)
    return {**values, "started_at": now, "phase_deadline": deadline}


def restart_problem(values: dict[str, Any] | ScenariosState, names: list[str]) -> str | None:
    """Why these scenarios cannot be restarted, or None: only a finished run's failed or
    timed-out scenarios can."""
    runs = values.get("runs") or {}
    if not values.get("aggregate"):
        return "only a finished run's scenarios restart (resume an unfinished one)"
    if unknown := sorted(set(names) - set(runs)):
        return f"unknown scenarios {', '.join(unknown)}; this run has {', '.join(runs)}"
    if finished := [n for n in names if runs[n]["status"] not in ("failed", "timed_out")]:
        return f"only a failed or timed-out scenario restarts; {', '.join(finished)}: done"
    return None


def restart_input(values: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A finished run's failed or timed-out scenarios, run again by a new run of its thread."""
    if problem := restart_problem(values, names):
        raise ValueError(problem)
    return {"restart": names}


def restarted(state: ScenariosState, names: list[str], now: float) -> dict[str, Any]:
    """A new run of a finished thread: the named scenarios go on from their last finished
    batch (a timed-out one with its budget again), the others keep their results, and
    the run's clock continues where it stopped, so timings stay comparable."""
    budgets = {spec["name"]: spec["budget_s"] for spec in state["scenarios"]}
    runs = {
        name: ScenarioRun(
            **{
                **(run := state["runs"][name]),
                "status": "running",
                "budget_s": round(run["elapsed_ms"] / 1000 + budgets[name], 3),
            }
        )
        for name in names
    }
    return resumed_from(state, runs, now) | {"runs": runs}


def resumed_from(state: ScenariosState, runs: dict[str, ScenarioRun], now: float) -> dict[str, Any]:
    """Where `runs`, going on again, meet the others: the first sync point one of them
    has yet to reach, its deadline, and the clock continued from the last aggregate."""
    candidates: ScenariosState = {**state, "runs": {**state["runs"], **runs}}
    phase = min(
        p
        for p in range(phase_count(candidates))
        for run in runs.values()
        if phase_target(candidates, run, p) > run["items_done"]
    )
    wall_s = (state.get("aggregate") or {}).get("wall_ms", 0.0) / 1000
    started = now - wall_s if wall_s else state["started_at"]
    return {
        "phase": phase,
        "started_at": started,
        "phase_deadline": sync_deadline(candidates, phase, now),
    }


def sync_deadline(state: ScenariosState, phase: int, now: float) -> float | None:
    """When sync point `phase` stops waiting for scenarios behind. The last one has no
    deadline: the aggregate compares every scenario's end (each within its budget)."""
    timeout = state["sync_timeout_s"]
    if timeout is None or phase >= phase_count(state) - 1:
        return None
    return now + timeout


def phase_count(state: ScenariosState) -> int:
    """Sync points in the run: one per milestone, one per batch round, or just the end."""
    if state["sync"] == "milestone":
        return len(state["milestones"])
    if state["sync"] == "lockstep":
        return max(math.ceil(r["size"] / r["batch_size"]) for r in state["runs"].values())
    return 1


def phase_target(state: ScenariosState, run: ScenarioRun, phase: int) -> int:
    """How many items `run` must have processed to reach sync point `phase`."""
    if state["sync"] == "milestone":
        return min(run["size"], math.ceil(state["milestones"][phase] * run["size"] - 1e-9))
    if state["sync"] == "lockstep":
        return min(run["size"], (phase + 1) * run["batch_size"])
    return run["size"]


def phase_label(state: ScenariosState, phase: int) -> str:
    if state["sync"] == "milestone":
        return f"{state['milestones'][phase]:.0%}"
    if state["sync"] == "lockstep":
        return f"batch {phase + 1}"
    return "done"


def dispatch_phase(state: ScenariosState) -> list[Send] | Literal["milestone_sync", "aggregate"]:
    """Send every live scenario short of the next sync point on to it, in one superstep,
    so the sync node runs once, after all of them got there (or stopped). A sync point
    that every live scenario has already reached is still recorded."""
    if state["phase"] >= phase_count(state):
        return "aggregate"
    live = [r for r in state["runs"].values() if r["status"] == "running"]
    sends = [
        Send(
            "run_phase",
            PhaseTask(
                skill=state["skill"],
                params=state["params"],
                run=run,
                target=phase_target(state, run, state["phase"]),
                deadline=state.get("phase_deadline"),  # threads from before deadlines: none
                phase_batches=[],
            ),
        )
        for run in live
        if run["items_done"] < phase_target(state, run, state["phase"])
    ]
    return sends or "milestone_sync"


# --- one scenario's phase: a subgraph of batches ----------------------------------------


@lru_cache(maxsize=64)
def scenario_items(skill_name: str, spec_json: str) -> tuple[Item, ...]:
    """A scenario's inputs, made once per process rather than once per batch (they are
    seeded, so every batch and every process sees the same items)."""
    return tuple(resolve_skill(skill_name).make_inputs(json.loads(spec_json)))


def input_spec(run: ScenarioRun) -> InputSpec:
    return InputSpec(
        scenario=run["name"],
        size=run["size"],
        difficulty=run["difficulty"],
        characteristics=run["characteristics"],
        seed=run["seed"],
    )


class SkillStoppedError(Exception):
    """A pure-Python skill's batch was stopped between two items (budget, timeout)."""


async def timed_process(
    skill: Skill, items: list[Item], params: Any, model: BaseChatModel | None
) -> tuple[list[Any], float]:
    """The skill's outputs and their cost in seconds: wall clock for async skills,
    the worker thread's CPU clock for pure-Python ones (see nodes/skills.py).

    A pure-Python skill runs one item at a time in a worker thread, which cancelling
    the awaiting task cannot stop; so the thread checks, between items, whether the
    batch was given up (its budget ran out, its node timed out, the run was
    cancelled) and stops there, instead of computing on, and on retry in parallel
    with its own next attempt, holding the thread's lock until the process exits."""
    if inspect.iscoroutinefunction(skill.process):
        started = time.perf_counter()
        outputs = await cast(Awaitable[list[Any]], skill.process(items, params, model))
        return outputs, time.perf_counter() - started

    given_up = threading.Event()

    def work() -> tuple[list[Any], float]:
        started = time.thread_time()
        outputs: list[Any] = []
        for item in items:
            if given_up.is_set():
                raise SkillStoppedError()
            outputs += cast(list[Any], skill.process([item], params, model))
        return outputs, time.thread_time() - started

    try:
        return await asyncio.to_thread(work)
    finally:
        given_up.set()


def _progress(runtime: Runtime[AgentContext], run: ScenarioRun, batch: int) -> None:
    runtime.stream_writer(
        {
            "node": "run_batch",
            "scenario": run["name"],
            "batch": batch,
            "items_done": run["items_done"],
            "size": run["size"],
            "pct": round(100 * run["items_done"] / run["size"], 1),
            "elapsed_ms": run["elapsed_ms"],
            "status": run["status"],
        }
    )


async def run_batch(task: PhaseTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Process the scenario's next batch, within what is left of its time budget."""
    run, skill = task["run"], resolve_skill(task["skill"])
    start = run["items_done"]
    end = min(start + run["batch_size"], task["target"])
    index = run["batch_count"]
    spec_json = json.dumps(input_spec(run), sort_keys=True)
    # Copies: a skill may change its items, and the cached list serves every batch.
    items = copy.deepcopy(list(scenario_items(task["skill"], spec_json)[start:end]))
    params = skill.params_model.model_validate(task["params"])
    context = agent_context(runtime)
    model = context.models.get(skill.name, context.model)
    remaining_s = run["budget_s"] - run["elapsed_ms"] / 1000
    started = time.perf_counter()
    try:
        async with asyncio.timeout(remaining_s) as budget:
            outputs, work_s = await timed_process(skill, items, params, model)
    except TimeoutError:
        if not budget.expired():
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        stopped = ScenarioRun(
            **{
                **run,
                "status": "timed_out",
                "elapsed_ms": round(run["elapsed_ms"] + elapsed_ms, 3),
                "errors": [
                    *run["errors"],
                    f"batch {index}: over the {run['budget_s']:g}s budget after {start} items",
                ],
            }
        )
        _progress(runtime, stopped, index)
        return {"run": stopped}
    elapsed_ms = (time.perf_counter() - started) * 1000
    batch = BatchRecord(
        index=index,
        start=start,
        end=end,
        elapsed_ms=round(elapsed_ms, 3),
        work_ms=round(work_s * 1000, 3),
        attempts=node_attempt(runtime),
        metrics=skill.score(items, outputs),
    )
    done = ScenarioRun(
        **{
            **run,
            "status": "done" if end >= run["size"] else "running",
            "items_done": end,
            "elapsed_ms": round(run["elapsed_ms"] + batch["elapsed_ms"], 3),
            "work_ms": round(run["work_ms"] + batch["work_ms"], 3),
            "batch_count": index + 1,
        }
    )
    _progress(runtime, done, index)
    return {"run": done, "phase_batches": [batch]}


def next_batch(task: PhaseTask) -> str:
    """The next batch, until the sync point's target, or its deadline: a scenario behind
    then stops between two batches, and the others go on (it carries on from here in the
    next phase)."""
    run, deadline = task["run"], task.get("deadline")
    short = run["status"] == "running" and run["items_done"] < task["target"]
    past_deadline = deadline is not None and time.time() >= deadline
    return "run_batch" if short and not past_deadline else END


def batch_failed(task: PhaseTask, error: NodeError) -> Command[Any]:
    """Retries are exhausted: the scenario stops as failed and keeps its finished batches."""
    run = task["run"]
    failed = ScenarioRun(
        **{
            **run,
            "status": "failed",
            "errors": [
                *run["errors"],
                f"batch {run['batch_count']}: {describe_error(error.error)}",
            ],
        }
    )
    return Command(update={"run": failed}, goto=END)


RunPhase = Callable[[PhaseTask, Runtime[AgentContext]], Awaitable[dict[str, Any]]]


def phase_runner(phase: CompiledStateGraph[Any, Any, Any, Any]) -> RunPhase:
    """The parent node that runs one scenario's phase subgraph. The subgraph checkpoints
    after every batch in its own namespace; after a crash or a retry it continues from
    its last finished batch. Its progress events are passed on to the parent's stream."""

    async def run_phase(task: PhaseTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        final: dict[str, Any] = {}
        async for mode, chunk in phase.astream(
            task, context=runtime.context, stream_mode=["custom", "values"]
        ):
            if mode == "custom":
                runtime.stream_writer(chunk)
            else:
                final = cast(dict[str, Any], chunk)
        run: ScenarioRun = final["run"]
        return {"runs": {run["name"]: run}, "batches": {run["name"]: final["phase_batches"]}}

    return run_phase


# --- sync points ----------------------------------------------------------------------


def quality(batches: list[BatchRecord]) -> dict[str, float]:
    """Batch metrics combined by an item-weighted mean."""
    totals: dict[str, float] = {}
    items = 0
    for batch in batches:
        count = batch["end"] - batch["start"]
        items += count
        for metric, value in batch["metrics"].items():
            totals[metric] = totals.get(metric, 0.0) + value * count
    return {metric: round(total / items, 4) for metric, total in totals.items()} if items else {}


def snapshot(run: ScenarioRun, batches: list[BatchRecord], *, late: bool) -> ScenarioSnapshot:
    return ScenarioSnapshot(
        status=run["status"],
        items_done=run["items_done"],
        pct=round(100 * run["items_done"] / run["size"], 1),
        elapsed_ms=run["elapsed_ms"],
        quality=quality(batches),
        late=late,
    )


def milestone_sync(state: ScenariosState, runtime: Runtime[AgentContext]) -> Command[Any]:
    """Every live scenario reached this sync point (or stopped): record where each stands,
    then release them towards the next one."""
    phase, now = state["phase"], time.time()
    record = MilestoneRecord(
        index=phase,
        label=phase_label(state, phase),
        at_ms=round((now - state["started_at"]) * 1000, 1),
        scenarios={
            name: snapshot(
                run,
                state.get("batches", {}).get(name, []),
                late=run["status"] == "running"
                and run["items_done"] < phase_target(state, run, phase),
            )
            for name, run in state["runs"].items()
        },
    )
    late = [name for name, s in record["scenarios"].items() if s["late"]]
    runtime.stream_writer(
        {"node": "milestone_sync", "milestone": record["label"], "index": phase, "late": late}
    )
    if all_failed(state) and not state.get("auto_retried"):
        # Every scenario failed: once, all go on again with half their batch size, in
        # case the batches were what broke them; a second time the run ends with a
        # diagnosis (`aggregate`).
        retry = {
            name: ScenarioRun(
                **{**run, "status": "running", "batch_size": max(1, run["batch_size"] // 2)}
            )
            for name, run in state["runs"].items()
        }
        again = resumed_from(state, retry, now)
        retried = cast(ScenariosState, {**state, **again, "runs": {**state["runs"], **retry}})
        return Command(
            update={**again, "runs": retry, "auto_retried": True, "timeline": [record]},
            goto=dispatch_phase(retried),
        )
    deadline = sync_deadline(state, phase + 1, now)
    advanced: ScenariosState = {**state, "phase": phase + 1, "phase_deadline": deadline}
    return Command(
        update={"phase": phase + 1, "phase_deadline": deadline, "timeline": [record]},
        goto=dispatch_phase(advanced),
    )


def all_failed(state: ScenariosState) -> bool:
    return all(run["status"] == "failed" for run in state["runs"].values())


# --- aggregation ----------------------------------------------------------------------


def scenario_summary(run: ScenarioRun, batches: list[BatchRecord]) -> dict[str, Any]:
    items = run["items_done"]
    return {
        "status": run["status"],
        "size": run["size"],
        "items_processed": items,
        "batches": run["batch_count"],
        "elapsed_ms": run["elapsed_ms"],
        "work_ms": run["work_ms"],
        "ms_per_item": round(run["work_ms"] / items, 4) if items else None,
        "quality": quality(batches),
        "errors": run["errors"],
    }


def growth_class(exponent: float) -> Literal["sublinear", "linear", "superlinear"]:
    """Total time ~ n^exponent: time per item rising with size is superlinear."""
    if exponent > 1 + LINEAR_TOLERANCE:
        return "superlinear"
    if exponent < 1 - LINEAR_TOLERANCE:
        return "sublinear"
    return "linear"


def scaling(summaries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Time per item of each scenario relative to the simplest (smallest) one that did work,
    and the growth exponent it implies."""
    measured = {n: s for n, s in summaries.items() if s["ms_per_item"]}
    if not measured:
        return {}
    base_name = min(measured, key=lambda n: measured[n]["size"])
    base = measured[base_name]
    result: dict[str, dict[str, Any]] = {}
    for name, summary in measured.items():
        size_ratio = summary["size"] / base["size"]
        relative = summary["ms_per_item"] / base["ms_per_item"]
        row: dict[str, Any] = {
            "relative_to": base_name,
            "size_ratio": round(size_ratio, 3),
            "relative_time_per_item": round(relative, 3),
        }
        if name == base_name or size_ratio == 1:
            row |= {"exponent": None, "class": "baseline" if name == base_name else "same size"}
        else:
            exponent = 1 + math.log(relative) / math.log(size_ratio)
            row |= {"exponent": round(exponent, 2), "class": growth_class(exponent)}
        result[name] = row
    return result


def quality_ranking(summaries: dict[str, dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    scored = [(n, s["quality"].get(metric)) for n, s in summaries.items()]
    ranked = sorted(scored, key=lambda pair: (pair[1] is None, -(pair[1] or 0.0)))
    return [{"scenario": name, metric: value} for name, value in ranked]


def recommendations(
    summaries: dict[str, dict[str, Any]],
    growth: dict[str, dict[str, Any]],
    ranking: list[dict[str, Any]],
    metric: str,
    *,
    efficiency: float,
    sync: str,
) -> list[str]:
    advice: list[str] = []
    for name, s in summaries.items():
        if s["status"] == "failed":
            last = s["errors"][-1] if s["errors"] else "unknown error"
            advice.append(
                f"{name} failed after {s['items_processed']}/{s['size']} items ({last}); "
                "fix that before comparing it."
            )
        elif s["status"] == "timed_out":
            if s["items_processed"]:
                need_s = s["elapsed_ms"] / s["items_processed"] * s["size"] / 1000 * 1.2
                advice.append(
                    f"{name} ran out of its time budget at {s['items_processed']}/{s['size']} "
                    f"items; a budget of about {need_s:.0f}s would let it finish."
                )
            else:
                advice.append(f"{name} finished no batch within its time budget; raise it.")
    for name, row in growth.items():
        if row["class"] == "superlinear":
            advice.append(
                f"{name}: time per item is {row['relative_time_per_item']:.1f}x "
                f"{row['relative_to']}'s at {row['size_ratio']:g}x the size (total time "
                f"~n^{row['exponent']:.1f}); split the work into smaller independent pieces "
                "or use a cheaper algorithm before scaling up."
            )
        elif row["class"] == "sublinear":
            advice.append(
                f"{name}: time per item falls with size (~n^{row['exponent']:.1f}), so fixed "
                "overhead dominates small runs; bigger batches pay off."
            )
    if growth and all(r["class"] in ("baseline", "same size", "linear") for r in growth.values()):
        advice.append("cost grows linearly with size: time per item is a safe planning figure.")
    values = [r[metric] for r in ranking if r[metric] is not None]
    if len(values) > 1 and values[0] - values[-1] > QUALITY_GAP:
        advice.append(
            f"{metric} falls from {ranking[0]['scenario']} ({values[0]:.2f}) to "
            f"{ranking[len(values) - 1]['scenario']} ({values[-1]:.2f}); the harder inputs "
            "need a stronger model or different params."
        )
    if sync != "free" and len(summaries) > 1 and efficiency < len(summaries) / 2:
        advice.append(
            f"parallel efficiency is {efficiency:.2f} of a possible {len(summaries)}: scenarios "
            "spent much of the run waiting at sync points; sync=free finishes sooner."
        )
    return advice


def aggregate(state: ScenariosState) -> dict[str, Any]:
    """Per-scenario results, quality ranking, scaling, parallel efficiency, advice."""
    metric = resolve_skill(state["skill"]).primary_metric
    summaries = {
        name: scenario_summary(run, state.get("batches", {}).get(name, []))
        for name, run in state["runs"].items()
    }
    wall_ms = round((time.time() - state["started_at"]) * 1000, 1)
    efficiency = round(sum(s["elapsed_ms"] for s in summaries.values()) / wall_ms, 3)
    growth = scaling(summaries)
    ranking = quality_ranking(summaries, metric)
    diagnosis = (
        [
            f"{name}: failed at batch {run['batch_count']} after {run['items_done']} of "
            f"{run['size']} items: {run['errors'][-1] if run['errors'] else 'no error recorded'}"
            for name, run in state["runs"].items()
        ]
        if all_failed(state)
        else []
    )
    return {
        "aggregate": {
            "skill": state["skill"],
            "sync": state["sync"],
            # every scenario failed, again after a retry with smaller batches: why, where
            "aborted": bool(diagnosis),
            "diagnosis": diagnosis,
            "scenarios": summaries,
            "quality_metric": metric,
            "quality_ranking": ranking,
            "scaling": growth,
            "wall_ms": wall_ms,
            "parallel_efficiency": efficiency,
            "recommendations": recommendations(
                summaries, growth, ranking, metric, efficiency=efficiency, sync=state["sync"]
            ),
            "timeline": [
                {"label": m["label"], "at_ms": m["at_ms"], "scenarios": m["scenarios"]}
                for m in state.get("timeline", [])
            ],
        }
    }


def scenarios_report(values: dict[str, Any]) -> WorkerReport:
    """A nested scenarios run's ranking and outcomes, as its worker's report."""
    aggregate = values.get("aggregate") or {}
    summaries = aggregate.get("scenarios", {})
    ranking = aggregate.get("quality_ranking", [])
    best = ranking[0]["scenario"] if ranking else "none"
    advice = " ".join(aggregate.get("recommendations", [])[:2])
    summary = (
        f"{len(summaries)} scenarios of {aggregate.get('skill', '?')}; best by "
        f"{aggregate.get('quality_metric', 'quality')}: {best}. {advice}"
    )
    findings = [
        Finding(
            topic=cut_at_word(f"scenario {name}", 60),
            claim=cut_at_word(
                f"{s['status']}: {s['items_processed']} of {s['size']} items in "
                f"{s['elapsed_ms']:.0f} ms",
                200,
            ),
        )
        for name, s in summaries.items()
    ]
    done = sum(1 for s in summaries.values() if s["status"] == "done")
    return WorkerReport(
        summary=cut_at_word(summary.strip(), 1_000),
        findings=findings[:MAX_FINDINGS],
        confidence=round(done / len(summaries), 2) if summaries else 0.0,
    )


def scenario_agents(values: dict[str, Any]) -> int:
    """A scenarios run's agents: one per scenario."""
    return len(values["scenarios"])
