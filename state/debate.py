"""Debate state, its validated input, and the structured output of its agents."""

from __future__ import annotations

import operator
from functools import cache
from typing import Annotated, Any, Literal, TypedDict

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, create_model, field_validator

from state.common import CallUsage, ModelChoice

DEBATER_NAME = r"^[a-z][a-z0-9_-]{0,39}$"
MAX_QUESTION_CHARS = 20_000
MIN_DEBATERS, MAX_DEBATERS = 2, 6
MAX_ROUNDS = 6
INCONCLUSIVE = "inconclusive"
# Points a debater or judge may list; small bounds keep llama.cpp grammars small.
MAX_POINTS = 4

Strategy = Literal["judge", "majority_vote", "weighted", "confidence", "human"]


# --- input -------------------------------------------------------------------------


class DebaterSpec(BaseModel):
    """One debater: its name (also the position it starts from) and its stance instructions."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=DEBATER_NAME, description="Identifier, e.g. 'affirmative'.")
    stance: str = Field(min_length=1, max_length=4_000, description="What this side argues.")


DEFAULT_STANCES: tuple[DebaterSpec, ...] = (
    DebaterSpec(
        name="affirmative", stance="Argue that the proposition is true (the answer is yes)."
    ),
    DebaterSpec(name="negative", stance="Argue that the proposition is false (the answer is no)."),
)


class DebateInput(BaseModel):
    """What a debate run starts from; validated before any work starts."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        validation_alias=AliasChoices("question", "proposition"),
        description="The question or proposition to debate.",
    )
    stances: list[DebaterSpec] = Field(
        default_factory=lambda: list(DEFAULT_STANCES),
        min_length=MIN_DEBATERS,
        max_length=MAX_DEBATERS,
    )
    rounds: int = Field(default=2, ge=1, le=MAX_ROUNDS)
    strategy: Strategy = "judge"
    gate_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Skip the debate when one agent's first answer is at least this confident.",
    )
    escalate_below: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Send a judge verdict less confident than this to a person.",
    )
    weights: dict[str, float] = Field(
        default_factory=dict, description="Vote weight per debater (strategy 'weighted')."
    )
    early_stop: bool = Field(
        default=True, description="Ask the judge after each round whether the debate is over."
    )
    compare: bool = Field(
        default=False,
        description="Also run a single agent and a self-consistency vote on the same budget.",
    )
    judge_model: ModelChoice | None = Field(
        default=None, description="ollama:<model>, llamacpp or a registered model name."
    )
    debater_models: dict[str, ModelChoice] = Field(
        default_factory=dict, description="Model per debater name (as judge_model)."
    )

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, question: str) -> str:
        if not question.strip():
            raise ValueError("question must not be blank")
        return question.strip()

    @field_validator("stances")
    @classmethod
    def _usable_names(cls, stances: list[DebaterSpec]) -> list[DebaterSpec]:
        names = [s.name for s in stances]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"debater names must be unique; repeated: {', '.join(dupes)}")
        if INCONCLUSIVE in names:
            raise ValueError(f"'{INCONCLUSIVE}' is reserved for undecided verdicts")
        return stances

    @field_validator("weights")
    @classmethod
    def _weights_not_negative(cls, weights: dict[str, float]) -> dict[str, float]:
        if negative := sorted(name for name, weight in weights.items() if weight < 0):
            raise ValueError(f"weights must not be negative: {', '.join(negative)}")
        return weights


class DebateOptions(BaseModel):
    """How the graph is built: per-call timeouts and retry policy (kept for resume)."""

    model_config = ConfigDict(extra="forbid")

    debater_timeout_s: float = Field(default=300.0, gt=0, le=3_600)
    agent_timeout_s: float = Field(default=600.0, gt=0, le=3_600)
    max_attempts: int = Field(default=2, ge=1, le=10)
    backoff_s: float = Field(default=1.0, ge=0, le=60)


# --- structured agent output ----------------------------------------------------------


Point = Annotated[str, Field(max_length=400, description="one point, in one sentence")]


class DebaterTurn(BaseModel):
    position: str = Field(description="The position you hold now: a debater name.")
    argument: str = Field(
        max_length=1_500, description="your argument for your position, in two to four sentences"
    )
    rebuttals: list[Point] = Field(default_factory=list, max_length=MAX_POINTS)
    confidence: float = Field(ge=0, le=1)


