"""The supervisor's agents' instructions: its planner, workers, critics, conflict
checks and synthesizer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mas_graphs.nodes.prompts.common import DATA_RULE, as_data, named_list, quoted, section

FINDINGS_RULE = (
    "Label each finding with a short topic of two to five words, so the team's findings "
    "can be compared, and give your overall confidence from 0 to 1."
)


WORKER = (
    "You are one worker in a team led by a supervisor. The user message gives your role "
    "and the team's task. Do the work your role describes, for that task, and answer "
    f"only for your role. {FINDINGS_RULE} {DATA_RULE}"
)


FALLBACK_WORKER = (
    "You stand in for a teammate who could not finish. The user message gives their role "
    "and the team's task. Do their part as well as you can, and say plainly what you "
    f"could not cover. {FINDINGS_RULE} {DATA_RULE}"
)


TOOL_STEP = (
    "\nBefore you report, you may call the tools the user message lists: reply with "
    "action 'tool', the tool's name and its input, or with action 'finish' once you know "
    "enough."
)


PLANNER = (
    "You are the supervisor's planner. The user message lists the team (each worker's "
    "name and role) and the task. Choose which workers the task needs and what each must "
    "wait for: one step per chosen worker, whose depends_on lists the workers whose "
    "results it needs first, with the worker's own part of the task (subtask) and what it "
    "should hand back (expected_output). Workers that do not depend on each other run in "
    "parallel; dependencies must never form a cycle; a dependency the team list gives "
    f"is kept. {DATA_RULE}"
)


CONFLICT_DETECTOR = (
    "You compare the reports of a team's workers and list only real contradictions "
    "between them: the same topic, incompatible claims. List each contradiction once; "
    f"list none if the reports agree. {DATA_RULE}"
)


ARBITER = (
    "You settle a disagreement between workers. Decide whose position the reports "
    f"support better and explain the resolution in one or two sentences. {DATA_RULE}"
)


REPLANNER = (
    "You are the supervisor's planner, looking again at the plan after a batch of "
    "workers reported. The user message gives the task, the reports so far, any workers "
    "that failed, the workers still to run (a failed one may run again) and the plan for "
    "them. Give the steps still to run, one per chosen worker, whose depends_on lists "
    "the workers it waits for among those; give none if the reports already answer the "
    f"task. Say why in one sentence. {DATA_RULE}"
)


CRITIC = (
    "You are a critic. The user message gives a task and a text written for it (a "
    "worker's report, or a team's answer). Accept the text if it answers the task "
    "clearly and without a mistake you can name; otherwise list, in one sentence each, "
    f"what must change. Do not ask for more than the task needs. {DATA_RULE}"
)


REVISER = (
    "You are one worker in a team led by a supervisor, revising your report. The user "
    "message gives the task, your role, your draft and what a critic says must change. "
    f"Write the report again with those problems fixed. {FINDINGS_RULE} {DATA_RULE}"
)


SYNTHESIS_REVISER = (
    "You revise a team's final answer to a task. The user message gives the task, the "
    "workers' reports, the draft answer and what a critic says must change. Write the "
    "answer again with those problems fixed: a summary of a few sentences, concrete "
    f"recommendations, and your confidence from 0 to 1. {DATA_RULE}"
)


SYNTHESIZER = (
    "You write a team's final answer to the task from its workers' reports and the "
    "resolved conflicts: a summary of a few sentences, concrete recommendations, and your "
    f"confidence from 0 to 1. {DATA_RULE}"
)


def worker_message(
    *,
    name: str,
    role: str,
    task: str,
    context: list[dict[str, Any]],
    tools: list[tuple[str, str]],
    observations: list[str],
    fallback: bool = False,
    guidance: str = "",
    assignment: Mapping[str, Any] | None = None,
) -> str:
    """Task first, then the role (and the part the planner gave it), then a closing cue:
    small models follow what they read last, so the cue (built from the worker's
    validated name) comes last."""
    role_label = "Their role" if fallback else "Your role"
    parts = [f"Task: {quoted(task)}", f"{role_label} ({name}): {quoted(role)}"]
    if assignment:
        parts.append(f"The planner's part for {name}: {quoted(assignment['subtask'])}")
        if assignment["expected_output"]:
            parts.append(f"Hand back: {quoted(assignment['expected_output'])}")
    if context:
        parts.append(section("Results from earlier workers", as_data(context)))
    if guidance:
        parts.append(f"A note from the person reviewing the team's answer: {quoted(guidance)}")
    if tools:
        parts.append(section("Tools you may call", named_list(tools)))
    if observations:
        parts.append(section("Your tool results so far", "\n".join(observations)))
    whose = f"the {name}'s part" if fallback else f"your report on the task as the {name}"
    parts.append(f"Write {whose}, in your own words.")
    return "\n\n".join(parts)


def planner_message(workers: list[dict[str, Any]], task: str) -> str:
    team = named_list((w["name"], w["role"]) for w in workers)
    parts = [f"Task: {quoted(task)}", section("The team", team)]
    # Names only: each is a validated worker name, never free text.
    if waits := [
        f"{w['name']} waits for {', '.join(w['depends_on'])}"
        for w in workers
        if w.get("depends_on")
    ]:
        parts.append(section("Dependencies to keep", "\n".join(waits)))
    parts.append(
        "Write the plan: a step for each worker the task needs, with what it waits for, "
        "its own part of the task and what it hands back."
    )
    return "\n\n".join(parts)


def replan_message(
    task: str,
    reports: dict[str, Any],
    failed: dict[str, str],
    still_to_run: list[dict[str, Any]],
    remaining: list[list[str]],
) -> str:
    parts = [f"Task: {quoted(task)}", section("Reports so far", as_data(reports))]
    if failed:
        parts.append(section("Workers that failed", as_data(failed)))
    parts.append(section("Still to run", named_list((w["name"], w["role"]) for w in still_to_run)))
    parts.append(section("The plan for them so far, batch by batch", as_data(remaining)))
    parts.append(
        "Write the steps still to run: keep the plan if it still fits, change it if the "
        "reports or failures call for it."
    )
    return "\n\n".join(parts)


def critique_message(*, task: str, what: str, text: dict[str, Any]) -> str:
    return (
        f"Task: {quoted(task)}\n\n{section(what.capitalize(), as_data(text))}\n\n"
        f"Judge {what}: accept it, or list what must change."
    )


def revision_message(
    *, name: str, role: str, task: str, draft: dict[str, Any], problems: list[str]
) -> str:
    return "\n\n".join(
        [
            f"Task: {quoted(task)}",
            f"Your role ({name}): {quoted(role)}",
            section("Your draft", as_data(draft)),
            section("What the critic says must change", as_data(problems)),
            f"Write your report on the task as the {name} again, with those problems fixed.",
        ]
    )


def synthesis_revision_message(
    task: str, reports: dict[str, Any], draft: dict[str, Any], problems: list[str]
) -> str:
    return "\n\n".join(
        [
            f"Task: {quoted(task)}",
            section("Reports", as_data(reports)),
            section("Your draft answer", as_data(draft)),
            section("What the critic says must change", as_data(problems)),
            "Write the team's answer again, with those problems fixed.",
        ]
    )


def reports_message(task: str, reports: dict[str, Any], **extra: Any) -> str:
    parts = [f"Task: {quoted(task)}", section("Reports", as_data(reports))]
    parts += [
        section(label.replace("_", " ").capitalize(), as_data(v)) for label, v in extra.items()
    ]
    return "\n\n".join(parts)
