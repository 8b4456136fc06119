"""What every agent node receives at run time: models and the database, via LangGraph's
Runtime context, with the graph's own defaults for whatever the context lacks.

Graphs never create models or open connections; the runner (or a server's graph
factory, a notebook, a test) supplies them. A compiled graph runs with any context a
caller passes: LangGraph servers pass a dict (often empty, which LangGraph turns into
`AgentContext()` or None), so every field is optional and `build(defaults=...)` fills
the gaps.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime
from psycopg_pool import AsyncConnectionPool

from mas_graphs.nodes.limits import CallLimiter, entered, graph_level, run_limiter
from mas_graphs.state.common import budget_of

StateT = TypeVar("StateT")
# A pool, or a coroutine function that opens (or returns) one on first use: a server
# process opens its pool in its own event loop, when a saga first needs it.
Database = AsyncConnectionPool[Any] | Callable[[], Awaitable[AsyncConnectionPool[Any]]]
# Makes the model a run's input picks by name (`judge_model`, a worker's `model`),
# through the same gate as the runner's; awaited, since making one may do I/O.
ModelChooser = Callable[[str], Awaitable[BaseChatModel]]


@dataclass(frozen=True)
class AgentContext:
    """What nodes may use: the default model, per-role models the runner made up front
    (e.g. a judge from another model family), a chooser for models the input names, and
    the database for patterns whose steps have effects in PostgreSQL (the saga's tables).
    Typed `Any` where a server would otherwise try to describe a pool or a function as
    JSON in its context schema."""

    model: Any = None
    models: Mapping[str, Any] = field(default_factory=dict)
    picked: Mapping[str, Any] = field(default_factory=dict)
    choose: Any = None
    db: Any = None
    # the operator's cap on a supervisor's workers (MAS_MAX_WORKERS); None: the default
    max_workers: int | None = None
    # Called around each saga effect (`nodes.orders.EffectHook`): at its start and right
    # after it commits. The caller's, for this run only (crash tests pause there).
    effect_hooks: tuple[Any, ...] = ()
    # Made by a server's graph factory: the operator's, so a caller (an HTTP client) may
    # set none of these fields; see `under`.
    sealed: bool = False

    def fields_set(self) -> list[str]:
        """The fields this context sets, against an empty one."""
        empty = AgentContext()
        return [
            name for name in AGENT_CONTEXT_FIELDS if getattr(self, name) != getattr(empty, name)
        ]

    def under(self, defaults: AgentContext | None) -> AgentContext:
        """The context a node runs with: this (the caller's) completed by `defaults`, or,
        when `defaults` is sealed, `defaults` itself, refusing any field the caller set."""
        if defaults is None or not defaults.sealed:
            return self.merged(defaults)
        if self == defaults:  # a graph nested in a served one gets the sealed context
            return defaults
        if fields := self.fields_set():
            raise ClientContextError(sorted(fields))
        return defaults

    def merged(self, defaults: AgentContext | None) -> AgentContext:
        """This context, with `defaults` filling every field it lacks."""
        if defaults is None:
            return self
        return replace(
            self,
            model=self.model if self.model is not None else defaults.model,
            models={**defaults.models, **self.models},
            picked={**defaults.picked, **self.picked},
            choose=self.choose if self.choose is not None else defaults.choose,
            db=self.db if self.db is not None else defaults.db,
            max_workers=self.max_workers if self.max_workers is not None else defaults.max_workers,
            effect_hooks=self.effect_hooks or defaults.effect_hooks,
        )

    def model_for(self, role: str) -> BaseChatModel:
        """The model for an agent role (planner, judge, ...; the same name at every depth):
        the caller's model for that role, else the default."""
        model = self.models.get(role, self.model)
        if model is None:
            raise MissingModelError()
        return model  # type: ignore[no-any-return]

    async def chosen(self, role: str, choice: str | None) -> BaseChatModel:
        """The model for an agent whose model the input may pick (`choice`): the one the
        runner made up front for that choice, else the chooser's; without a choice, the
        role's."""
        if not choice:
            return self.model_for(role)
        if choice in self.picked:
            return self.picked[choice]  # type: ignore[no-any-return]
        if self.choose is None:
            raise MissingModelError(f"the input picks model '{choice}' but nothing can make it")
        chooser: ModelChooser = self.choose
        return await chooser(choice)

    async def database(self) -> AsyncConnectionPool[Any]:
        if self.db is None:
            raise MissingDatabaseError()
        if isinstance(self.db, AsyncConnectionPool):
            return self.db
        source: Callable[[], Awaitable[AsyncConnectionPool[Any]]] = self.db
        return await source()


class MissingModelError(RuntimeError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "no chat model: pass build(model=...) or invoke with context=AgentContext(model=...)"
        )


class ClientContextError(PermissionError):
    def __init__(self, fields: list[str]) -> None:
        super().__init__(
            f"context field{'s' if len(fields) > 1 else ''} {', '.join(fields)} "
            f"{'are' if len(fields) > 1 else 'is'} not the client's to set: the server's "
            "operator sets models, the database and limits (MAS_MAX_WORKERS, ...)"
        )


class MissingDatabaseError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "this graph writes to PostgreSQL: run it with mas.run/mas.arun or a server, or "
            "invoke it with context=AgentContext(model=..., db=<AsyncConnectionPool>)"
        )


def agent_context(runtime: Runtime[Any]) -> AgentContext:
    context = runtime.context
    if isinstance(context, AgentContext):
        return context
    if isinstance(context, Mapping):  # a server's dict context, unconverted
        return AgentContext(**{k: v for k, v in context.items() if k in AGENT_CONTEXT_FIELDS})
    return AgentContext()


AGENT_CONTEXT_FIELDS = frozenset(AgentContext.__dataclass_fields__)


def node_attempt(runtime: Runtime[Any]) -> int:
    """Which attempt of the current node this is (1 without execution info)."""
    return runtime.execution_info.node_attempt if runtime.execution_info else 1


def graph_defaults(
    model: BaseChatModel | None, defaults: AgentContext | None
) -> AgentContext | None:
    """What a graph falls back to: `build(model=...)` as shorthand, `build(defaults=...)`
    for the rest (a server's pool and model chooser)."""
    if model is None:
        return defaults
    return AgentContext(model=model).merged(defaults)


Node = Callable[[StateT, Runtime[AgentContext]], Awaitable[Any]]


# Returns `Callable[..., Any]` because LangGraph's node protocols take `runtime` by keyword.
def with_default_context(node: Node[StateT], default: AgentContext | None) -> Callable[..., Any]:
    """`node`, run with the caller's context completed by `default` (a server may pass
    none, or a partial one), and inside its run's model-call limiter (nodes/limits.py).
    Its input's `max_parallel`, where it has one, sizes the limiter of a run that does
    not have one yet; its token budget, where it has one, seeds the limiter's meter."""

    @functools.wraps(node)
    async def bound(state: StateT, runtime: Runtime[AgentContext]) -> Any:
        runtime = runtime.override(context=agent_context(runtime).under(default))
        level = graph_level()
        with entered(_limiter(state, runtime, level), level):
            return await node(state, runtime)

    return bound


def _limiter(state: Any, runtime: Runtime[Any], level: str) -> CallLimiter | None:
    info = runtime.execution_info
    run = (info.thread_id or info.run_id) if info is not None else None
    if run is None:
        return None  # no thread, no run id: nothing ties this node's calls to others'
    given = state if isinstance(state, Mapping) else {}
    limiter = run_limiter(run, given.get("max_parallel"))
    if (budget := budget_of(given)) is not None:
        limiter.tokens.seed(level, budget)
    return limiter
