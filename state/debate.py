"""Debate state, its validated input, and the structured output of its agents."""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)
from typing_extensions import TypedDict

from mas_graphs.state.common import (
    AGENT_NAME,
    INPUT_NAMES,
    PART_NAME,
    CallUsage,
    ModelChoice,
    TokenBudget,
    TokenLimits,
    TokenLimitsState,
    UsageTotal,
    at_least,
    growing,
)

MAX_QUESTION_CHARS = 20_000
MIN_DEBATERS, MAX_DEBATERS = 2, 6
MAX_ROUNDS = 6
INCONCLUSIVE = "inconclusive"
# Points a debater or judge may list; small bounds keep llama.cpp grammars small.
MAX_POINTS = 3

Strategy = Literal["judge", "majority_vote", "weighted", "confidence", "human"]
# sides: each debater argues an assigned position (a stance) and the outcome names one;
# answer: each debater solves the question (an approach, not a side), the outcome is an
# answer they give (Du et al. 2023's multi-agent debate, e.g. for arithmetic).
Kind = Literal["sides", "answer"]
SamplingRole = Literal["debater", "judge", "gate", "single_agent", "self_consistency"]
VOTE_STRATEGIES = ("majority_vote", "weighted", "confidence")
# Samples must differ to be worth voting over; everyone else answers near-greedily.
DEFAULT_TEMPERATURES: dict[str, float] = {"self_consistency": 0.8}


# --- input -------------------------------------------------------------------------


