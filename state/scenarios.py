"""State of the multi-scenario fan-out: the validated input, the per-scenario run records
that batches update, the milestone timeline and the aggregate."""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import TypedDict

from mas_graphs.state.common import growing, growing_per_key, merge_dicts

MAX_SCENARIOS = 12
MAX_SIZE = 100_000
MAX_MILESTONES = 20
MAX_KNOBS, MAX_KNOB_CHARS = 32, 1_000  # a scenario's characteristics
SyncMode = Literal["free", "milestone", "lockstep"]
ScenarioStatus = Literal["running", "done", "failed", "timed_out"]

# simple / medium / complex: size 1x / 3x / 8x the base size, budgets 30 / 90 / 300 s,
# batches growing with difficulty so bigger scenarios pay less per-batch overhead.
DEFAULT_SCENARIOS: dict[str, dict[str, Any]] = {
    "simple": {"scale": 1.0, "budget_s": 30.0, "batch_size": 5, "difficulty": 0.0},
    "medium": {"scale": 3.0, "budget_s": 90.0, "batch_size": 10, "difficulty": 0.5},
    "complex": {"scale": 8.0, "budget_s": 300.0, "batch_size": 20, "difficulty": 1.0},
}
DEFAULT_MILESTONES = (0.3, 0.5, 0.7, 0.9, 1.0)
# Scenarios at a sync point wait this long for one behind, then go on without it.
DEFAULT_SYNC_TIMEOUT_S = 120.0


# --- input ------------------------------------------------------------------------------


class ScenarioSpec(BaseModel):
    """One scenario. A scenario named like a default (simple, medium, complex) takes that
    default's values for every field it does not set."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    scale: float = Field(default=1.0, gt=0, le=1_000, description="Size as a multiple of base.")
    budget_s: float = Field(default=60.0, gt=0, le=86_400, description="Own processing time.")
    batch_size: int = Field(default=10, ge=1, le=10_000)
    difficulty: float = Field(default=0.0, ge=0, le=1)
    characteristics: dict[
        Annotated[str, Field(max_length=40)],
        Annotated[str, Field(max_length=MAX_KNOB_CHARS)] | int | float | bool,
    ] = Field(
        default_factory=dict,
        max_length=MAX_KNOBS,
        description="Skill-specific knobs for making the inputs.",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("name") in DEFAULT_SCENARIOS:
            return {**DEFAULT_SCENARIOS[data["name"]], **data}
        return data


class ScenariosInput(BaseModel):
    """What a scenarios run starts from; validated before any work starts."""

    model_config = ConfigDict(extra="forbid")

    skill: str = Field(
        default="rank",
        min_length=1,
        max_length=100,
        description="A registered skill name (built-in, or from a plugin's entry point).",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="The skill's params.")
    base_size: int = Field(default=20, ge=1, le=MAX_SIZE)
    scenarios: list[ScenarioSpec] = Field(
        default_factory=lambda: [ScenarioSpec(name=name) for name in DEFAULT_SCENARIOS],
        min_length=1,
        max_length=MAX_SCENARIOS,
    )
    sync: SyncMode = "milestone"
    milestones: list[float] = Field(
        default_factory=lambda: list(DEFAULT_MILESTONES), min_length=1, max_length=MAX_MILESTONES
    )
    seed: int = Field(default=0, ge=0, le=2**31)
    restart: list[str] = Field(
        default_factory=list,
        max_length=MAX_SCENARIOS,
        description="On a finished thread, a new run that restarts these failed or "
        "timed-out scenarios from their last finished batch, keeping the others' results "
        "(`mas resume THREAD --restart NAME`).",
    )
    sync_timeout_s: float | None = Field(
        default=DEFAULT_SYNC_TIMEOUT_S,
        gt=0,
        le=86_400,
        description="How long scenarios that reached a sync point wait for one behind: "
        "then they go on, and it is recorded late there (it joins a later sync point if "
        "it catches up). None: wait for all. The last sync point waits for every "
        "scenario's end (each within its budget_s): the comparison needs them all.",
    )

    @field_validator("scenarios")
    @classmethod
    def _unique_names(cls, scenarios: list[ScenarioSpec]) -> list[ScenarioSpec]:
        names = [s.name for s in scenarios]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"scenario names must be unique; repeated: {', '.join(dupes)}")
        return scenarios

    @field_validator("milestones")
    @classmethod
    def _rising_fractions(cls, milestones: list[float]) -> list[float]:
        if any(not 0 < m <= 1 for m in milestones):
            raise ValueError("milestones are fractions of the work in (0, 1], e.g. 0.5")
        if any(b <= a for a, b in itertools.pairwise(milestones)):
            raise ValueError("milestones must rise strictly")
        # Every run ends at a sync point at 100 %, so the aggregate sees finished scenarios.
        return milestones if milestones[-1] == 1 else [*milestones, 1.0]

    @model_validator(mode="after")
    def _sizes_in_bounds(self) -> ScenariosInput:
        for spec in self.scenarios:
            if scenario_size(self.base_size, spec.scale) > MAX_SIZE:
                raise ValueError(
                    f"scenarios[{spec.name}].scale: {spec.scale} x base_size {self.base_size} "
                    f"exceeds {MAX_SIZE} items"
                )
        return self


def scenario_size(base_size: int, scale: float) -> int:
    return max(1, math.ceil(base_size * scale - 1e-9))


class ScenariosOptions(BaseModel):
    """How the graph is built: per-batch timeout and retry policy (kept for resume)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_timeout_s: float = Field(default=600.0, gt=0, le=3_600)
    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_s: float = Field(default=1.0, ge=0, le=60)


