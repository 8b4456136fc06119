"""The supervisor pattern: a planner splits a task into batches of workers that run in
parallel (`Send`), later batches see earlier results, conflicts between workers are
resolved, and a synthesiser writes the structured result.

    open_supervisor -> plan_work -> review_plan
      -> [run_worker x batch] -> collect_batch -> ... next batch
              | retries exhausted          ^
              v                            |
         run_fallback ---------------------+
      ... -> detect_conflicts -> [resolve_conflict x conflict] -> synthesize

Each worker attempt has a timeout; transient errors are retried with backoff by the
node's `RetryPolicy`; when retries run out the node's error handler sends the work
to a fallback worker; if that fails too the failure is recorded and the siblings'
results are kept. `collect_batch` is the batch barrier: it moves on only once every
worker of the batch has a result, so it also waits for fallbacks.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer, RetryPolicy

from nodes.context import AgentContext, graph_defaults, with_default_context
from nodes.supervisor import (
    after_review,
    check_workers,
    collect_batch,
    detect_conflicts,
    fallback_failed,
    open_supervisor,
    plan_review_answer,
    plan_work,
    resolve_conflict,
    review_plan,
    route_conflicts,
    run_fallback,
    run_worker,
    synthesize,
    worker_failed,
)
from state.common import RoleModel
from state.supervisor import SupervisorInput, SupervisorOptions, SupervisorState

NAME = "supervisor"


def build(
    *,
    checkpointer: Checkpointer = None,
    model: BaseChatModel | None = None,
    defaults: AgentContext | None = None,
    worker_timeout_s: float = 300.0,
    max_attempts: int = 3,
    backoff_s: float = 1.0,
    agent_timeout_s: float = 600.0,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the supervisor graph.

    `model` (or `context=AgentContext(...)` at invoke time) supplies the chat model;
    `worker_timeout_s` caps one worker attempt, `max_attempts` counts attempts per
    worker before the fallback takes over, `backoff_s` is the first retry delay.
    """
    default = graph_defaults(model, defaults)
    retry = RetryPolicy(max_attempts=max_attempts, initial_interval=backoff_s, jitter=False)
    agent_retry = RetryPolicy(max_attempts=2, initial_interval=backoff_s, jitter=False)

    builder = StateGraph(
        SupervisorState,
        context_schema=AgentContext,
        input_schema=SupervisorInput,
        output_schema=SupervisorState,
    )
    builder.add_node("open_supervisor", open_supervisor)
    builder.add_node(
        "plan_work",
        with_default_context(plan_work, default),
        retry_policy=agent_retry,
        timeout=agent_timeout_s,
    )
    builder.add_node("review_plan", review_plan)
    builder.add_node(
        "run_worker",
        with_default_context(run_worker, default),
        retry_policy=retry,
        timeout=worker_timeout_s,
        error_handler=worker_failed,
        destinations=("run_fallback",),
    )
    builder.add_node(
        "run_fallback",
        with_default_context(run_fallback, default),
        retry_policy=retry,
        timeout=worker_timeout_s,
        error_handler=fallback_failed,
        destinations=("collect_batch",),
    )
    builder.add_node(
        "collect_batch", collect_batch, destinations=("run_worker", "detect_conflicts")
    )
    builder.add_node(
        "detect_conflicts",
        with_default_context(detect_conflicts, default),
        retry_policy=agent_retry,
        timeout=agent_timeout_s,
    )
    builder.add_node(
        "resolve_conflict",
        with_default_context(resolve_conflict, default),
        retry_policy=agent_retry,
        timeout=agent_timeout_s,
    )
    builder.add_node(
        "synthesize",
        with_default_context(synthesize, default),
        retry_policy=agent_retry,
        timeout=agent_timeout_s,
    )

    builder.add_edge(START, "open_supervisor")
    builder.add_edge("open_supervisor", "plan_work")
    builder.add_edge("plan_work", "review_plan")
    builder.add_conditional_edges(
        "review_plan", after_review, ["run_worker", "detect_conflicts", END]
    )
    builder.add_edge("run_worker", "collect_batch")
    builder.add_edge("run_fallback", "collect_batch")
    builder.add_conditional_edges(
        "detect_conflicts", route_conflicts, ["resolve_conflict", "synthesize"]
    )
    builder.add_edge("resolve_conflict", "synthesize")
    builder.add_edge("synthesize", END)
    return builder.compile(checkpointer=checkpointer, name=NAME)


def role_models(values: dict[str, Any]) -> list[RoleModel]:
    """Models the input picks per worker (`worker:<name>`)."""
    return [
        RoleModel(f"worker:{w['name']}", f"workers.{index}.model", w["model"])
        for index, w in enumerate(values.get("workers", []))
        if w.get("model")
    ]


check_input = check_workers
Input = SupervisorInput
Options = SupervisorOptions
ANSWERS = {"plan_review": plan_review_answer}
graph = build()
