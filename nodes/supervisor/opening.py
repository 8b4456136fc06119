"""A supervisor run's first node: its input validated (with the operator's limits) and
its defaults filled in, and the checks beyond the input model."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from mas_graphs.nodes.agents import (
    AGENTS,
)
from mas_graphs.nodes.context import AgentContext, agent_context
from mas_graphs.nodes.inputs import input_fields, validated_input
from mas_graphs.nodes.mcp import unavailable
from mas_graphs.nodes.supervisor.planning import after_planning
from mas_graphs.nodes.tools import TOOLS
from mas_graphs.state.pattern import PATTERNS
from mas_graphs.state.supervisor import (
    PlanRecord,
    SupervisorInput,
    SupervisorState,
    declared_layers,
)


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
    data = validated_input("supervisor", SupervisorInput, given, check_workers, limits=limits)
    values = data.model_dump()
    if values["planning"] == "parallel":
        # A plain fan-out: the plan is the input's workers, all at once, no planning call.
        names = [w["name"] for w in values["workers"]]
        plan = PlanRecord(
            batches=[names],
            rationale="all workers at once",
            source="parallel",
            note="",
            assignments={},
        )
        values |= {"plan": plan, "batch_index": 0}
    elif values["planning"] == "declared":
        # A known task graph: the workers' own dependencies are the plan, no planning call.
        plan = PlanRecord(
            batches=declared_layers(data),
            rationale="the dependencies the input declares",
            source="declared",
            note="",
            assignments={},
        )
        values |= {"plan": plan, "batch_index": 0}
    return values


def after_opening(state: SupervisorState) -> list[Send] | str:
    # A parallel or declared plan is made in `open_supervisor`: no planning call.
    return "plan_work" if state["planning"] == "planner" else after_planning(state)
