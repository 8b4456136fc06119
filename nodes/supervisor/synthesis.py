"""Conflicts between reports, the synthesis, a critic's rounds on it, and a person's
review of it (accept, edit, or run workers again)."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, Overwrite, Send

from mas_graphs.nodes import prompts
from mas_graphs.nodes.agents import (
    critique,
)
from mas_graphs.nodes.context import AgentContext, agent_context
from mas_graphs.nodes.inputs import ask_person
from mas_graphs.nodes.structured import StructuredOutputError, ask_agent, cut_at_word
from mas_graphs.nodes.supervisor.workers import dispatch_batch
from mas_graphs.state.common import budget_of
from mas_graphs.state.supervisor import (
    Conflict,
    ConflictFound,
    ConflictTask,
    Escalation,
    PlanRecord,
    ReportReview,
    Resolution,
    SupervisorState,
    Synthesis,
    SynthesisReview,
    arbitration_schema,
    conflict_scan_schema,
    synthesis_review_schema,
)


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
                conflict_gap=state["conflict_gap"],
                max_parallel=state["max_parallel"],
                token_budget=budget_of(state),
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
    return "critique_synthesis" if state["revise_rounds"] > 0 else review_or_end(state)


def review_or_end(state: SupervisorState) -> str:
    """Only a run with `escalate_below` may go to a person; others end with the synthesis."""
    return "review_synthesis" if state["escalate_below"] is not None else END


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
    done = verdict.accept or review["round"] > state["revise_rounds"]
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


def escalation_reason(state: SupervisorState) -> str | None:
    """Why the answer goes to a person: too little confidence, or a worker failed."""
    threshold = state["escalate_below"]
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
