"""The file a LangGraph server loads (langgraph.json, and the Aegra config `mas serve`
writes): one graph factory per pattern. Servers load this file under a name of their
own; the factories live in `mas.serving`, imported normally, so the process keeps one
model, one pool and one compiled graph per pattern however many times this is loaded.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph.state import CompiledStateGraph

from mas.serving import served_graph


async def supervisor() -> CompiledStateGraph[Any, Any, Any, Any]:
    return await served_graph("supervisor")


async def debate() -> CompiledStateGraph[Any, Any, Any, Any]:
    return await served_graph("debate")


async def scenarios() -> CompiledStateGraph[Any, Any, Any, Any]:
    return await served_graph("scenarios")


async def saga() -> CompiledStateGraph[Any, Any, Any, Any]:
    return await served_graph("saga")
