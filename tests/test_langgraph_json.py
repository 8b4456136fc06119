"""langgraph.json lists every pattern's module-level compiled graph, loadable as Studio would."""

from __future__ import annotations

import importlib.util
import json

from langgraph.graph.state import CompiledStateGraph

from mas.patterns import known_patterns
from tests.conftest import ROOT


def test_every_pattern_is_listed_and_loads() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert set(config["graphs"]) == set(known_patterns())
    for name, target in config["graphs"].items():
        path, _, attribute = target.partition(":")
        spec = importlib.util.spec_from_file_location(f"studio_{name}", ROOT / path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        graph = getattr(module, attribute)
        assert isinstance(graph, CompiledStateGraph) and graph.name == name
