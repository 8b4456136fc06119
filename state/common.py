"""State pieces and reducers shared by every pattern."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NamedTuple, NotRequired, TypeVar

from langgraph.channels.delta import DeltaChannel
from pydantic import AfterValidator, BaseModel, Field, ValidationError
from typing_extensions import TypedDict

K = TypeVar("K")
V = TypeVar("V")


# Marks a schema field whose allowed values are names from the run's input (workers,
# debaters): agents' instructions point at where the user message lists them, so the
# names never appear in a system message.
INPUT_NAMES = "x-input-names"


def at_least(chars: int) -> dict[str, Any]:
    """A JSON-schema `minLength` for constrained decoding only (pydantic does not check it):
    it stops a small model from answering a field with one word, while a provider without
    constrained decoding is not failed for a short answer."""
    return {"minLength": chars}


class CallUsage(TypedDict):
    """One agent call's cost: model calls made (repairs included), tokens, latency, whether
    it produced a valid output, and what was done to its output (repairs, cuts)."""

    agent: str
    calls: int
    input_tokens: int
    output_tokens: int
    latency_ms: float
    ok: bool
    notes: list[str]
    # which model answered (`provider:model`), for its price; older threads' calls lack it
    model: NotRequired[str]


class UsageTotal(TypedDict):
    """Calls and cost per agent, failed calls included (a failure is not free)."""

    agent: str
    calls: int
    failed_calls: int
    input_tokens: int
    output_tokens: int
    latency_ms: float


def appended(state: list[V], writes: Sequence[list[V]]) -> list[V]:
    """Reducer of a `DeltaChannel` list: the writes' items, appended in order."""
    return [*state, *(item for write in writes for item in write)]


def extended_per_key(
    state: dict[str, list[V]], writes: Sequence[dict[str, list[V]]]
) -> dict[str, list[V]]:
    """Reducer of a `DeltaChannel` of lists per key (e.g. per scenario): each write's
    items appended to its key's list."""
    merged = {key: list(items) for key, items in state.items()}
    for write in writes:
        for key, items in write.items():
            merged.setdefault(key, []).extend(items)
    return merged


def growing() -> DeltaChannel[Any]:
    """A channel for a list that only grows, stored as deltas: a checkpoint keeps each
    superstep's new items (and a whole snapshot every 100 updates) rather than the whole
    list again, so a long run's checkpoint bytes grow with its length, not its square.
    One per field (`Annotated[list[X], growing()]`): a channel object is not shared."""
    return DeltaChannel(appended)


def growing_per_key() -> DeltaChannel[Any]:
    """`growing()` for a dict of lists, e.g. each scenario's batch records."""
    return DeltaChannel(extended_per_key)


def merge_dicts(left: dict[K, V] | None, right: dict[K, V] | None) -> dict[K, V]:
    """Reducer for keyed results written by parallel branches: later keys win."""
    return {**(left or {}), **(right or {})}


def usage_totals(usage: list[CallUsage]) -> dict[str, UsageTotal]:
    """Totals per agent plus an `all` row."""
    totals: dict[str, UsageTotal] = {}
    for call in usage:
        for key in (call["agent"], "all"):
            row = totals.setdefault(
                key,
                UsageTotal(
                    agent=key,
                    calls=0,
                    failed_calls=0,
                    input_tokens=0,
                    output_tokens=0,
                    latency_ms=0.0,
                ),
            )
            row["calls"] += call["calls"]
            row["failed_calls"] += 0 if call["ok"] else call["calls"]
            row["input_tokens"] += call["input_tokens"]
            row["output_tokens"] += call["output_tokens"]
            row["latency_ms"] = round(row["latency_ms"] + call["latency_ms"], 1)
    return totals


# --- token budgets ---------------------------------------------------------------------

MAX_TOKEN_BUDGET = 1_000_000_000


