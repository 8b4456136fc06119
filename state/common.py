"""State pieces and reducers shared by every pattern."""

from __future__ import annotations

from typing import TypedDict, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class CallUsage(TypedDict):
    """One agent call's cost: model calls made (repairs included), tokens, latency."""

    agent: str
    calls: int
    input_tokens: int
    output_tokens: int
    latency_ms: float


def merge_dicts(left: dict[K, V] | None, right: dict[K, V] | None) -> dict[K, V]:
    """Reducer for keyed results written by parallel branches: later keys win."""
    return {**(left or {}), **(right or {})}


def usage_totals(usage: list[CallUsage]) -> dict[str, CallUsage]:
    """Totals per agent plus an `all` row."""
    totals: dict[str, CallUsage] = {}
    for call in usage:
        for key in (call["agent"], "all"):
            row = totals.setdefault(
                key,
                CallUsage(agent=key, calls=0, input_tokens=0, output_tokens=0, latency_ms=0.0),
            )
            row["calls"] += call["calls"]
            row["input_tokens"] += call["input_tokens"]
            row["output_tokens"] += call["output_tokens"]
            row["latency_ms"] = round(row["latency_ms"] + call["latency_ms"], 1)
    return totals
