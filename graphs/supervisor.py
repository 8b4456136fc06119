"""The supervisor pattern: a planner splits a task into batches of workers that run in
parallel (`Send`), later batches see earlier results, conflicts between workers are
resolved, and a synthesiser writes the structured result.

    open_supervisor -> plan_work (planning "planner") -> review_plan (review_plan)
      -> [run_worker | run_team  x batch] -> collect_batch -> ... next batch
           |  |  retries spent                ^   |
           |  +--> run_fallback --------------+   +-> replan_work -> next batch
           +--> critique_report <-> revise_report (revise_rounds)
      ... -> detect_conflicts (conflict_scan) -> [resolve_conflict x conflict] -> synthesize
      -> [critique_synthesis <-> revise_synthesis] -> review_synthesis (escalate_below) -> END
                                                      | a person asks for a re-run
                                                      +-> [run_worker | run_team ...]

A step in parentheses runs only when that input asks for it.

A worker is a role agent or a registered agent (`run_worker`), or a whole pattern run
as a nested graph (`run_team`, checkpointed in the worker's namespace of this thread).
Each worker attempt has a timeout; transient errors are retried with backoff by the
node's `RetryPolicy` (a team retries inside its own run, so `run_team` has none);
when retries run out the node's error handler sends the work to a fallback worker,
or, with `on_worker_failure: "replan"`, records the failure for the planner to
replan around. `collect_batch` is the batch barrier: it moves on only once every
worker of the batch has a final result, so it also waits for fallbacks and critic
rounds. Model calls in flight are capped run-wide by `max_parallel`.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer, RetryPolicy

from mas_graphs.graphs.views.supervisor import VIEW
from mas_graphs.nodes.context import AgentContext, graph_defaults, with_default_context
from mas_graphs.nodes.supervisor import (
    after_opening,
    after_planning,
    after_review,
    check_workers,
    collect_batch,
    critique_report,
    critique_synthesis,
    detect_conflicts,
    fallback_failed,
    open_supervisor,
    plan_review_answer,
    plan_work,
    replan_work,
    resolve_conflict,
    review_failed,
    review_plan,
    review_synthesis,
    revise_report_node,
    revise_synthesis,
    route_conflicts,
    run_fallback,
    run_worker,
    synthesis_review_answer,
    synthesize,
    worker_failed,
)
from mas_graphs.nodes.teams import run_team, supervisor_report
from mas_graphs.state.common import ModelPick
from mas_graphs.state.pattern import PATTERNS, PatternSpec, TeamRole
from mas_graphs.state.supervisor import (
    SupervisorInput,
    SupervisorOptions,
    SupervisorState,
    share_budgets,
    supervisor_agents,
    supervisor_levels,
)


def build(
    options: SupervisorOptions = SupervisorOptions(),
    *,
    checkpointer: Checkpointer = None,
    model: BaseChatModel | None = None,
    defaults: AgentContext | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the supervisor graph with `options` (timeouts and retries, see
    `SupervisorOptions`).

    `model` (or `context=AgentContext(...)` at invoke time) supplies the chat model.
    """
    default = graph_defaults(model, defaults)
    backoff_s = options.backoff_s
    retry = RetryPolicy(max_attempts=options.max_attempts, initial_interval=backoff_s, jitter=False)
    agent_retry = RetryPolicy(max_attempts=2, initial_interval=backoff_s, jitter=False)
    worker_timeout_s, agent_timeout_s = options.worker_timeout_s, options.agent_timeout_s
    workers = ("run_worker", "run_team")
    after_batches = ("detect_conflicts", "synthesize")

    def agent_node(node: Any) -> Any:
        return with_default_context(node, default)

    builder = StateGraph(
        SupervisorState,
        context_schema=AgentContext,
        input_schema=SupervisorInput,
        output_schema=SupervisorState,
    )

    def own_agent(name: str, node: Any, *destinations: str, **extra: Any) -> None:
        """One of the supervisor's own agents: two attempts, each within its timeout."""
        builder.add_node(
            name,
            agent_node(node),
            retry_policy=agent_retry,
            timeout=agent_timeout_s,
            destinations=destinations or None,
            **extra,
        )

    def worker_step(name: str, node: Any, failed: Any, *destinations: str) -> None:
        """Work done for a worker: its retries and timeout, then `failed` records why."""
        builder.add_node(
            name,
            agent_node(node),
            retry_policy=retry,
            timeout=worker_timeout_s,
            error_handler=failed,
            destinations=destinations,
        )

    builder.add_node("open_supervisor", agent_node(open_supervisor))
    own_agent("plan_work", plan_work)
    builder.add_node("review_plan", review_plan)
    worker_step(
        "run_worker", run_worker, worker_failed, "collect_batch", "critique_report", "run_fallback"
    )
    # No retry policy: LangGraph's retry re-enters a nested graph in a fresh namespace
    # (the attempt's subgraph counter is not reset), which would run the team again
    # from the start; a team retries inside its own run instead.
    builder.add_node(
        "run_team",
        agent_node(run_team),
        timeout=options.team_timeout_s,
        error_handler=worker_failed,
        destinations=("collect_batch", "run_fallback"),
    )
    worker_step("run_fallback", run_fallback, fallback_failed, "collect_batch")
    own_agent(
        "critique_report",
        critique_report,
        "collect_batch",
        "revise_report",
        error_handler=review_failed,
    )
    worker_step(
        "revise_report", revise_report_node, review_failed, "critique_report", "collect_batch"
    )
    builder.add_node(
        "collect_batch",
        collect_batch,
        destinations=(*workers, "replan_work", *after_batches),
    )
    own_agent("replan_work", replan_work, *workers, *after_batches)
    own_agent("detect_conflicts", detect_conflicts)
    own_agent("resolve_conflict", resolve_conflict)
    own_agent("synthesize", synthesize, "critique_synthesis", "review_synthesis", END)
    own_agent("critique_synthesis", critique_synthesis, "revise_synthesis", "review_synthesis", END)
    own_agent("revise_synthesis", revise_synthesis, "critique_synthesis", "review_synthesis", END)
    builder.add_node("review_synthesis", review_synthesis, destinations=(*workers, END))

    builder.add_edge(START, "open_supervisor")
    # Each step a run can skip is a checkpoint it does not write: a parallel plan needs no
    # planner, a plan no one reviews no pause, an answer no one checks no person.
    builder.add_conditional_edges(
        "open_supervisor", after_opening, ["plan_work", "review_plan", *workers, *after_batches]
    )
    builder.add_conditional_edges(
        "plan_work", after_planning, ["review_plan", *workers, *after_batches]
    )
    builder.add_conditional_edges("review_plan", after_review, [*workers, *after_batches, END])
    builder.add_edge("run_fallback", "collect_batch")
    builder.add_conditional_edges(
        "detect_conflicts", route_conflicts, ["resolve_conflict", "synthesize"]
    )
    builder.add_edge("resolve_conflict", "synthesize")
    return builder.compile(checkpointer=checkpointer, name="supervisor")


def model_picks(values: dict[str, Any]) -> list[ModelPick]:
    """Models the input picks, at every depth: each worker's own, and its team's."""
    picks: list[ModelPick] = []
    for index, worker in enumerate(values.get("workers", [])):
        if worker.get("model"):
            picks.append(ModelPick(f"workers.{index}.model", worker["model"]))
        if worker.get("kind") == "team":
            picks += [
                ModelPick(f"workers.{index}.input.{pick.field}", pick.choice)
                for pick in PATTERNS.get(worker["pattern"]).model_picks(worker["input"])
            ]
    return picks


PATTERN = PatternSpec(
    name="supervisor",
    description="A planner splits a task among workers (agents or whole patterns), "
    "runs them in parallel batches and synthesises their reports.",
    input=SupervisorInput,
    options=SupervisorOptions,
    build=build,
    check=check_workers,
    answers={"plan_review": plan_review_answer, "synthesis_review": synthesis_review_answer},
    model_picks=model_picks,
    team=TeamRole(
        report=supervisor_report,
        agents=supervisor_agents,
        task_field="task",
        levels=supervisor_levels,
        inherit=share_budgets,
    ),
    view=VIEW,
)
graph = build()
