"""Blocking calls into async code, from anywhere: a script, a thread, or a cell of a
notebook whose thread already runs an event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to its end; inside a running loop (Jupyter), on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def blocking(coroutine_function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The synchronous twin of `coroutine_function` (`arun` -> `run`): the same
    parameters, run to the end with `run_to_end`."""

    @functools.wraps(coroutine_function)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_to_end(coroutine_function(*args, **kwargs))

    name = coroutine_function.__name__.removeprefix("a")
    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"Synchronous `{coroutine_function.__name__}`: {coroutine_function.__doc__}"
    return call
