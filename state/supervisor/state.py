"""The supervisor's graph state: its validated input, the channels a run writes (with
their reducers), and what each `Send` hands a worker, a critic round or a conflict."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

from typing_extensions import TypedDict

from mas_graphs.state.common import CallUsage, TokenBudget, TokenLimitsState, merge_dicts
from mas_graphs.state.supervisor.input import WorkerKind


class Assignment(TypedDict):
    """A worker's own part of the task, as the planner gave it."""

    subtask: str
    expected_output: str


class PlanRecord(TypedDict):
    batches: list[list[str]]
    rationale: str
    source: Literal[
        "planner", "declared", "parallel", "fallback", "reviewer", "replanner", "person"
    ]
    note: str
    # worker -> its part, where the planner gave one (a declared or parallel plan: none)
    assignments: dict[str, Assignment]


class PlanRevision(TypedDict):
    """One time the planner looked at the results so far and the rest of the plan."""

    after_batch: int
    trigger: Literal["batch", "failure"]
    failed: dict[str, str]  # the workers whose failure triggered it, with their errors
    reason: str
    before: list[list[str]]  # the batches still to run, before
    after: list[list[str]]  # and after
    changed: bool


class ReportReview(TypedDict):
    """One critic round on a report or on the synthesis."""

    round: int
    accepted: bool
    problems: list[str]


class ToolCall(TypedDict):
    """One tool call of a worker's ReAct loop, as it happened."""

    step: int
    tool: str
    input: str
    output: str  # cut to TOOL_OUTPUT_CHARS
    error: str | None  # the tool failed or timed out: the agent read this instead
    latency_ms: float
    # thread, task and step: the same on a re-run after a crash, so a tool server can
    # tell a repeated call from a new one
    key: str


class Memory(TypedDict):
    """What a ReAct loop's context left out to stay within its token budget."""

    budget_tokens: int
    dropped: int  # the oldest tool results, no longer in the context word for word
    summary: str  # what they said, a line each, in their place


class WorkerResult(TypedDict):
    worker: str
    kind: WorkerKind
    status: Literal["ok", "fallback", "failed"]
    report: dict[str, Any] | None
    error: str | None
    attempts: int
    batch: int
    # wall-clock span of the attempt that produced the result (epoch seconds)
    started_at: float
    finished_at: float
    # False while a critic-and-revise loop is still working on the report
    final: bool
    reviews: list[ReportReview]
    # a team's nested run: its pattern and final state (usage rolled up into the parent's)
    team: dict[str, Any] | None
    notes: list[str]
    tool_calls: list[ToolCall]
    memory: Memory | None  # a ReAct loop that outgrew its context: what it summarised


class Conflict(TypedDict):
    topic: str
    workers: list[str]
    description: str


class Resolution(TypedDict):
    topic: str
    method: Literal["confidence", "arbitration"]
    winner: str
    resolution: str


class Escalation(TypedDict):
    """A person's answer to a synthesis sent to them."""

    reason: str
    action: Literal["accept", "edit", "rerun"]
    workers: list[str]
    note: str


class SupervisorInputState(TokenLimitsState):
    """A supervisor run's input once its first node has validated it: every field
    of `SupervisorInput`, defaults filled in, so nodes read them without defaults of their own."""

    task: str
    workers: list[dict[str, Any]]
    planning: Literal["planner", "parallel"]
    review_plan: bool
    conflict_scan: bool
    conflict_gap: float
    max_replans: int
    on_worker_failure: Literal["fallback", "replan"]
    max_parallel: int
    max_depth: int
    max_agents: int
    escalate_below: float | None
    revise_rounds: int


class SupervisorState(SupervisorInputState, total=False):
    """The input, and the channels the run writes as it goes."""

    plan: PlanRecord
    plan_revisions: Annotated[list[PlanRevision], operator.add]
    batch_index: int
    results: Annotated[dict[str, WorkerResult], merge_dicts]
    conflicts: list[Conflict]
    conflict_note: str
    # each conflict check starts a new list (`Overwrite`): a re-run's conflicts are new
    resolutions: Annotated[list[Resolution], operator.add]
    synthesis: dict[str, Any]
    escalations: Annotated[list[Escalation], operator.add]
    usage: Annotated[list[CallUsage], operator.add]


class WorkerTask(TypedDict):
    """What one `Send` hands a worker: its spec, the task, earlier batches' results, and
    what happens if it fails."""

    task: str
    worker: dict[str, Any]
    batch: int
    context: list[dict[str, Any]]
    failed_with: str | None
    guidance: str  # a person's note when they asked for this worker again
    on_failure: Literal["fallback", "replan"]
    max_parallel: int
    assignment: Assignment | None  # its part of the task, if the planner gave one
    token_budget: TokenBudget | None


class ReviewTask(TypedDict):
    """A worker's report going through a critic round (and, if rejected, a revision)."""

    task: str
    worker: dict[str, Any]
    result: WorkerResult
    round: int
    problems: list[str]
    max_parallel: int
    token_budget: TokenBudget | None


class ConflictTask(TypedDict):
    task: str
    conflict: Conflict
    reports: dict[str, dict[str, Any]]
    conflict_gap: float
    max_parallel: int
    token_budget: TokenBudget | None
