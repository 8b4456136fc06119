"""How many model calls a run has in flight at once, and how many tokens it may spend,
across every depth.

LangGraph's `max_concurrency` bounds the tasks of one graph's superstep; a team's
nested run has its own, so it cannot cap a run as a whole. A `CallLimiter` does: one
per run (per thread, in this process), taken by every model call an agent makes and
held by a registered agent while it works. Agent nodes enter the run's limiter (see
`nodes.context.with_default_context`) and `ask_structured` takes a slot from it, so
no agent has to pass it along; a nested run's nodes find the same limiter by the
thread id, which a nested run shares with its parent.

Token budgets. The limiter also meters tokens: the tokens a run had spent when a
node's task was made (its `TokenBudget`, seeded once per graph level: the top-level
graph, each team's nested graph) plus what calls spent since, in this process. A
limiter lives for one superstep of its top-level graph, so each superstep starts again
from what the checkpoint holds: a resumed run, on any machine, counts what it spent
before. Each model call checks the budgets of its graph level and of every level
around it before it starts, so a run can go over only by the calls already in flight.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import NamedTuple

from langgraph.config import get_config
from langgraph.errors import NodeError

from mas_graphs.nodes.errors import error_parts
from mas_graphs.state.common import DEFAULT_MAX_PARALLEL, CallUsage, TokenBudget

# A graph level: the checkpoint namespace of a graph's tasks without the task itself
# ("" for the top-level graph, "run_team:<task id>" for a team's nested graph).
LEVEL_SEPARATOR = "|"


RESTORED = re.compile(
    r"(the team's )?max_tokens_total ([\d,]+) \(([\d,]+) spent\) before (.+)'s next model call"
)


class BudgetExceededError(RuntimeError):
    """A token budget was reached before a model call."""

    def __init__(self, what: str, agent: str, limit: int, spent: int) -> None:
        self.agent, self.limit, self.spent = agent, limit, spent
        # the failed agent's calls before this one (`nodes.errors.failed_usage` reads it)
        self.usage: list[CallUsage] = []
        super().__init__(
            f"token budget reached: {what} {limit:,} ({spent:,} spent) before "
            f"{agent}'s next model call"
        )


class RunBudgetExceededError(BudgetExceededError):
    """`max_tokens_total` of a run at graph `level` was reached: that run stops, keeping
    what it finished. A team's (`level` set) ends at its worker's node, as the worker's
    failure; the top-level run's ends the whole run."""

    def __init__(self, agent: str, limit: int, spent: int, *, level: str) -> None:
        self.level = level
        what = "the team's max_tokens_total" if level else "max_tokens_total"
        super().__init__(what, agent, limit, spent)

    @classmethod
    def restored(cls, text: str, level: str) -> RunBudgetExceededError | None:
        """The error a checkpoint stored as its repr, or None if it is another error."""
        name, message = error_parts(text)
        found = RESTORED.search(message) if name == cls.__name__ else None
        if found is None:
            return None
        team, limit, spent, agent = found.groups()
        number = int(limit.replace(",", "")), int(spent.replace(",", ""))
        return cls(agent, *number, level=level if team else "")


class AgentBudgetExceededError(BudgetExceededError):
    """`max_tokens_per_agent` was reached: the agent fails like any failed agent."""

    def __init__(self, agent: str, limit: int, spent: int) -> None:
        super().__init__(f"max_tokens_per_agent of {agent}", agent, limit, spent)


def raise_if_run_stops(error: NodeError) -> None:
    """Error handlers that turn an agent's failure into a recorded one call this first:
    a run's spent budget is not one agent's failure, it ends the run (up to the team
    worker whose run it is, see `nodes.teams`), and again when the run is resumed."""
    spent = error.error
    if isinstance(spent, str):  # after a restart LangGraph hands over the error's repr
        spent = RunBudgetExceededError.restored(spent, graph_level()) or spent
    if isinstance(spent, RunBudgetExceededError):
        # a new exception: LangGraph ignores the one it handed the handler if raised again
        again = RunBudgetExceededError(spent.agent, spent.limit, spent.spent, level=spent.level)
        again.usage = spent.usage
        raise again from spent


def graph_level() -> str:
    """The level of the graph the current node runs in: its checkpoint namespace without
    the task's own part ("" at the top, a team's nested graph below its worker's node)."""
    namespace = str(get_config().get("configurable", {}).get("checkpoint_ns", ""))
    return namespace.rpartition(LEVEL_SEPARATOR)[0]


def enclosing(level: str) -> list[str]:
    """`level` and every level around it, innermost first."""
    parts = level.split(LEVEL_SEPARATOR) if level else []
    return [LEVEL_SEPARATOR.join(parts[:n]) for n in range(len(parts), -1, -1)]


