"""The patterns a supervisor can run as workers, compiled for nesting.

A nested graph is compiled without a checkpointer of its own: LangGraph then gives it
the parent's, so the nested run checkpoints in its worker task's namespace of the
parent's thread. One compiled graph per pattern and build options serves every run.
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from types import ModuleType
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from mas_graphs.state.common import ModelPick
from mas_graphs.state.supervisor import TEAM_INPUTS


@cache
def team_modules() -> dict[str, ModuleType]:
    """Every nestable pattern's module, imported together whichever a run names, so
    what gets imported never depends on a run's input."""
    return {
        name: importlib.import_module(f"mas_graphs.graphs.{name}") for name in sorted(TEAM_INPUTS)
    }


@cache
def team_graph(pattern: str, options: str) -> CompiledStateGraph[Any, Any, Any, Any]:
    """`pattern`'s graph built with `options` (sorted JSON), for nesting."""
    graph: CompiledStateGraph[Any, Any, Any, Any] = team_modules()[pattern].build(
        **json.loads(options)
    )
    return graph


def team_model_picks(pattern: str, values: dict[str, Any]) -> list[ModelPick]:
    picks = getattr(team_modules()[pattern], "model_picks", None)
    return list(picks(values)) if picks is not None else []
