"""The multi-scenario fan-out: run one skill over scenarios of rising difficulty in
parallel, meet at sync points, and compare how the skill scales.

    start_scenarios -> [run_phase x live scenario] -> milestone_sync -> ... -> aggregate
                            |                              |
                            | a subgraph per scenario:     +-- next sync point: Send again
                            |   run_batch -> run_batch -> ... until the sync point's target

Design. A run is a sequence of sync points: the milestones (30/50/70/90/100 % by
default) in `milestone` mode, every batch round in `lockstep` mode, and only the
end in `free` mode. For each sync point the parent sends one `run_phase` task per
live scenario, all in one superstep; the superstep ends when every one of them has
reached the point (or failed, or run out of budget), so `milestone_sync` runs exactly
once per sync point, records each scenario's progress, elapsed time and partial
quality, and sends them on. In `free` mode there is one phase, so no scenario ever
waits for another.

Durability. `run_phase` runs the scenario's phase as a subgraph whose nodes are
single batches. The subgraph inherits the run's checkpointer and saves a checkpoint
after each batch in its own namespace, keyed by the parent task's id, which is the
same when the parent resumes. After a crash the parent re-runs only the phase tasks
that had not finished (finished ones' writes are kept as pending writes), and each
of those subgraphs resumes from its last checkpoint: only batches in flight are
done again, in every mode. A plain parent-level Send per batch would not do for
`free` mode, since a superstep waits for its slowest task.

Failure isolation. A batch is retried per `RetryPolicy` and capped by a per-attempt
timeout; when retries run out, `batch_failed` marks the scenario failed and keeps
its finished batches. A scenario's time budget counts its own processing time (not
time spent waiting at sync points, or while the process was down); a batch that
would exceed it is cancelled and the scenario is marked timed out. Stopped
scenarios are not sent again, so sync points stop waiting for them.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer, RetryPolicy

from mas_graphs.graphs.views.scenarios import VIEW
from mas_graphs.nodes.context import AgentContext, graph_defaults, with_default_context
from mas_graphs.nodes.scenarios import (
    aggregate,
    batch_failed,
    check_skill,
    dispatch_phase,
    milestone_sync,
    next_batch,
    phase_runner,
    restart_input,
    run_batch,
    scenario_agents,
    scenarios_report,
    start_scenarios,
)
from mas_graphs.state.pattern import PatternSpec, TeamRole
from mas_graphs.state.scenarios import PhaseTask, ScenariosInput, ScenariosOptions, ScenariosState


def build_phase(
    *, default: AgentContext | None, batch_timeout_s: float, max_attempts: int, backoff_s: float
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """One scenario's phase: batches in a row, each its own checkpointed step."""
    retry = RetryPolicy(max_attempts=max_attempts, initial_interval=backoff_s, jitter=False)
    builder = StateGraph(PhaseTask, context_schema=AgentContext, input_schema=PhaseTask)
    builder.add_node(
        "run_batch",
        with_default_context(run_batch, default),
        retry_policy=retry,
        timeout=batch_timeout_s,
        error_handler=batch_failed,
        destinations=(END,),
    )
    builder.add_edge(START, "run_batch")
    builder.add_conditional_edges("run_batch", next_batch, ["run_batch", END])
    return builder.compile(name="scenario_phase")


def build(
    options: ScenariosOptions = ScenariosOptions(),
    *,
    checkpointer: Checkpointer = None,
    model: BaseChatModel | None = None,
    defaults: AgentContext | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the scenarios graph with `options` (timeouts and retries, see
    `ScenariosOptions`).

    `model` (or `context=AgentContext(...)` at invoke time) supplies the chat model
    for LLM skills.
    """
    default = graph_defaults(model, defaults)
    phase = build_phase(
        default=default,
        batch_timeout_s=options.batch_timeout_s,
        max_attempts=options.max_attempts,
        backoff_s=options.backoff_s,
    )
    builder = StateGraph(
        ScenariosState,
        context_schema=AgentContext,
        input_schema=ScenariosInput,
        output_schema=ScenariosState,
    )
    builder.add_node("start_scenarios", start_scenarios)
    builder.add_node("run_phase", with_default_context(phase_runner(phase), default))
    builder.add_node(
        "milestone_sync", milestone_sync, destinations=("run_phase", "milestone_sync", "aggregate")
    )
    builder.add_node("aggregate", aggregate)

    builder.add_edge(START, "start_scenarios")
    builder.add_conditional_edges(
        "start_scenarios", dispatch_phase, ["run_phase", "milestone_sync", "aggregate"]
    )
    builder.add_edge("run_phase", "milestone_sync")
    builder.add_edge("aggregate", END)
    return builder.compile(checkpointer=checkpointer, name="scenarios")


PATTERN = PatternSpec(
    name="scenarios",
    description="One skill run over several scenarios in parallel (`Send`), kept in step "
    "at milestones, then compared.",
    input=ScenariosInput,
    options=ScenariosOptions,
    build=build,
    check=check_skill,
    restart=restart_input,
    team=TeamRole(report=scenarios_report, agents=scenario_agents),
    view=VIEW,
)
graph = build()
