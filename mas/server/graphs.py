"""The file a LangGraph server loads (langgraph.json, and the Aegra config `mas serve`
writes): one graph factory per registered pattern, built in and plugged in alike.
Servers load this file under a name of their own and look a graph up in its namespace,
so the factories are its attributes, one per pattern name. They live in `mas.server.factories`,
imported normally, so the process keeps one model, one pool and one compiled graph per
pattern however many times this is loaded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from mas.patterns import known_patterns
from mas.server.factories import served_graph

GraphFactory = Callable[[], Awaitable[CompiledStateGraph[Any, Any, Any, Any]]]


def graph_factory(pattern: str) -> GraphFactory:
    async def factory() -> CompiledStateGraph[Any, Any, Any, Any]:
        return await served_graph(pattern)

    factory.__name__ = factory.__qualname__ = pattern
    return factory


globals().update({name: graph_factory(name) for name in known_patterns()})