class SoloAnswer(BaseModel):
    position: str = Field(description="The position you take: a debater name.")
    answer: str = Field(max_length=1_500, description="your answer, in two to four sentences")
    confidence: float = Field(ge=0, le=1)


class RoundCheck(BaseModel):
    converged: bool = Field(description="The debaters now hold the same position.")
    conceded: list[str] = Field(default_factory=list, max_length=MAX_DEBATERS)
    reason: str = Field(max_length=600, description="why, in one sentence")


class JudgeVerdict(BaseModel):
    winner: str = Field(description="The winning position, or 'inconclusive'.")
    confidence: float = Field(ge=0, le=1)
    reasoning: str = Field(max_length=1_500, description="your reasoning, in two to four sentences")
    decisive_for: list[Point] = Field(default_factory=list, max_length=MAX_POINTS)
    decisive_against: list[Point] = Field(default_factory=list, max_length=MAX_POINTS)


def with_positions(schema: type[BaseModel], names: list[str], **fields: str) -> Any:
    """`schema` with the given fields' values restricted to debater names (an enum), so
    constrained decoding cannot invent a position. `fields` maps field -> 'one' | 'many'
    | 'verdict' (a name or 'inconclusive')."""
    return _positions_schema(schema, tuple(names), tuple(sorted(fields.items())))


# Cached: building a model costs about a millisecond, and the structured-output caches
# key on the class, so a fresh class per call would also grow them without bound.
@cache
def _positions_schema(
    schema: type[BaseModel], names: tuple[str, ...], fields: tuple[tuple[str, str], ...]
) -> Any:
    one: Any = Literal[names]
    verdict: Any = Literal[(*names, INCONCLUSIVE)]
    shapes = {
        "one": (one, ...),
        "verdict": (verdict, ...),
        "many": (list[one], Field(default_factory=list, max_length=len(names))),
    }
    overrides: dict[str, Any] = {name: shapes[kind] for name, kind in fields}
    return create_model(schema.__name__, __base__=schema, **overrides)


# --- graph state ------------------------------------------------------------------------


class Turn(TypedDict):
    """One debater's contribution to one round (or its failure to contribute)."""

    round: int
    speaker: str
    stance: str
    status: Literal["ok", "failed"]
    position: str | None
    argument: str
    rebuttals: list[str]
    confidence: float | None
    error: str | None


class GateRecord(TypedDict):
    position: str | None
    answer: str
    confidence: float | None
    threshold: float
    skipped_debate: bool
    reason: str


class RoundReview(TypedDict):
    round: int
    converged: bool
    conceded: list[str]
    reason: str


class Stop(TypedDict):
    round: int
    reason: Literal["gate", "converged", "conceded", "round_limit"]
    note: str


class Verdict(TypedDict):
    decided_by: Literal["gate", "judge", "majority_vote", "weighted", "confidence", "human"]
    winner: str
    confidence: float
    reasoning: str
    decisive_for: list[str]
    decisive_against: list[str]
    tally: dict[str, float]
    note: str


class AgentFailure(TypedDict):
    agent: str
    round: int | None
    error: str


class BaselineAnswer(TypedDict):
    method: Literal["single_agent", "self_consistency"]
    sample: int
    position: str | None
    answer: str
    confidence: float | None
    error: str | None


class DebateState(TypedDict, total=False):
    question: str
    stances: list[dict[str, Any]]
    rounds: int
    strategy: Strategy
    gate_threshold: float | None
    escalate_below: float | None
    weights: dict[str, float]
    early_stop: bool
    compare: bool
    judge_model: str | None
    debater_models: dict[str, str]
    gate: GateRecord
    round: int
    transcript: Annotated[list[Turn], operator.add]
    reviews: Annotated[list[RoundReview], operator.add]
    stopped: Stop
    draft_verdict: Verdict
    verdict: Verdict
    failures: Annotated[list[AgentFailure], operator.add]
    baselines: Annotated[list[BaselineAnswer], operator.add]
    comparison: dict[str, Any]
    usage: Annotated[list[CallUsage], operator.add]
    totals: dict[str, CallUsage]


class DebaterTask(TypedDict):
    """What one `Send` hands a debater: its side, the round, and what it must rebut."""

    question: str
    debater: dict[str, Any]
    stances: list[dict[str, Any]]
    round: int
    rounds: int
    opponents: list[Turn]
    own_previous: Turn | None


class BaselineTask(TypedDict):
    question: str
    stances: list[dict[str, Any]]
    method: Literal["single_agent", "self_consistency"]
    sample: int
    samples: int