# --- graph state ----------------------------------------------------------------------------


class BatchRecord(TypedDict):
    index: int
    start: int
    end: int
    elapsed_ms: float
    work_ms: float
    attempts: int
    metrics: dict[str, float]


class ScenarioRun(TypedDict):
    """A scenario's durable record, of a fixed size: each finished batch writes a new
    version of it, and its batch record goes to the growing `batches` channel."""

    name: str
    size: int
    budget_s: float
    batch_size: int
    difficulty: float
    characteristics: dict[str, Any]
    seed: int
    status: ScenarioStatus
    items_done: int
    elapsed_ms: float
    work_ms: float
    batch_count: int
    errors: list[str]


class ScenarioSnapshot(TypedDict):
    status: ScenarioStatus
    items_done: int
    pct: float
    elapsed_ms: float
    quality: dict[str, float]
    # still running but short of this sync point when its deadline passed
    late: bool


class MilestoneRecord(TypedDict):
    index: int
    label: str
    at_ms: float
    scenarios: dict[str, ScenarioSnapshot]


class PhaseTask(TypedDict):
    """What one `Send` hands a scenario's phase: its record and how far to go."""

    skill: str
    params: dict[str, Any]
    run: ScenarioRun
    target: int
    # When the others stop waiting (epoch seconds; None: no deadline). Part of the
    # checkpointed task, so a run resumed after a crash keeps the same deadline.
    deadline: float | None
    phase_batches: Annotated[list[BatchRecord], growing()]  # this phase's, as they finish


class ScenariosInputState(TypedDict):
    """A scenarios run's input once its first node has validated it: every field
    of `ScenariosInput`, defaults filled in, so nodes read them without defaults of their own."""

    skill: str
    params: dict[str, Any]
    base_size: int
    scenarios: list[dict[str, Any]]
    sync: SyncMode
    milestones: list[float]
    seed: int
    restart: list[str]
    sync_timeout_s: float | None


class ScenariosState(ScenariosInputState, total=False):
    """The input, and the channels the run writes as it goes."""

    started_at: float
    phase: int
    # when the current sync point stops waiting (epoch seconds; None: it waits for all)
    phase_deadline: float | None
    # every scenario failed once, and all were restarted with smaller batches
    auto_retried: bool
    runs: Annotated[dict[str, ScenarioRun], merge_dicts]
    batches: Annotated[dict[str, list[BatchRecord]], growing_per_key()]  # per scenario
    timeline: Annotated[list[MilestoneRecord], growing()]
    aggregate: dict[str, Any]
