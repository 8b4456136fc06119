"""A whole pattern as a supervisor's worker: its run nested in the worker's node.

The nested graph is compiled without a checkpointer of its own, so LangGraph gives
it the parent's, under the worker task's namespace (`run_team:<task id>`): every
superstep of the nested run is checkpointed in the parent's thread, a crash at any
depth resumes there, and the parent's resume re-enters the nested run where it
stopped. Its final state becomes the worker's report (no model call: the nested
pattern already concluded), its usage rolls up into the parent's under the worker's
name, and its interrupts (a nested plan review, a debate for a person to decide)
reach whoever answers the parent's.
"""

from __future__ import annotations

import time
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Command

from mas_graphs.nodes.context import AgentContext, agent_context
from mas_graphs.nodes.limits import RunBudgetExceededError
from mas_graphs.nodes.structured import cut_at_word
from mas_graphs.nodes.supervisor import reported
from mas_graphs.state.common import CallUsage
from mas_graphs.state.pattern import PATTERNS, compiled
from mas_graphs.state.supervisor import MAX_FINDINGS, Finding, WorkerReport, WorkerTask

# What a parent keeps of a nested run's state: its usage is rolled up instead.
ROLLED_UP = ("usage", "totals")


async def run_team(task: WorkerTask, runtime: Runtime[AgentContext]) -> Command[Any]:
    """Run the worker's pattern as a nested run; its conclusion is the report."""
    spec = task["worker"]
    name, pattern = spec["name"], spec["pattern"]
    team_spec = PATTERNS.get(pattern)
    role = team_spec.team
    assert role is not None  # the input's validation admits only patterns with one
    started = time.time()
    try:
        values = await compiled(team_spec, spec["options"]).ainvoke(
            team_input(spec, task["guidance"]),
            {"run_name": f"{name} ({pattern})"},
            context=agent_context(runtime),
        )
    except RunBudgetExceededError as error:
        if error.level != get_config()["configurable"].get("checkpoint_ns"):
            raise  # an enclosing run's budget: that run stops
        raise TeamBudgetSpentError(name, error) from error
    team = {
        "pattern": pattern,
        "values": {k: v for k, v in values.items() if k not in ROLLED_UP},
    }
    result = reported(task, role.report(values), runtime, status="ok", started=started, team=team)
    return Command(
        update={
            "results": {name: result},
            "usage": rolled_up(values.get("usage", []), name),
        },
        goto="collect_batch",
    )


class TeamBudgetSpentError(RuntimeError):
    """A team spent its own `max_tokens_total`: its worker fails (the supervisor's
    fallback or replan takes over), and what the team spent still counts."""

    def __init__(self, worker: str, error: RunBudgetExceededError) -> None:
        super().__init__(f"team {worker} stopped: {error}")
        self.usage = [
            CallUsage(
                agent=f"{worker}/{error.agent}",
                calls=0,
                input_tokens=error.spent,  # the team's tokens, input and output together
                output_tokens=0,
                latency_ms=0.0,
                ok=False,
                notes=["the team's run stopped at its token budget; its tokens in all"],
            )
        ]


def team_input(spec: dict[str, Any], guidance: str) -> dict[str, Any]:
    """The nested run's input; a person's note for a team asked to run again goes with
    its task (as data, like the task)."""
    data = dict(spec["input"])
    role = PATTERNS.get(spec["pattern"]).team
    field = role.task_field if role is not None else None
    if guidance and field:
        data[field] = f"{data[field]}\n\nA note from the person reviewing the answer: {guidance}"
    return data


def rolled_up(usage: list[CallUsage], worker: str) -> list[CallUsage]:
    """A nested run's calls, counted in the parent's usage under the worker's name."""
    return [CallUsage(**{**call, "agent": f"{worker}/{call['agent']}"}) for call in usage]


def supervisor_report(values: dict[str, Any]) -> WorkerReport:
    """A nested supervisor's synthesis, with its workers' findings."""
    synthesis = values.get("synthesis") or {}
    findings = [
        Finding(topic=cut_at_word(f["topic"], 60), claim=cut_at_word(f["claim"], 200))
        for result in values.get("results", {}).values()
        if result.get("report")
        for f in result["report"].get("findings", [])
    ]
    return WorkerReport(
        summary=cut_at_word(synthesis.get("summary") or "The team gave no answer.", 1_000),
        findings=findings[:MAX_FINDINGS],
        confidence=float(synthesis.get("confidence", 0.0)),
    )
