"""The patterns as graphs a LangGraph server runs: `langgraph dev` / Studio, and Aegra.

A server imports `mas/server/graphs.py` (listed in langgraph.json and in the Aegra
config `mas serve` writes) and calls one factory per pattern. Each factory returns the
pattern's compiled graph, built once per process with defaults for whatever the
server's context lacks:

- the model from `MAS_MODEL`, made in a worker thread (an `ollama:` spec checks the
  server over HTTP first, which must not block the event loop);
- the models a run's input picks by name (`judge_model`, a worker's `model`), made
  through the same input gate as the runner's and cached per process;
- for the saga, a connection pool to the same PostgreSQL, one per process, opened
  on first use in the server's event loop.

The server brings its own checkpointer and passes it in; the graphs carry none.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from psycopg_pool import AsyncConnectionPool

from mas.database import resolve_dsn
from mas.providers.models import make_model, model_from_input
from mas.providers.tools import aload_tools
from mas.settings import get_settings
from mas_graphs.checkpoints.savers import CONNECTION_KWARGS
from mas_graphs.nodes.context import AgentContext
from mas_graphs.state.pattern import PATTERNS, compiled

_pools: dict[int, AsyncConnectionPool[Any]] = {}
_model_lock = asyncio.Lock()
_default_model: BaseChatModel | None = None
_defaults_lock = asyncio.Lock()
_defaults: AgentContext | None = None


async def default_model() -> BaseChatModel:
    """The process's model from `MAS_MODEL`, made once, off the event loop."""
    global _default_model
    async with _model_lock:
        if _default_model is None:
            _default_model = await asyncio.to_thread(make_model, get_settings().model)
    return _default_model


@cache
def chosen_model(choice: str) -> BaseChatModel:
    """A model a run's input picked by name, through the input gate; one per choice."""
    return model_from_input(choice)


async def choose(choice: str) -> BaseChatModel:
    return await asyncio.to_thread(chosen_model, choice)


async def database() -> AsyncConnectionPool[Any]:
    """This process's pool on the project's PostgreSQL, opened in the running loop."""
    loop = id(asyncio.get_running_loop())
    if loop not in _pools:
        url = await asyncio.to_thread(resolve_dsn)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=get_settings().pool_size,
            kwargs=CONNECTION_KWARGS,
            open=False,
        )
        await pool.open(wait=True)
        _pools[loop] = pool
    return _pools[loop]


async def served_defaults() -> AgentContext:
    """The operator's context for every served run: made once per process (so every
    pattern's graph binds the same one) and sealed, so a client's cannot change it."""
    global _defaults
    async with _defaults_lock:
        if _defaults is None:
            _defaults = AgentContext(
                model=await default_model(),
                db=database,
                choose=choose,
                max_workers=get_settings().max_workers,
                sealed=True,
            )
    return _defaults


async def served_graph(pattern: str) -> CompiledStateGraph[Any, Any, Any, Any]:
    """`pattern`'s graph for a server, from the one cache, with the operator's defaults."""
    await aload_tools()
    return compiled(PATTERNS.get(pattern), defaults=await served_defaults())
