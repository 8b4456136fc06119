"""The structured output of the supervisor's agents (plans, reports, conflicts, the
synthesis, critiques) and the answers a person gives it; names become enums per team,
so constrained decoding cannot invent a worker."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from mas_graphs.state.common import INPUT_NAMES, at_least
from mas_graphs.state.supervisor.input import MAX_WORKERS


class PlanStep(BaseModel):
    worker: str = Field(description="The worker this step gives the task to.")
    depends_on: list[str] = Field(
        default_factory=list,
        max_length=MAX_WORKERS,
        description="The workers whose results this one needs first (often none).",
    )
    subtask: str = Field(
        default="",
        max_length=400,
        description="This worker's own part of the task, in one or two sentences.",
    )
    expected_output: str = Field(
        default="", max_length=200, description="What it should hand back, in a few words."
    )


class Plan(BaseModel):
    steps: list[PlanStep] = Field(max_length=MAX_WORKERS, description="One step per worker.")
    rationale: str = Field(max_length=400, description="Why this plan, in one sentence.")


def team_names(label: str) -> dict[str, Any]:
    """Schema extra for a field holding names listed under `label` in the user message."""
    return {INPUT_NAMES: label}


# Schemas with names as enums are built per team; cached, because building a pydantic
# model and its JSON schema costs about a millisecond and agents ask on every call.


def step_schema(worker_names: tuple[str, ...], label: str) -> type[PlanStep]:
    """A plan step whose workers can only be `worker_names`, listed under `label`."""
    names: Any = Literal[worker_names]
    return create_model(
        "PlanStep",
        __base__=PlanStep,
        worker=(names, Field(json_schema_extra=team_names(label))),
        depends_on=(
            list[names],
            Field(
                default_factory=list,
                max_length=len(worker_names),
                json_schema_extra=team_names(label),
            ),
        ),
    )


@cache
def plan_schema(worker_names: tuple[str, ...]) -> type[Plan]:
    """The plan schema with worker names as an enum, so constrained decoding cannot invent one."""
    step = step_schema(worker_names, "The team")
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


class Critique(BaseModel):
    accept: bool = Field(description="true if the text does its job well enough as it is.")
    problems: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list,
        max_length=3,
        description="What must change, one sentence each; none when you accept.",
    )


class Replan(BaseModel):
    steps: list[PlanStep] = Field(
        max_length=MAX_WORKERS,
        description="The steps still to run, one per worker; none if nothing more is needed.",
    )
    reason: str = Field(max_length=300, description="Why, in one sentence.")


@cache
def replan_schema(worker_names: tuple[str, ...]) -> type[Replan]:
    """Only workers that have not yet reported can be planned again."""
    step = step_schema(worker_names, "Still to run")
    return create_model(
        "Replan",
        __base__=Replan,
        steps=(list[step], Field(max_length=len(worker_names))),  # type: ignore[valid-type]
    )


class SynthesisEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=1_500)
    recommendations: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=4
    )
    confidence: float = Field(ge=0, le=1)


class SynthesisReview(BaseModel):
    """A person's answer to a synthesis sent to them: accept it, edit it, or run named
    workers again (with a note for them) and synthesise anew."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "edit", "rerun"]
    synthesis: SynthesisEdit | None = None
    workers: list[str] = Field(default_factory=list, max_length=MAX_WORKERS)
    note: str = Field(default="", max_length=2_000)

    @model_validator(mode="after")
    def _complete(self) -> SynthesisReview:
        if self.action == "edit" and self.synthesis is None:
            raise ValueError("synthesis: an edit gives the synthesis to keep")
        if self.action != "edit" and self.synthesis is not None:
            raise ValueError("synthesis: only an edit gives a synthesis")
        if self.action == "rerun" and not self.workers:
            raise ValueError("workers: name the workers to run again")
        if self.action != "rerun" and self.workers:
            raise ValueError("workers: only a rerun names workers")
        if len(set(self.workers)) != len(self.workers):
            raise ValueError("workers: name each worker once")
        return self


@cache
def synthesis_review_schema(worker_names: tuple[str, ...]) -> type[SynthesisReview]:
    names: Any = Literal[worker_names]
    return create_model(
        "SynthesisReview",
        __base__=SynthesisReview,
        workers=(list[names], Field(default_factory=list, max_length=len(worker_names))),
    )