class TokenLimits(BaseModel):
    """Token budgets a run's input may set (the patterns whose agents call models)."""

    max_tokens_total: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKEN_BUDGET,
        description="Tokens (input and output) the whole run may spend: every agent, "
        "retry, team and resume. Checked before each model call; once reached the run "
        "stops as over_budget and keeps what it finished.",
    )
    max_tokens_per_agent: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKEN_BUDGET,
        description="Tokens any one agent may spend; an agent over it fails like any "
        "failed agent (a fallback, a failed turn, a compensation). Teams inherit it.",
    )


class TokenLimitsState(TypedDict):
    max_tokens_total: int | None
    max_tokens_per_agent: int | None


class TokenBudget(TypedDict):
    """What a node tells its run's token meter: the limits, and the tokens each agent had
    spent when its task was handed out. A graph's state gives it from its usage; a `Send`
    task, which is not the state, carries it (`token_budget`)."""

    max_tokens_total: int | None
    max_tokens_per_agent: int | None
    spent: dict[str, int]


def call_tokens(call: CallUsage) -> int:
    return call["input_tokens"] + call["output_tokens"]


def budget_of(state: Mapping[str, Any]) -> TokenBudget | None:
    """The token budget a node's input carries: a task's own, or a graph state's limits
    and usage; None for a pattern (or an older thread) without budgets."""
    if "token_budget" in state:
        return state["token_budget"]  # type: ignore[no-any-return]
    if "max_tokens_total" not in state and "max_tokens_per_agent" not in state:
        return None
    spent: dict[str, int] = {}
    for call in state.get("usage", []):
        spent[call["agent"]] = spent.get(call["agent"], 0) + call_tokens(call)
    return TokenBudget(
        # a run's first node sees its input as given, before validation fills defaults
        max_tokens_total=state.get("max_tokens_total"),
        max_tokens_per_agent=state.get("max_tokens_per_agent"),
        spent=spent,
    )


# --- model choices in input -----------------------------------------------------------------

# What a run's input may say to pick a model: an Ollama model, the embedded default, or
# a name the operator registered. Never code (`factory:`) and never a file (`llamacpp:`
# with a path): those come only from the environment or the Python API.
OLLAMA_CHOICE = re.compile(r"^ollama:[A-Za-z0-9][A-Za-z0-9_.:/-]{0,199}$")
# A name something is registered under (a model, an agent), as a run's input gives it.
AGENT_NAME = r"^[a-z][a-z0-9_.-]{0,63}$"
MODEL_NAME = re.compile(AGENT_NAME)
# A name the input gives to one of its own parts: a worker, a debater, a tool server.
PART_NAME = r"^[a-z][a-z0-9_-]{0,39}$"
# Model calls in flight at once across a run and its teams, unless the input says.
DEFAULT_MAX_PARALLEL = 8
EMBEDDED_CHOICE = "llamacpp"


def check_model_choice(choice: str) -> str:
    """`choice` if a run's input may use it to pick a model; else `ValueError` saying why."""
    if choice.startswith("factory:"):
        raise ValueError(
            "factory: model specs are accepted only from the environment (MAS_MODEL) or "
            "the Python API, never from a run's input"
        )
    if choice.startswith("llamacpp:"):
        raise ValueError(
            "a GGUF path is not accepted from a run's input; the operator can register "
            "the model under a name (MAS_MODELS or mas.register_model) for input to use"
        )
    if choice == EMBEDDED_CHOICE or OLLAMA_CHOICE.match(choice) or MODEL_NAME.match(choice):
        return choice
    raise ValueError(
        f"{choice[:60]!r} is not a model choice; use ollama:<model>, llamacpp or a "
        "registered model name"
    )


ModelChoice = Annotated[str, AfterValidator(check_model_choice)]


class ModelPick(NamedTuple):
    """A model a run's input picks for one of its agents (e.g. a debate's judge)."""

    field: str  # where the input says it, for errors: e.g. "debater_models.negative"
    choice: str


def validation_problems(error: ValidationError, *, prefix: str = "") -> str:
    """'field.path: problem' per problem, e.g. 'task: String should have at least 1 character'."""
    problems = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "input"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{prefix}{where}: {message}")
    more = len(error.errors()) - 5
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
