"""Skills: the work a scenarios run measures, as a small protocol and a registry.

A skill makes its inputs for a scenario (seeded, so every process makes the same
ones), processes one batch of items with given params, and scores a batch's
outputs into named quality metrics. Metrics are per-item means (accuracy, share
answered), so batch scores combine into a scenario's by an item-weighted mean.

`process` is either `async def` (the skill waits on a model or I/O; it is timed by
the wall clock) or a plain function (pure-Python work; it runs in a worker thread
timed by that thread's CPU clock, so concurrent scenarios and other load on the
machine do not distort scaling measurements). A plain function is called one item at
a time, so a budget or timeout stops it between two items: a thread cannot be
stopped from outside.

Input names a skill by its registered name only. Register your own with
`register_skill(MySkill())` in Python, or, so every process (a `mas resume`, a
server worker) has it, through an entry point of your package:

    [project.entry-points."mas_graphs.skills"]
    my_skill = "my_package.skills:MySkill"    # a skill object or class
"""

from __future__ import annotations

import bisect
import random
import zlib
from collections.abc import Awaitable
from functools import lru_cache
from typing import Any, Literal, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from mas_graphs.nodes import prompts
from mas_graphs.nodes.context import MissingModelError
from mas_graphs.nodes.structured import StructuredOutputError, ask_structured
from mas_graphs.state.registry import Registry

Item = dict[str, Any]


class InputSpec(TypedDict):
    """What a skill makes a scenario's inputs from."""

    scenario: str
    size: int
    difficulty: float
    characteristics: dict[str, Any]
    seed: int


@runtime_checkable
class Skill(Protocol):
    name: str
    primary_metric: str
    params_model: type[BaseModel]

    def make_inputs(self, spec: InputSpec) -> list[Item]: ...

    def process(
        self, items: list[Item], params: Any, model: BaseChatModel | None
    ) -> list[Any] | Awaitable[list[Any]]: ...

    def score(self, items: list[Item], outputs: list[Any]) -> dict[str, float]: ...


def as_skill(name: str, found: Any) -> Skill:
    """A plugin's export as a skill: a skill object, or a class that makes one."""
    skill = found() if isinstance(found, type) else found
    if not isinstance(skill, Skill):
        raise TypeError(f"{found!r} is not a skill (see nodes/skills.py)")
    return skill


SKILLS: Registry[Skill] = Registry("skill", "mas_graphs.skills", as_skill)


def register_skill(skill: Skill) -> Skill:
    return SKILLS.register(skill.name, skill)


def resolve_skill(name: str) -> Skill:
    """The skill registered as `name`; `UnknownNameError` lists the registered ones."""
    return SKILLS.get(name)


def scenario_seed(seed: int, scenario: str) -> int:
    """A per-scenario seed, stable across processes (unlike `hash`)."""
    return zlib.crc32(f"{seed}:{scenario}".encode())


# --- the LLM skill: label reviews whose true sentiment is known ------------------------


POSITIVE = (
    "works perfectly",
    "arrived early and well packed",
    "is great value for the money",
    "made my week, I would buy it again",
    "exceeded what I expected",
)
NEGATIVE = (
    "broke after one day",
    "was a waste of money",
    "arrived damaged and late",
    "stopped working within a week",
    "is worse than the cheap one I had",
)
PRODUCTS = ("kettle", "lamp", "backpack", "keyboard", "blender", "tent")
# Hard items hedge: a clause pulling the other way, with the verdict still clear.
HEDGES = {
    "positive": "Support was slow to answer, but overall ",
    "negative": "The colour is lovely, but in the end ",
}


class LabelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewLabel(BaseModel):
    label: Literal["positive", "negative"]


