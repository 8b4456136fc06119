"""What every agent node receives at run time: the chat models, via LangGraph's Runtime.

Graphs never create models; the runner (or a notebook, or a test) puts them in
this context. `build(model=...)` binds a default context so a compiled graph
can also be invoked on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime
from psycopg_pool import AsyncConnectionPool

StateT = TypeVar("StateT")


@dataclass(frozen=True)
class AgentContext:
    """What nodes may use: the default model, per-role model overrides (e.g. a judge
    from another model family), and the run's database pool for patterns whose
    steps have effects in PostgreSQL (the saga's order tables)."""

    model: BaseChatModel
    models: Mapping[str, BaseChatModel] = field(default_factory=dict)
    db: AsyncConnectionPool[Any] | None = None

    def model_for(self, role: str) -> BaseChatModel:
        return self.models.get(role, self.model)


class MissingModelError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "no chat model: pass build(model=...) or invoke with context=AgentContext(model=...)"
        )


def agent_context(runtime: Runtime[AgentContext]) -> AgentContext:
    if runtime.context is None:
        raise MissingModelError()
    return runtime.context


def node_attempt(runtime: Runtime[Any]) -> int:
    """Which attempt of the current node this is (1 without execution info)."""
    return runtime.execution_info.node_attempt if runtime.execution_info else 1


Node = Callable[[StateT, Runtime[AgentContext]], Awaitable[Any]]


# Returns `Callable[..., Any]` because LangGraph's node protocols take `runtime` by keyword.
def with_default_context(node: Node[StateT], default: AgentContext | None) -> Callable[..., Any]:
    """`node`, run with `default` whenever the caller passed no context."""
    if default is None:
        return node

    @functools.wraps(node)
    async def bound(state: StateT, runtime: Runtime[AgentContext]) -> Any:
        if runtime.context is None:
            runtime = runtime.override(context=default)
        return await node(state, runtime)

    return bound