class DebaterSpec(BaseModel):
    """One debater: its name (also the position it starts from) and its stance, or (kind
    'answer') its approach to the question; a role prompt around the model, or an agent
    registered in Python (`agent`) that argues it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PART_NAME, description="Identifier, e.g. 'affirmative'.")
    stance: str = Field(min_length=1, max_length=4_000, description="What this debater argues.")
    agent: str | None = Field(
        default=None, pattern=AGENT_NAME, description="A registered agent argues this side."
    )


DEFAULT_STANCES: dict[str, tuple[DebaterSpec, ...]] = {
    "sides": (
        DebaterSpec(name="affirmative", stance="Argue that the answer is yes."),
        DebaterSpec(name="negative", stance="Argue that the answer is no."),
    ),
    "answer": (
        DebaterSpec(name="solver_a", stance="Work it out step by step."),
        DebaterSpec(name="solver_b", stance="Work it out, then check every step."),
        DebaterSpec(name="solver_c", stance="Work it out a second way and compare."),
    ),
}


class DebateInput(TokenLimits):
    """What a debate run starts from; validated before any work starts."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        validation_alias=AliasChoices("question", "proposition"),
        description="The question or proposition to debate.",
    )
    kind: Kind = Field(
        default="sides",
        description="sides: debaters argue assigned positions; answer: debaters solve the "
        "question and the outcome is an answer they gave.",
    )
    stances: list[DebaterSpec] = Field(min_length=MIN_DEBATERS, max_length=MAX_DEBATERS)
    rounds: int = Field(default=2, ge=1, le=MAX_ROUNDS)
    strategy: Strategy = Field(
        description="judge (default for sides), human (sides only), majority_vote (default "
        "for answer), weighted, or confidence."
    )
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
        default=True,
        description="End early once every debater holds the same position or one concedes.",
    )
    compare: bool = Field(
        default=False,
        description="Also run a single agent and a self-consistency vote on the same budget.",
    )
    temperatures: dict[SamplingRole, Annotated[float, Field(ge=0, le=2)]] = Field(
        default_factory=dict,
        validate_default=True,
        description="Sampling temperature per role; self_consistency defaults to 0.8.",
    )
    seed: int = Field(default=0, ge=0, le=2**31, description="Samples use seed, seed+1, ...")
    judge_model: ModelChoice | None = Field(
        default=None, description="ollama:<model>, llamacpp or a registered model name."
    )
    debater_models: dict[str, ModelChoice] = Field(
        default_factory=dict, description="Model per debater name (as judge_model)."
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind = data.get("kind", "sides")
        if kind not in DEFAULT_STANCES:
            return data  # the field's own validation names the problem
        defaults = {
            "stances": [s.model_dump() for s in DEFAULT_STANCES[kind]],
            "strategy": "judge" if kind == "sides" else "majority_vote",
        }
        return {**defaults, **{k: v for k, v in data.items() if v is not None or k not in defaults}}

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

    @field_validator("temperatures")
    @classmethod
    def _with_default_temperatures(cls, given: dict[str, float]) -> dict[str, float]:
        return {**DEFAULT_TEMPERATURES, **given}

    @model_validator(mode="after")
    def _strategy_fits_kind(self) -> DebateInput:
        if self.kind == "answer" and self.strategy not in VOTE_STRATEGIES:
            raise ValueError(
                f"strategy '{self.strategy}' needs sides to judge; a debate of kind 'answer' "
                f"is decided by a vote: {', '.join(VOTE_STRATEGIES)}"
            )
        return self


class DebateOptions(BaseModel):
    """How the graph is built: per-call timeouts and retry policy (kept for resume)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    debater_timeout_s: float = Field(default=300.0, gt=0, le=3_600)
    agent_timeout_s: float = Field(default=600.0, gt=0, le=3_600)
    max_attempts: int = Field(default=2, ge=1, le=10)
    backoff_s: float = Field(default=1.0, ge=0, le=60)


# --- structured agent output ----------------------------------------------------------


Point = Annotated[str, Field(max_length=160, description="One point, in one sentence.")]


class DebaterTurn(BaseModel):
    """A debater's turn for its side (round 1: no concession to make yet)."""

    argument: str = Field(
        max_length=1_200,
        description="Your argument for your side, in two to four sentences of your own.",
        json_schema_extra=at_least(80),
    )
    rebuttals: list[Point] = Field(
        default_factory=list,
        max_length=MAX_POINTS,
        description="Short answers to the other sides' arguments (none in round 1).",
    )
    confidence: float = Field(ge=0, le=1, description="How sure you are that your side is right.")


class RebuttalTurn(DebaterTurn):
    conceded: bool = Field(
        default=False,
        description="true only if the other side's arguments have convinced you to give up "
        "your side; otherwise false.",
    )


class SolverTurn(BaseModel):
    """A turn of a debate of kind 'answer': an answer and how it was reached."""

    reasoning: str = Field(
        max_length=400, description="How you reach the answer, step by step, briefly."
    )
    answer: str = Field(
        max_length=200, description="The final answer only, e.g. a number or a short phrase."
    )
    confidence: float = Field(ge=0, le=1, description="How sure you are that it is right.")


class SideAnswer(BaseModel):
    position: str = Field(description="The position you take.")
    answer: str = Field(
        max_length=1_200,
        description="Your answer to the question, in two to four sentences.",
        json_schema_extra=at_least(40),
    )
    confidence: float = Field(ge=0, le=1, description="How sure you are (1 = certain).")


class FreeAnswer(SolverTurn):
    """A baseline's answer to a question of kind 'answer': a solver's turn, alone."""

    confidence: float = Field(ge=0, le=1, description="How sure you are (1 = certain).")


class JudgeVerdict(BaseModel):
    winner: str = Field(description="The winning position, or 'inconclusive'.")
    confidence: float = Field(ge=0, le=1, description="How sure you are of the winner.")
    reasoning: str = Field(
        max_length=1_200,
        description="Why, in two to four sentences.",
        json_schema_extra=at_least(40),
    )
    decisive_for: list[Point] = Field(
        default_factory=list,
        max_length=MAX_POINTS,
        description="The arguments that decided it for the winner.",
    )
    decisive_against: list[Point] = Field(
        default_factory=list,
        max_length=MAX_POINTS,
        description="The strongest arguments against the winner.",
    )


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
    listed: dict[str, Any] = {INPUT_NAMES: "Positions"}
    or_none: dict[str, Any] = {INPUT_NAMES: "Positions, or inconclusive"}
    shapes = {
        "one": (one, Field(json_schema_extra=listed)),
        "verdict": (verdict, Field(json_schema_extra=or_none)),
        "many": (list[one], Field(default_factory=list, max_length=len(names))),
    }
    overrides: dict[str, Any] = {name: shapes[kind] for name, kind in fields}
    return create_model(schema.__name__, __base__=schema, **overrides)


NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def normalize_answer(text: str) -> str:
    """An answer as votes compare it: its last number if it has one ('= 1,204.0' -> '1204'),
    else its words in lower case."""
    numbers = NUMBER.findall(text)
    if numbers:
        value = float(numbers[-1].replace(",", ""))
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return " ".join(text.lower().strip(" .!").split())[:200] or "(no answer)"


# --- graph state ------------------------------------------------------------------------


class Turn(TypedDict):
    """One debater's contribution to one round (or its failure to contribute)."""

    round: int
    speaker: str
    stance: str
    status: Literal["ok", "failed"]
    # sides: the side held (its own, or the one it conceded to); answer: the normalised answer
    position: str | None
    answer: str | None
    argument: str
    rebuttals: list[str]
    confidence: float | None
    conceded: bool
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


class DebateInputState(TokenLimitsState):
    """A debate's input once its first node has validated it: every field
    of `DebateInput`, defaults filled in, so nodes read them without defaults of their own."""

    question: str
    kind: Kind
    stances: list[dict[str, Any]]
    rounds: int
    strategy: Strategy
    gate_threshold: float | None
    escalate_below: float | None
    weights: dict[str, float]
    early_stop: bool
    compare: bool
    temperatures: dict[str, float]
    seed: int
    judge_model: str | None
    debater_models: dict[str, str]


class DebateState(DebateInputState, total=False):
    """The input, and the channels the run writes as it goes."""

    gate: GateRecord
    round: int
    transcript: Annotated[list[Turn], growing()]
    reviews: Annotated[list[RoundReview], growing()]
    stopped: Stop
    draft_verdict: Verdict
    verdict: Verdict
    failures: Annotated[list[AgentFailure], growing()]
    baselines: Annotated[list[BaselineAnswer], growing()]
    comparison: dict[str, Any]
    usage: Annotated[list[CallUsage], growing()]
    totals: dict[str, UsageTotal]


class DebaterTask(TypedDict):
    """What one `Send` hands a debater: its side, the round, and what it must rebut."""

    question: str
    kind: Kind
    debater: dict[str, Any]
    stances: list[dict[str, Any]]
    round: int
    rounds: int
    opponents: list[Turn]
    own_previous: Turn | None
    temperature: float | None
    seed: int
    model: str | None  # the model the input picks for this debater, if any
    token_budget: TokenBudget | None


class BaselineTask(TypedDict):
    question: str
    kind: Kind
    stances: list[dict[str, Any]]
    method: Literal["single_agent", "self_consistency"]
    sample: int
    samples: int
    temperature: float | None
    seed: int
    token_budget: TokenBudget | None
