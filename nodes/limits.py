"""How many model calls a run has in flight at once, across every depth.

LangGraph's `max_concurrency` bounds the tasks of one graph's superstep; a team's
nested run has its own, so it cannot cap a run as a whole. A `CallLimiter` does: one
per run (per thread, in this process), taken by every model call an agent makes and
held by a registered agent while it works. Agent nodes enter the run's limiter (see
`nodes.context.with_default_context`) and `ask_structured` takes a slot from it, so
no agent has to pass it along; a nested run's nodes find the same limiter by the
thread id, which a nested run shares with its parent.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

from mas_graphs.state.common import DEFAULT_MAX_PARALLEL


class CallLimiter:
    """A semaphore that also counts: how many calls are in flight, and the most at once."""

    def __init__(self, max_parallel: int) -> None:
        self.max_parallel = max_parallel
        self._slots = asyncio.Semaphore(max_parallel)
        self.in_flight = 0
        self.peak = 0

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
_current: ContextVar[CallLimiter | None] = ContextVar("mas_call_limiter", default=None)


def run_limiter(thread_id: str, max_parallel: int | None) -> CallLimiter:
    """The limiter of the run on `thread_id`, made with `max_parallel` (or the default)
    by the first of its nodes that asks."""
    limiter = _by_thread.get(thread_id)
    if limiter is None:
        limiter = CallLimiter(max_parallel or DEFAULT_MAX_PARALLEL)
        _by_thread[thread_id] = limiter
    return limiter


@contextmanager
def entered(limiter: CallLimiter | None) -> Iterator[None]:
    """Make `limiter` the one model calls take slots from, for the current task."""
    token = _current.set(limiter)
    try:
        yield
    finally:
        _current.reset(token)


@asynccontextmanager
async def model_call_slot() -> AsyncIterator[None]:
    """A slot for one model call from the current run's limiter (none outside a run)."""
    limiter = _current.get()
    if limiter is None:
        yield
        return
    async with limiter.slot():
        yield
