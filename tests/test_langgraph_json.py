"""langgraph.json lists every pattern's graph factory, loadable as a server loads it."""

from __future__ import annotations

import importlib.util
import json

from langgraph.graph.state import CompiledStateGraph

from mas.patterns import known_patterns
from tests.support.processes import ROOT


async def test_every_pattern_is_listed_and_its_factory_builds_it() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert set(config["graphs"]) == set(known_patterns())
    for name, target in config["graphs"].items():
        path, _, attribute = target.partition(":")
        # Servers load the file under a name of their own, as here.
        spec = importlib.util.spec_from_file_location(f"server_{name}", ROOT / path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        graph = await getattr(module, attribute)()
        assert isinstance(graph, CompiledStateGraph) and graph.name == name
        assert graph.checkpointer is None, "the server brings its own checkpointer"
        assert await getattr(module, attribute)() is graph, "built once per process"
