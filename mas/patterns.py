"""The patterns as the runner and CLI use them: a registered `PatternSpec` plus the
operator's limits and the project's errors.

Every pattern, built in or a user's, is a `PatternSpec` in one registry
(`mas_graphs.state.pattern.PATTERNS`); nothing here knows a pattern by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph.channels.delta import DeltaChannel
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer
from pydantic import BaseModel, ValidationError

from mas.errors import InputError, ResumeAnswerError, UnknownPatternError
from mas.settings import get_settings
from mas_graphs.nodes.context import AgentContext
from mas_graphs.nodes.inputs import InvalidInputError, validated_input
from mas_graphs.state.common import ModelPick, validation_problems
from mas_graphs.state.pattern import PATTERNS, AnswerFactory, PatternSpec, compiled

__all__ = ["Pattern", "delta_channels", "get_pattern", "known_patterns", "operator_limits"]


def known_patterns() -> list[str]:
    return PATTERNS.names()


@dataclass(frozen=True)
class Pattern:
    """A registered pattern, with the project's errors and the operator's limits."""

    spec: PatternSpec[Any, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    def parse(
        self, data: Any, limits: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split and validate raw input into (state input, build options), within the
        operator's `limits` (default: the settings')."""
        if not isinstance(data, dict):
            raise InputError(f"{self.name} input must be a JSON object, got {type(data).__name__}")
        option_fields = set(self.spec.options.model_fields)
        options = {k: v for k, v in data.items() if k in option_fields}
        state = {k: v for k, v in data.items() if k not in option_fields}
        try:
            parsed_state = validated_input(
                self.name,
                self.spec.input,
                state,
                self.spec.check,
                limits=limits or operator_limits(),
            )
        except InvalidInputError as error:
            raise InputError(str(error)) from None
        try:
            parsed_options: BaseModel = self.spec.parse_options(options)
        except ValidationError as error:
            raise InputError(f"invalid {self.name} input: {validation_problems(error)}") from None
        return parsed_state.model_dump(), parsed_options.model_dump()

    def build(
        self,
        checkpointer: Checkpointer,
        options: dict[str, Any],
        *,
        defaults: AgentContext | None = None,
    ) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The graph from the one cache, with `checkpointer` attached (None: none)."""
        graph = compiled(self.spec, options, defaults=defaults)
        return graph.copy(update={"checkpointer": checkpointer}) if checkpointer else graph

    def model_picks(self, values: dict[str, Any]) -> list[ModelPick]:
        """Models the run's input picks for its agents (e.g. a debate's judge)."""
        return list(self.spec.model_picks(values))

    def answer(self, payload: Any, answer: Any) -> Any:
        """Validate a resume answer against what the pending interrupt asked for (which
        may be a nested run's, of another pattern)."""
        kind = payload.get("kind") if isinstance(payload, dict) else None
        if not isinstance(kind, str):
            return answer
        factory = self.spec.answers.get(kind) or answer_models().get(kind)
        if factory is None:
            return answer
        try:
            return factory(payload).model_validate(answer).model_dump()
        except ValidationError as error:
            raise ResumeAnswerError(
                f"invalid answer to {kind}: {validation_problems(error, prefix='answer.')}; "
                "the thread is still waiting for a valid answer"
            ) from None


def answer_models() -> dict[str, AnswerFactory]:
    """Interrupt kind -> answer model factory, across every pattern."""
    return {
        kind: factory
        for name in known_patterns()
        for kind, factory in PATTERNS.get(name).answers.items()
    }


def get_pattern(name: str) -> Pattern:
    if name not in PATTERNS:
        raise UnknownPatternError(name, known_patterns())
    return Pattern(PATTERNS.get(name))


def operator_limits() -> dict[str, Any]:
    """Limits on a run's input that the operator sets, not the input."""
    return {"max_workers": get_settings().max_workers}


def delta_channels() -> frozenset[str]:
    """Channels any pattern stores as deltas (nested graphs' included: a node's input
    schema's channels are its graph's too), which a prune must be able to rebuild."""
    return frozenset(
        name
        for pattern in known_patterns()
        for name, channel in compiled(PATTERNS.get(pattern)).channels.items()
        if isinstance(channel, DeltaChannel)
    )