class LabelSkill:
    """Sentiment labels for generated reviews; accuracy against the known labels."""

    name = "label"
    primary_metric = "accuracy"
    params_model: type[BaseModel] = LabelParams

    def make_inputs(self, spec: InputSpec) -> list[Item]:
        rng = random.Random(scenario_seed(spec["seed"], spec["scenario"]))
        items = []
        for index in range(spec["size"]):
            label = rng.choice(("positive", "negative"))
            phrase = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
            hedge = HEDGES[label] if rng.random() < spec["difficulty"] else ""
            product = rng.choice(PRODUCTS)
            text = f"{hedge}the {product} {phrase}."
            items.append(
                {
                    "id": f"{spec['scenario']}:{index}",
                    "text": text[0].upper() + text[1:],
                    "label": label,
                }
            )
        return items

    async def process(
        self, items: list[Item], params: Any, model: BaseChatModel | None
    ) -> list[Any]:
        if model is None:
            raise MissingModelError()
        labels: list[str | None] = []
        for item in items:
            try:
                reply = await ask_structured(
                    model,
                    agent="labeler",
                    system=prompts.LABELER,
                    user=f"Review: {prompts.quoted(item['text'])}",
                    schema=ReviewLabel,
                )
            except StructuredOutputError:
                labels.append(None)  # counts as wrong; `answered` shows how often
                continue
            labels.append(reply.value.label)
        return labels

    def score(self, items: list[Item], outputs: list[Any]) -> dict[str, float]:
        pairs = list(zip(items, outputs, strict=True))
        return {
            "accuracy": sum(item["label"] == out for item, out in pairs) / len(pairs),
            "answered": sum(out is not None for _, out in pairs) / len(pairs),
        }


# --- the pure-Python skill: rank numbers at a known O(n) or O(n^2) cost ----------------


class RankParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cost: Literal["linear", "quadratic"] = Field(
        default="linear",
        description="linear: each item costs the same (binary search plus fixed work); "
        "quadratic: each item scans the whole scenario, so total time grows with n^2.",
    )
    repeat: int = Field(default=1, ge=1, le=1_000, description="Work per item, multiplied.")


FIXED_STEPS = 64


@lru_cache(maxsize=32)
def population(seed: int, size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A scenario's values and the same values sorted."""
    rng = random.Random(seed)
    values = tuple(rng.randrange(10 * size) for _ in range(size))
    return values, tuple(sorted(values))


def mix(value: int, steps: int) -> int:
    """Fixed, deterministic busy work: an LCG run for `steps` steps."""
    for _ in range(steps):
        value = (value * 1_103_515_245 + 12_345) & 0x7FFFFFFF
    return value


class RankSkill:
    """The rank of each value among its scenario's values (how many are smaller).
    Deterministic, so the only thing that varies between scenarios is the cost."""

    name = "rank"
    primary_metric = "accuracy"
    params_model: type[BaseModel] = RankParams

    def make_inputs(self, spec: InputSpec) -> list[Item]:
        seed = scenario_seed(spec["seed"], spec["scenario"])
        values, ordered = population(seed, spec["size"])
        return [
            {
                "id": f"{spec['scenario']}:{index}",
                "value": value,
                "seed": seed,
                "size": spec["size"],
                "rank": bisect.bisect_left(ordered, value),
            }
            for index, value in enumerate(values)
        ]

    def process(self, items: list[Item], params: Any, model: BaseChatModel | None) -> list[Any]:
        ranks = []
        for item in items:
            values, ordered = population(item["seed"], item["size"])
            for _ in range(params.repeat):
                if params.cost == "quadratic":
                    rank = sum(1 for other in values if other < item["value"])
                else:
                    mix(item["value"], FIXED_STEPS)
                    rank = bisect.bisect_left(ordered, item["value"])
            ranks.append(rank)
        return ranks

    def score(self, items: list[Item], outputs: list[Any]) -> dict[str, float]:
        right = sum(item["rank"] == out for item, out in zip(items, outputs, strict=True))
        return {"accuracy": right / len(items)}


register_skill(LabelSkill())
register_skill(RankSkill())
