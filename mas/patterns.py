"""The registry of patterns the runner and CLI know, and how each parses its input.

A pattern module (graphs/<name>.py) exposes `NAME`, `Input` (the state input
model), `Options` (build options, kept with the thread so a resume rebuilds the
same graph), `ANSWERS` (interrupt kind -> answer model factory), `build`, and
optionally `check_input` (rules beyond the models) and `model_picks` (state ->
[ModelPick], the models an input picks for its agents, at every depth). Every module in graphs/
that defines `build` is a pattern: adding a file registers it.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from types import ModuleType
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


@cache
def pattern_modules() -> dict[str, str]:
    """Pattern name -> module, for every graphs/<name>.py."""
    from mas_graphs import graphs

    return {
        info.name: f"mas_graphs.graphs.{info.name}"
        for info in pkgutil.iter_modules(graphs.__path__)
        if not info.name.startswith("_")
    }


def known_patterns() -> list[str]:
    return sorted(pattern_modules())


@dataclass(frozen=True)
class Pattern:
    name: str
    module: ModuleType

    def parse(
        self, data: Any, limits: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split and validate raw input into (state input, build options), within the
        operator's `limits` (default: the settings')."""
        if not isinstance(data, dict):
            raise InputError(f"{self.name} input must be a JSON object, got {type(data).__name__}")
        option_fields = set(self.module.Options.model_fields)
        options = {k: v for k, v in data.items() if k in option_fields}
        state = {k: v for k, v in data.items() if k not in option_fields}
        check = getattr(self.module, "check_input", None)
        try:
            parsed_state = validated_input(
                self.name, self.module.Input, state, check, limits=limits or operator_limits()
            )
        except InvalidInputError as error:
            raise InputError(str(error)) from None
        try:
            parsed_options: BaseModel = self.module.Options.model_validate(options)
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
        graph: CompiledStateGraph[Any, Any, Any, Any] = self.module.build(
            checkpointer=checkpointer, defaults=defaults, **options
        )
        return graph

    def model_picks(self, values: dict[str, Any]) -> list[ModelPick]:
        """Models the run's input picks for its agents (e.g. a debate's judge)."""
        picks = getattr(self.module, "model_picks", None)
        return list(picks(values)) if picks is not None else []

    def answer(self, payload: Any, answer: Any) -> Any:
        """Validate a resume answer against what the pending interrupt asked for (which
        may be a nested run's, of another pattern)."""
        kind = payload.get("kind") if isinstance(payload, dict) else None
        factory = self.module.ANSWERS.get(kind) or (answer_models().get(kind) if kind else None)
        if factory is None:
            return answer
        try:
            return factory(payload).model_validate(answer).model_dump()
        except ValidationError as error:
            raise ResumeAnswerError(
                f"invalid answer to {kind}: {validation_problems(error, prefix='answer.')}; "
                "the thread is still waiting for a valid answer"
            ) from None


@cache
def answer_models() -> dict[str, Any]:
    """Interrupt kind -> answer model factory, across every pattern."""
    return {
        kind: factory
        for name in known_patterns()
        for kind, factory in get_pattern(name).module.ANSWERS.items()
    }


def get_pattern(name: str) -> Pattern:
    modules = pattern_modules()
    if name not in modules:
        raise UnknownPatternError(name, known_patterns())
    return Pattern(name, importlib.import_module(modules[name]))


def operator_limits() -> dict[str, Any]:
    """Limits on a run's input that the operator sets, not the input."""
    return {"max_workers": get_settings().max_workers}


@cache
def delta_channels() -> frozenset[str]:
    """Channels any pattern stores as deltas (nested graphs' included: a node's input
    schema's channels are its graph's too), which a prune must be able to rebuild."""
    return frozenset(
        name
        for pattern in known_patterns()
        for name, channel in get_pattern(pattern).module.graph.channels.items()
        if isinstance(channel, DeltaChannel)
    )
