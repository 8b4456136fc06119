"""A run's tokens and estimated cost per model, from its recorded usage and the
operator's prices (`MAS_MODEL_PRICES`, per million tokens).

Usage is what the run's state holds: every agent call, failed ones and a team's
rolled-up calls included. A call records which model answered it; calls of older
threads, which did not, count as "unknown".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mas.settings import ModelPrice
from mas_graphs.state.common import CallUsage

__all__ = ["CostEstimate", "ModelCost", "estimate_cost", "price_of"]

UNKNOWN_MODEL = "unknown"
ANY_MODEL = "*"


@dataclass(frozen=True)
class ModelCost:
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float | None  # None: no price set for this model


@dataclass(frozen=True)
class CostEstimate:
    rows: list[ModelCost]

    @property
    def tokens(self) -> int:
        return sum(row.input_tokens + row.output_tokens for row in self.rows)

    @property
    def cost(self) -> float | None:
        """The run's estimated cost; None when no model it used has a price."""
        priced = [row.cost for row in self.rows if row.cost is not None]
        return sum(priced) if priced else None

    @property
    def unpriced(self) -> list[str]:
        return [row.model for row in self.rows if row.cost is None]

    def summary(self) -> dict[str, Any]:
        """As `mas show --json` gives it."""
        return {"tokens": self.tokens, "cost": self.cost, "models": [asdict(r) for r in self.rows]}


def price_of(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The price of `model` (`provider:name`): its own, else its provider's, else `*`'s."""
    provider = model.partition(":")[0]
    return prices.get(model) or prices.get(provider) or prices.get(ANY_MODEL)


def estimate_cost(usage: Iterable[CallUsage], prices: Mapping[str, ModelPrice]) -> CostEstimate:
    """Calls, tokens and cost per model, in the order the models were first used."""
    totals: dict[str, list[int]] = {}
    for call in usage:
        row = totals.setdefault(call.get("model") or UNKNOWN_MODEL, [0, 0, 0])
        row[0] += call["calls"]
        row[1] += call["input_tokens"]
        row[2] += call["output_tokens"]
    rows = []
    for model, (calls, tokens_in, tokens_out) in totals.items():
        price = price_of(model, prices)
        cost = (
            None if price is None else (tokens_in * price.input + tokens_out * price.output) / 1e6
        )
        rows.append(ModelCost(model, calls, tokens_in, tokens_out, cost))
    return CostEstimate(rows)
