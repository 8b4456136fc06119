"""Bare LangGraph graphs of the same shape as the patterns: same nodes, same `Send`
fan-out, same model calls, but no wrappers, validation, retries, timeouts or tracing.
They are the baseline the overhead benchmark divides by."""

from __future__ import annotations

import json
import math
import operator
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, Command, Send

from mas_graphs.nodes import prompts
from mas_graphs.nodes.context import AgentContext
from mas_graphs.nodes.debate import round_message
from mas_graphs.nodes.orders import order_saga
from mas_graphs.nodes.saga import EffectCall, _thread_id
from mas_graphs.nodes.skills import resolve_skill


class BareState(TypedDict, total=False):
    task: str
    workers: list[dict[str, Any]]
    batches: list[list[str]]
    batch_index: int
    results: Annotated[dict[str, Any], operator.or_]
    conflicts: list[dict[str, Any]]
    resolutions: Annotated[list[dict[str, Any]], operator.add]
    synthesis: dict[str, Any]


def bare_supervisor(
    model: BaseChatModel, checkpointer: Checkpointer = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    async def ask(system: str, user: str) -> Any:
        reply = await model.ainvoke([SystemMessage(system), HumanMessage(user)])
        return json.loads(reply.text)

    async def plan_work(state: BareState) -> dict[str, Any]:
        plan = await ask(prompts.PLANNER, prompts.planner_message(state["workers"], state["task"]))
        deps = {s["worker"]: set(s["depends_on"]) for s in plan["steps"]}
        batches, done = [], set()
        while len(done) < len(deps):
            ready = [w for w, d in deps.items() if w not in done and d <= done]
            batches.append(ready)
            done.update(ready)
        return {"batches": batches, "batch_index": 0}

    def review_plan(state: BareState) -> dict[str, Any]:
        return {}

    def dispatch(state: BareState) -> Any:
        if state["batch_index"] >= len(state["batches"]):
            return "detect_conflicts"
        roles = {w["name"]: w["role"] for w in state["workers"]}
        return [
            Send("run_worker", {"task": state["task"], "name": n, "role": roles[n]})
            for n in state["batches"][state["batch_index"]]
        ]

    async def run_worker(task: dict[str, Any]) -> dict[str, Any]:
        message = prompts.worker_message(
            name=task["name"],
            role=task["role"],
            task=task["task"],
            context=[],
            tools=[],
            observations=[],
        )
        return {"results": {task["name"]: await ask(prompts.WORKER, message)}}

    def collect_batch(state: BareState) -> Command[Any]:
        advanced = {**state, "batch_index": state["batch_index"] + 1}
        return Command(update={"batch_index": advanced["batch_index"]}, goto=dispatch(advanced))  # type: ignore[arg-type]

    async def detect_conflicts(state: BareState) -> dict[str, Any]:
        scan = await ask(prompts.CONFLICT_DETECTOR, json.dumps(state["results"]))
        return {"conflicts": scan["conflicts"]}

    def route(state: BareState) -> Any:
        return [Send("resolve_conflict", c) for c in state["conflicts"]] or "synthesize"

    def resolve_conflict(conflict: dict[str, Any]) -> dict[str, Any]:
        return {"resolutions": [conflict]}

    async def synthesize(state: BareState) -> dict[str, Any]:
        return {"synthesis": await ask(prompts.SYNTHESIZER, json.dumps(state["results"]))}

    builder = StateGraph(BareState)
    builder.add_node(plan_work)
    builder.add_node(review_plan)
    builder.add_node("run_worker", run_worker)  # type: ignore[call-overload]
    builder.add_node(collect_batch, destinations=("run_worker", "detect_conflicts"))
    builder.add_node(detect_conflicts)
    builder.add_node("resolve_conflict", resolve_conflict)  # type: ignore[call-overload]
    builder.add_node(synthesize)
    builder.add_edge(START, "plan_work")
    builder.add_edge("plan_work", "review_plan")
    builder.add_conditional_edges("review_plan", dispatch, ["run_worker", "detect_conflicts"])
    builder.add_edge("run_worker", "collect_batch")
    builder.add_conditional_edges("detect_conflicts", route, ["resolve_conflict", "synthesize"])
    builder.add_edge("resolve_conflict", "synthesize")
    builder.add_edge("synthesize", END)
    return builder.compile(checkpointer=checkpointer, name="bare_supervisor")


# --- debate -------------------------------------------------------------------------------


class BareDebateState(TypedDict, total=False):
    question: str
    stances: list[dict[str, Any]]
    rounds: int
    round: int
    stopped: bool
    transcript: Annotated[list[dict[str, Any]], operator.add]
    verdict: dict[str, Any]


def bare_debate(
    model: BaseChatModel, checkpointer: Checkpointer = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """open -> gate -> [argue x debaters] -> review_round ... -> judge -> conclude."""

    async def ask(system: str, user: str) -> Any:
        reply = await model.ainvoke([SystemMessage(system), HumanMessage(user)])
        return json.loads(reply.text)

    def open_debate(state: BareDebateState) -> dict[str, Any]:
        return {"round": 0}

    def confidence_gate(state: BareDebateState) -> dict[str, Any]:
        return {}

    def dispatch(state: BareDebateState, number: int) -> list[Send]:
        previous = [t for t in state.get("transcript", []) if t["round"] == number - 1]
        return [
            Send(
                "argue",
                {
                    "question": state["question"],
                    "debater": d,
                    "stances": state["stances"],
                    "round": number,
                    "rounds": state["rounds"],
                    "opponents": [t for t in previous if t["speaker"] != d["name"]],
                    "own_previous": next((t for t in previous if t["speaker"] == d["name"]), None),
                    "kind": "sides",
                },
            )
            for d in state["stances"]
        ]

    async def argue(task: dict[str, Any]) -> dict[str, Any]:
        reply = await ask(prompts.DEBATER, round_message(task))  # type: ignore[arg-type]
        name = task["debater"]["name"]
        position = name if not reply.get("conceded") else task["opponents"][0]["speaker"]
        turn = {
            "round": task["round"],
            "speaker": name,
            "status": "ok",
            "position": position,
            "answer": None,
            **reply,
        }
        return {"transcript": [turn]}

    def review_round(state: BareDebateState) -> dict[str, Any]:
        number = state["round"] + 1
        turns = [t for t in state["transcript"] if t["round"] == number]
        converged = len({t["position"] for t in turns}) == 1
        return {"round": number, "stopped": number >= state["rounds"] or converged}

    def after_round(state: BareDebateState) -> Any:
        return "judge_verdict" if state.get("stopped") else dispatch(state, state["round"] + 1)

    async def judge_verdict(state: BareDebateState) -> dict[str, Any]:
        text = json.dumps(state["transcript"])
        return {"verdict": await ask(prompts.JUDGE, f"{state['question']}\n{text}")}

    def conclude(state: BareDebateState) -> dict[str, Any]:
        return {}

    builder = StateGraph(BareDebateState)
    builder.add_node(open_debate)
    builder.add_node(confidence_gate)
    builder.add_node("argue", argue)  # type: ignore[call-overload]
    builder.add_node(review_round)
    builder.add_node(judge_verdict)
    builder.add_node(conclude)
    builder.add_edge(START, "open_debate")
    builder.add_edge("open_debate", "confidence_gate")
    builder.add_conditional_edges("confidence_gate", lambda s: dispatch(s, 1), ["argue"])
    builder.add_edge("argue", "review_round")
    builder.add_conditional_edges("review_round", after_round, ["argue", "judge_verdict"])
    builder.add_edge("judge_verdict", "conclude")
    builder.add_edge("conclude", END)
    return builder.compile(checkpointer=checkpointer, name="bare_debate")


# --- scenarios ----------------------------------------------------------------------------


class BarePhase(TypedDict):
    skill: str
    params: dict[str, Any]
    run: dict[str, Any]
    target: int


class BareScenariosState(TypedDict, total=False):
    skill: str
    params: dict[str, Any]
    base_size: int
    scenarios: list[dict[str, Any]]
    milestones: list[float]
    runs: Annotated[dict[str, Any], operator.or_]
    phase: int
    summary: dict[str, Any]


def bare_scenarios(checkpointer: Checkpointer = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """start -> [run_phase x scenario: a subgraph of batches] -> milestone_sync ... ->
    aggregate, milestone sync points, the same skill calls per batch."""

    async def run_batch(task: BarePhase) -> dict[str, Any]:
        run, skill = task["run"], resolve_skill(task["skill"])
        start = run["done"]
        end = min(start + run["batch_size"], task["target"])
        spec = {"scenario": run["name"], "size": run["size"], "difficulty": 0.0}
        items = skill.make_inputs({**spec, "characteristics": {}, "seed": 0})[start:end]  # type: ignore[typeddict-item]
        params = skill.params_model.model_validate(task["params"])
        outputs = await skill.process(items, params, None)
        metrics = skill.score(items, outputs)
        return {"run": {**run, "done": end, "batches": [*run["batches"], metrics]}}

    def next_batch(task: BarePhase) -> str:
        return "run_batch" if task["run"]["done"] < task["target"] else END

    phase_builder = StateGraph(BarePhase)
    phase_builder.add_node("run_batch", run_batch)  # type: ignore[call-overload]
    phase_builder.add_edge(START, "run_batch")
    phase_builder.add_conditional_edges("run_batch", next_batch, ["run_batch", END])
    phase = phase_builder.compile(name="bare_phase")

    def start_scenarios(state: BareScenariosState) -> dict[str, Any]:
        runs = {
            s["name"]: {
                "name": s["name"],
                "size": max(1, math.ceil(state["base_size"] * s["scale"] - 1e-9)),
                "batch_size": s["batch_size"],
                "done": 0,
                "batches": [],
            }
            for s in state["scenarios"]
        }
        return {"runs": runs, "phase": 0}

    def target(state: BareScenariosState, run: dict[str, Any]) -> int:
        return min(run["size"], math.ceil(state["milestones"][state["phase"]] * run["size"] - 1e-9))

    def dispatch(state: BareScenariosState) -> Any:
        if state["phase"] >= len(state["milestones"]):
            return "aggregate"
        sends = [
            Send(
                "run_phase",
                {
                    "skill": state["skill"],
                    "params": state["params"],
                    "run": r,
                    "target": target(state, r),
                },
            )
            for r in state["runs"].values()
            if r["done"] < target(state, r)
        ]
        return sends or "milestone_sync"

    async def run_phase(task: BarePhase) -> dict[str, Any]:
        final = await phase.ainvoke(task)
        return {"runs": {final["run"]["name"]: final["run"]}}

    def milestone_sync(state: BareScenariosState) -> Command[Any]:
        advanced = {**state, "phase": state["phase"] + 1}
        return Command(update={"phase": advanced["phase"]}, goto=dispatch(advanced))  # type: ignore[arg-type]

    def aggregate(state: BareScenariosState) -> dict[str, Any]:
        return {"summary": {name: len(r["batches"]) for name, r in state["runs"].items()}}

    builder = StateGraph(BareScenariosState)
    builder.add_node(start_scenarios)
    builder.add_node("run_phase", run_phase)  # type: ignore[call-overload]
    builder.add_node(milestone_sync, destinations=("run_phase", "milestone_sync", "aggregate"))
    builder.add_node(aggregate)
    builder.add_edge(START, "start_scenarios")
    builder.add_conditional_edges(
        "start_scenarios", dispatch, ["run_phase", "milestone_sync", "aggregate"]
    )
    builder.add_edge("run_phase", "milestone_sync")
    builder.add_edge("aggregate", END)
    return builder.compile(checkpointer=checkpointer, name="bare_scenarios")


# --- saga ---------------------------------------------------------------------------------


class BareSagaState(TypedDict, total=False):
    order: dict[str, Any]
    effects: Annotated[dict[str, Any], operator.or_]


def bare_saga(checkpointer: Checkpointer = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """open_saga -> risk_check -> reserve_inventory -> charge_payment -> schedule_shipping
    -> finish_saga, each step the same effect function (same SQL, same model call) with
    no retries, timeouts, step log or progress events. Needs context=AgentContext(db=...)."""
    saga = order_saga(max_attempts=1, backoff_s=0.0, step_timeout_s=30.0, agent_timeout_s=30.0)

    async def open_saga(state: BareSagaState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        await saga.prepare(runtime, _thread_id(runtime), saga.saga_id(state))
        return {}

    def step_node(step: Any) -> Any:
        async def run(state: BareSagaState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
            thread_id, saga_id = _thread_id(runtime), saga.saga_id(state)
            key = f"{saga_id}:{step.name}:action"
            call = EffectCall(
                thread_id, saga_id, step.name, step.name, "action", key, state, runtime
            )  # type: ignore[arg-type]
            outcome = await step.action(call)
            return {"effects": {step.name: outcome.detail}}

        return run

    def finish_saga(state: BareSagaState) -> dict[str, Any]:
        return {}

    builder = StateGraph(BareSagaState, context_schema=AgentContext)
    builder.add_node("open_saga", open_saga)
    previous = "open_saga"
    builder.add_edge(START, previous)
    for step in saga.steps:
        builder.add_node(step.name, step_node(step))
        builder.add_edge(previous, step.name)
        previous = step.name
    builder.add_node("finish_saga", finish_saga)
    builder.add_edge(previous, "finish_saga")
    builder.add_edge("finish_saga", END)
    return builder.compile(checkpointer=checkpointer, name="bare_saga")
