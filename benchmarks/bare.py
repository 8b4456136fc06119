"""Bare LangGraph graphs of the same shape as the patterns: same nodes, same `Send`
fan-out, same model calls, but no wrappers, validation, retries, timeouts or tracing.
They are the baseline the overhead benchmark divides by."""

from __future__ import annotations

import json
import operator
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer, Command, Send

from nodes.agents import worker_prompt
from nodes.supervisor import planner_prompt


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
        plan = await ask(planner_prompt(state["workers"]), state["task"])
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
        return {"results": {task["name"]: await ask(worker_prompt(task["role"]), task["task"])}}

    def collect_batch(state: BareState) -> Command[Any]:
        advanced = {**state, "batch_index": state["batch_index"] + 1}
        return Command(update={"batch_index": advanced["batch_index"]}, goto=dispatch(advanced))  # type: ignore[arg-type]

    async def detect_conflicts(state: BareState) -> dict[str, Any]:
        scan = await ask("compare the workers' reports", json.dumps(state["results"]))
        return {"conflicts": scan["conflicts"]}

    def route(state: BareState) -> Any:
        return [Send("resolve_conflict", c) for c in state["conflicts"]] or "synthesize"

    def resolve_conflict(conflict: dict[str, Any]) -> dict[str, Any]:
        return {"resolutions": [conflict]}

    async def synthesize(state: BareState) -> dict[str, Any]:
        return {"synthesis": await ask("team's final answer", json.dumps(state["results"]))}

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
