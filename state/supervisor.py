"""Supervisor state, its validated input, and the structured output of its agents."""

from __future__ import annotations

import operator
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from typing_extensions import TypedDict

from state.common import INPUT_NAMES, CallUsage, ModelChoice, at_least, merge_dicts

WORKER_NAME = r"^[a-z][a-z0-9_-]{0,39}$"
MAX_TASK_CHARS = 20_000
MAX_WORKERS = 16


# --- input -------------------------------------------------------------------------


class WorkerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=WORKER_NAME, description="Identifier, e.g. 'researcher'.")
    role: str = Field(min_length=1, max_length=4_000, description="What this worker does.")
    tools: list[str] = Field(
        default_factory=list, max_length=8, description="Registered tool names it may call."
    )
    model: ModelChoice | None = Field(
        default=None,
        description="Its own model: ollama:<model>, llamacpp or a registered model name.",
    )


DEFAULT_TEAM: tuple[WorkerSpec, ...] = (
    WorkerSpec(
        name="researcher",
        role="Gather the facts the task depends on and state them plainly, with caveats.",
    ),
    WorkerSpec(
        name="analyst",
        role="Weigh the options against each other and say which is better and why.",
    ),
    WorkerSpec(
        name="critic",
        role="Look for risks, weak assumptions and what the others may have missed.",
    ),
)


class SupervisorInput(BaseModel):
    """What a supervisor run starts from; validated before any work starts."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=MAX_TASK_CHARS)
    workers: list[WorkerSpec] = Field(
        default_factory=lambda: list(DEFAULT_TEAM), min_length=1, max_length=MAX_WORKERS
    )
    review_plan: bool = Field(
        default=False, description="Pause after planning for a person to approve the plan."
    )
    conflict_gap: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Confidence gap at which a conflict is settled by confidence alone; "
        "smaller gaps go to LLM arbitration.",
    )

    @field_validator("task")
    @classmethod
    def _task_not_blank(cls, task: str) -> str:
        if not task.strip():
            raise ValueError("task must not be blank")
        return task.strip()

    @field_validator("workers")
    @classmethod
    def _unique_names(cls, workers: list[WorkerSpec]) -> list[WorkerSpec]:
        names = [w.name for w in workers]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"worker names must be unique; repeated: {', '.join(dupes)}")
        return workers


# --- structured agent output ----------------------------------------------------------


class PlanStep(BaseModel):
    worker: str = Field(description="The worker this step gives the task to.")
    depends_on: list[str] = Field(
        default_factory=list,
        max_length=MAX_WORKERS,
        description="The workers whose results this one needs first (often none).",
    )


class Plan(BaseModel):
    steps: list[PlanStep] = Field(max_length=MAX_WORKERS, description="One step per worker.")
    rationale: str = Field(max_length=400, description="Why this plan, in one sentence.")


def team_names(label: str) -> dict[str, Any]:
    """Schema extra for a field holding names listed under `label` in the user message."""
    return {INPUT_NAMES: label}


# Schemas with names as enums are built per team; cached, because building a pydantic
# model and its JSON schema costs about a millisecond and agents ask on every call.


@cache
def plan_schema(worker_names: tuple[str, ...]) -> type[Plan]:
    """The plan schema with worker names as an enum, so constrained decoding cannot invent one."""
    names: Any = Literal[worker_names]
    step = create_model(
        "PlanStep",
        __base__=PlanStep,
        worker=(names, Field(json_schema_extra=team_names("The team"))),
        depends_on=(
            list[names],
            Field(
                default_factory=list,
                max_length=len(worker_names),
                json_schema_extra=team_names("The team"),
            ),
        ),
    )
    return create_model(
        "Plan",
        __base__=Plan,
        steps=(list[step], Field(min_length=1, max_length=len(worker_names))),  # type: ignore[valid-type]
    )


class Finding(BaseModel):
    topic: str = Field(max_length=60, description="Two to five words naming what it is about.")
    claim: str = Field(
        max_length=200,
        description="What you found, in one sentence.",
        json_schema_extra=at_least(20),
    )


class WorkerReport(BaseModel):
    summary: str = Field(
        max_length=1_000,
        description="Your answer for your role, in two to four sentences.",
        json_schema_extra=at_least(60),
    )
    findings: list[Finding] = Field(
        default_factory=list, max_length=4, description="Your main findings."
    )
    confidence: float = Field(ge=0, le=1, description="How sure you are of your answer.")


class ToolStep(BaseModel):
    """One ReAct step: call a tool, or finish with the report."""

    action: Literal["tool", "finish"] = Field(description="tool to call a tool, finish to report.")
    tool: str = Field(default="", max_length=80, description="The tool to call.")
    tool_input: str = Field(default="", max_length=400, description="What to give the tool.")


class ConflictFound(BaseModel):
    topic: str = Field(max_length=60, description="What they disagree about, in a few words.")
    workers: list[str] = Field(
        min_length=2, max_length=MAX_WORKERS, description="The workers who disagree."
    )
    description: str = Field(max_length=200, description="The disagreement, in one sentence.")


MAX_CONFLICTS = 3


class ConflictScan(BaseModel):
    conflicts: list[ConflictFound] = Field(
        default_factory=list,
        max_length=MAX_CONFLICTS,
        description="Each real contradiction, once.",
    )


@cache
def conflict_scan_schema(worker_names: tuple[str, ...]) -> type[ConflictScan]:
    names: Any = Literal[worker_names]
    finding = create_model(
        "ConflictFound",
        __base__=ConflictFound,
        workers=(
            list[names],
            Field(
                min_length=2,
                max_length=len(worker_names),
                json_schema_extra=team_names("Reports"),
            ),
        ),
    )
    return create_model(
        "ConflictScan",
        __base__=ConflictScan,
        conflicts=(list[finding], Field(default_factory=list, max_length=MAX_CONFLICTS)),  # type: ignore[valid-type]
    )


class Arbitration(BaseModel):
    winner: str = Field(description="The worker whose position stands.")
    resolution: str = Field(max_length=400, description="Why, in one or two sentences.")


@cache
def arbitration_schema(worker_names: tuple[str, ...]) -> type[Arbitration]:
    names: Any = Literal[worker_names]
    return create_model(
        "Arbitration",
        __base__=Arbitration,
        winner=(names, Field(json_schema_extra=team_names("Reports"))),
    )


class PlanReview(BaseModel):
    """A person's answer to the plan review interrupt."""

    model_config = ConfigDict(extra="forbid")

    approve: bool
    batches: list[list[str]] | None = Field(
        default=None, description="Replace the plan's batches (only with approve=true)."
    )
    note: str = Field(default="", max_length=2_000)

    @model_validator(mode="after")
    def _runnable_batches(self) -> PlanReview:
        """An edited plan is checked like a planner's: it must be able to run."""
        if self.batches is None:
            return self
        if not self.approve:
            raise ValueError("batches: only an approved plan can be edited")
        if not self.batches or not all(self.batches):
            raise ValueError("batches: give at least one batch, and a worker in every batch")
        names = [name for batch in self.batches for name in batch]
        if repeated := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"batches: a worker runs once; repeated: {', '.join(repeated)}")
        return self


