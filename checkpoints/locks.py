"""One run per thread at a time, across processes: a Postgres advisory lock.

The lock is session-level on a dedicated connection, so it is released the
moment its holder exits or is killed (the server ends the session), and a
crashed run never leaves a thread locked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg

from checkpoints.errors import ThreadLocked
from checkpoints.schema import thread_lock_key


class ThreadLocks:
    """Per-thread locks for every run of one process, all held on one dedicated connection.

    A session may hold many advisory locks, so concurrent runs share the connection
    instead of each pinning one (PostgreSQL's 100-connection default would cap a
    process at ~100 concurrent runs otherwise). Advisory locks are re-entrant within
    a session, so the process also tracks the threads it holds itself.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._mutex = asyncio.Lock()  # one statement at a time on the shared connection
        self._held: set[str] = set()

    async def open(self) -> None:
        self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # releases every lock this process holds

    async def _execute(self, sql: str, key: int) -> bool:
        assert self._conn is not None, "ThreadLocks used before open()"
        async with self._mutex:
            cur = await self._conn.execute(sql, (key,))
            row = await cur.fetchone()
        return bool(row and row[0])

    async def _release(self, key: int) -> None:
        with contextlib.suppress(psycopg.Error):  # a dead session took its locks with it
            await self._execute("SELECT pg_advisory_unlock(%s)", key)

    @asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        """Hold the thread's lock for the block, or raise `ThreadLocked` at once."""
        key = thread_lock_key(thread_id)
        if thread_id in self._held:
            raise ThreadLocked(thread_id)
        self._held.add(thread_id)
        try:
            if not await self._execute("SELECT pg_try_advisory_lock(%s)", key):
                raise ThreadLocked(thread_id)
            try:
                yield
            finally:
                await self._release(key)
        finally:
            self._held.discard(thread_id)


@contextmanager
def thread_lock(dsn: str, thread_id: str) -> Iterator[None]:
    """Hold one thread's lock on its own connection, for admin commands that change a thread."""
    key = thread_lock_key(thread_id)
    with psycopg.Connection.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not row or not row[0]:
            raise ThreadLocked(thread_id)
        try:
            yield
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
