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

import json
import time
from collections.abc import Callable
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from mas_graphs.nodes.context import AgentContext, agent_context
from mas_graphs.nodes.structured import cut_at_word
from mas_graphs.nodes.supervisor import reported
from mas_graphs.state.common import CallUsage
from mas_graphs.state.supervisor import TEAM_TASK_FIELD, Finding, WorkerReport, WorkerTask

# (pattern, its build options as sorted JSON) -> the compiled nested graph
TeamGraphs = Callable[[str, str], CompiledStateGraph[Any, Any, Any, Any]]
# What a parent keeps of a nested run's state: its usage is rolled up instead.
ROLLED_UP = ("usage", "totals")
MAX_FINDINGS = 4


def team_runner(team_graph: TeamGraphs) -> Callable[..., Any]:
    async def run_team(task: WorkerTask, runtime: Runtime[AgentContext]) -> Command[Any]:
        """Run the worker's pattern as a nested run; its conclusion is the report."""
        spec = task["worker"]
        name, pattern = spec["name"], spec["pattern"]
        graph = team_graph(pattern, json.dumps(spec["options"], sort_keys=True))
        started = time.time()
        values = await graph.ainvoke(
            team_input(spec, task["guidance"]),
            {"run_name": f"{name} ({pattern})"},
            context=agent_context(runtime),
        )
        team = {
            "pattern": pattern,
            "values": {k: v for k, v in values.items() if k not in ROLLED_UP},
        }
        report = team_report(pattern, values)
        result = reported(task, report, runtime, status="ok", started=started, team=team)
        return Command(
            update={
                "results": {name: result},
                "usage": rolled_up(values.get("usage", []), name),
            },
            goto="collect_batch",
        )

    return run_team


def team_input(spec: dict[str, Any], guidance: str) -> dict[str, Any]:
    """The nested run's input; a person's note for a team asked to run again goes with
    its task (as data, like the task)."""
    data = dict(spec["input"])
    field = TEAM_TASK_FIELD.get(spec["pattern"])
    if guidance and field:
        data[field] = f"{data[field]}\n\nA note from the person reviewing the answer: {guidance}"
    return data


def rolled_up(usage: list[CallUsage], worker: str) -> list[CallUsage]:
    """A nested run's calls, counted in the parent's usage under the worker's name."""
    return [CallUsage(**{**call, "agent": f"{worker}/{call['agent']}"}) for call in usage]


def team_report(pattern: str, values: dict[str, Any]) -> WorkerReport:
    """A nested run's conclusion, as the report of the worker it ran for."""
    if pattern == "debate":
        return debate_report(values)
    if pattern == "scenarios":
        return scenarios_report(values)
    return supervisor_report(values)


def supervisor_report(values: dict[str, Any]) -> WorkerReport:
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


def debate_report(values: dict[str, Any]) -> WorkerReport:
    verdict = values.get("verdict") or {}
    winner = verdict.get("winner", "inconclusive")
    summary = (
        f"The debate's verdict ({verdict.get('decided_by', 'none')}): {winner}. "
        f"{verdict.get('reasoning', '')}"
    )
    findings = [
        Finding(topic=cut_at_word(f"for {winner}", 60), claim=cut_at_word(point, 200))
        for point in verdict.get("decisive_for", [])
    ]
    return WorkerReport(
        summary=cut_at_word(summary.strip(), 1_000),
        findings=findings[:MAX_FINDINGS],
        confidence=float(verdict.get("confidence", 0.0)),
    )


def scenarios_report(values: dict[str, Any]) -> WorkerReport:
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