@cache
def review_answer_schema(worker_names: tuple[str, ...]) -> type[PlanReview]:
    names: Any = Literal[worker_names]
    return create_model("PlanReview", __base__=PlanReview, batches=(list[list[names]] | None, None))


class Synthesis(BaseModel):
    summary: str = Field(
        max_length=1_500,
        description="The team's answer to the task, in three to six sentences.",
        json_schema_extra=at_least(80),
    )
    recommendations: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=4, description="Concrete next steps, one sentence each."
    )
    confidence: float = Field(ge=0, le=1, description="How sure the team is of its answer.")


# --- graph state ------------------------------------------------------------------------


class PlanRecord(TypedDict):
    batches: list[list[str]]
    rationale: str
    source: Literal["planner", "fallback", "reviewer"]
    note: str


class WorkerResult(TypedDict):
    worker: str
    status: Literal["ok", "fallback", "failed"]
    report: dict[str, Any] | None
    error: str | None
    attempts: int
    batch: int
    # wall-clock span of the attempt that produced the result (epoch seconds)
    started_at: float
    finished_at: float


class Conflict(TypedDict):
    topic: str
    workers: list[str]
    description: str


class Resolution(TypedDict):
    topic: str
    method: Literal["confidence", "arbitration"]
    winner: str
    resolution: str


class SupervisorState(TypedDict, total=False):
    task: str
    workers: list[dict[str, Any]]
    review_plan: bool
    conflict_gap: float
    plan: PlanRecord
    batch_index: int
    results: Annotated[dict[str, WorkerResult], merge_dicts]
    conflicts: list[Conflict]
    conflict_note: str
    resolutions: Annotated[list[Resolution], operator.add]
    synthesis: dict[str, Any]
    usage: Annotated[list[CallUsage], operator.add]


class WorkerTask(TypedDict):
    """What one `Send` hands a worker: its spec, the task, and earlier batches' results."""

    task: str
    worker: dict[str, Any]
    batch: int
    context: list[dict[str, Any]]
    failed_with: str | None


class ConflictTask(TypedDict):
    task: str
    conflict: Conflict
    reports: dict[str, dict[str, Any]]
    conflict_gap: float


class SupervisorOptions(BaseModel):
    """How the graph is built: per-attempt timeouts and retry policy (kept for resume)."""

    model_config = ConfigDict(extra="forbid")

    worker_timeout_s: float = Field(default=300.0, gt=0, le=3_600)
    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_s: float = Field(default=1.0, ge=0, le=60)