def within(level: str, outer: str) -> bool:
    return not outer or level == outer or level.startswith(outer + LEVEL_SEPARATOR)


class TokenMeter:
    """Tokens spent per graph level and agent: seeded from the tasks, added to by calls."""

    def __init__(self) -> None:
        self._seeds: dict[str, TokenBudget] = {}
        self._spent: Counter[tuple[str, str]] = Counter()

    def seed(self, level: str, budget: TokenBudget) -> None:
        """What `level` had spent when a task was made; the freshest wins while the level
        has made no call here (the superstep's tasks may date from different steps)."""
        known = self._seeds.get(level)
        fresher = known is not None and sum(budget["spent"].values()) > sum(known["spent"].values())
        if known is None or (fresher and not self._called(level)):
            self._seeds[level] = budget

    def _called(self, level: str) -> bool:
        return any(spent_level == level for spent_level, _ in self._spent)

    def spend(self, level: str, agent: str, tokens: int) -> None:
        self._spent[(level, agent)] += tokens

    def used(self, outer: str) -> int:
        """Tokens spent at `outer` and every level inside it."""
        seeds = (seed for level, seed in self._seeds.items() if within(level, outer))
        seeded = sum(sum(seed["spent"].values()) for seed in seeds)
        return seeded + sum(n for (level, _), n in self._spent.items() if within(level, outer))

    def check(self, level: str, agent: str) -> None:
        """Refuse `agent`'s next call at `level` once a budget there or around it is spent."""
        seed = self._seeds.get(level)
        if seed is not None and (limit := seed["max_tokens_per_agent"]) is not None:
            spent = seed["spent"].get(agent, 0) + self._spent[(level, agent)]
            if spent >= limit:
                raise AgentBudgetExceededError(agent, limit, spent)
        for outer in enclosing(level):
            budget = self._seeds.get(outer)
            limit = None if budget is None else budget["max_tokens_total"]
            if limit is not None and (spent := self.used(outer)) >= limit:
                raise RunBudgetExceededError(agent, limit, spent, level=outer)


class CallLimiter:
    """A semaphore that also counts: how many calls are in flight, and the most at once."""

    def __init__(self, max_parallel: int) -> None:
        self.max_parallel = max_parallel
        self._slots = asyncio.Semaphore(max_parallel)
        self.in_flight = 0
        self.peak = 0
        self.tokens = TokenMeter()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1


# Live runs' limiters by thread id: a limiter lives while one of its run's nodes runs.
_by_thread: weakref.WeakValueDictionary[str, CallLimiter] = weakref.WeakValueDictionary()


class Entered(NamedTuple):
    limiter: CallLimiter
    level: str


_current: ContextVar[Entered | None] = ContextVar("mas_call_limiter", default=None)


def run_limiter(thread_id: str, max_parallel: int | None) -> CallLimiter:
    """The limiter of the run on `thread_id`, made with `max_parallel` (or the default)
    by the first of its nodes that asks."""
    limiter = _by_thread.get(thread_id)
    if limiter is None:
        limiter = CallLimiter(max_parallel or DEFAULT_MAX_PARALLEL)
        _by_thread[thread_id] = limiter
    return limiter


@contextmanager
def entered(limiter: CallLimiter | None, level: str = "") -> Iterator[None]:
    """Make `limiter` the one model calls take slots from, for the current task at graph
    `level`."""
    token = _current.set(None if limiter is None else Entered(limiter, level))
    try:
        yield
    finally:
        _current.reset(token)


class CallMeter(NamedTuple):
    """What a call holding a slot reports to, and checks against, its run's token meter."""

    spend: Callable[[int], None]  # tokens a model call spent
    check: Callable[[], None]  # raises once a budget is spent (before each further call)


def _unmetered(tokens: int = 0) -> None:
    """Outside a run (or for a tool call) nothing meters tokens."""


UNMETERED = CallMeter(_unmetered, _unmetered)


@asynccontextmanager
async def model_call_slot(agent: str | None = None) -> AsyncIterator[CallMeter]:
    """A slot for one call from the current run's limiter (none outside a run). For a
    model call (`agent` given) the run's token budgets are checked first, and what it
    yields records the tokens the call spent."""
    current = _current.get()
    if current is None:
        yield UNMETERED
        return
    limiter, level = current
    async with limiter.slot():
        if agent is None:
            yield UNMETERED
            return
        meter = limiter.tokens
        meter.check(level, agent)
        yield CallMeter(
            spend=lambda tokens: meter.spend(level, agent, tokens),
            check=lambda: meter.check(level, agent),
        )
