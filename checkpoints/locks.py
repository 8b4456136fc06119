"""One run per thread at a time, across processes: a Postgres advisory lock.

The lock is session-level on a dedicated connection, so it is released the
moment its holder exits or is killed (the server ends the session), and a
crashed run never leaves a thread locked.

The other side of that coin: if the connection drops (a network blip, a NAT that
forgot it, `idle_session_timeout`, a failover), the lock is gone while the run goes
on, and another process may take the thread over. So every checkpoint write of a
run confirms its lock (the saver asks `holder` which one), and the run stops, with a
one-line error, as soon as the lock is lost. The check costs no round trip of its
own: it runs in the write's transaction (`mas_confirm_lock`, checkpoints/schema.py), which commits
only if the lock's session still holds the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, NamedTuple

import psycopg

from mas_graphs.checkpoints.errors import LockLostError, ThreadLocked
from mas_graphs.checkpoints.schema import thread_lock_key

# TCP keepalives find a silently dead peer (a NAT, a failover) even between queries.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class LockHolder(NamedTuple):
    """Which session holds a thread's lock, under which key."""

    thread_id: str
    pid: int
    key: int


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
        self._lost: set[str] = set()  # held when the connection dropped

    async def open(self) -> None:
        self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, **KEEPALIVES)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # releases every lock this process holds

    def _dropped(self, keeping: str | None = None) -> None:
        """The connection is gone, and with it every lock it held (but `keeping`'s, which
        is only being taken)."""
        self._lost |= self._held - {keeping}

    async def _execute(self, sql: str, key: int, *, taking: str | None = None) -> bool:
        """Run a lock statement. Taking a lock survives a connection that died while idle
        (idle_session_timeout, a NAT): the locks it held are marked lost, and the new
        lock is taken on a new session."""
        async with self._mutex:
            for attempt in (1, 2):
                assert self._conn is not None, "ThreadLocks used before open()"
                try:
                    if self._conn.closed or self._conn.broken:
                        raise psycopg.OperationalError("the lock connection is closed")
                    cur = await self._conn.execute(sql, (key,))
                    row = await cur.fetchone()
                    return bool(row and row[0])
                except psycopg.OperationalError:
                    self._dropped(keeping=taking)
                    if taking is None or attempt == 2:
                        raise
                    with contextlib.suppress(psycopg.Error):
                        await self._conn.close()
                    await self.open()
        raise AssertionError("unreachable")

    def holder(self, thread_id: str) -> LockHolder | None:
        """The session and key of `thread_id`'s lock, for a write to confirm in its own
        transaction (`mas_confirm_lock`); None for a thread this process does not run
        (e.g. an admin read). Raises `LockLostError` for one whose lock is known lost."""
        if thread_id not in self._held:
            return None
        if thread_id in self._lost or self._conn is None or self._conn.broken:
            raise LockLostError(thread_id)
        return LockHolder(thread_id, self._conn.info.backend_pid, thread_lock_key(thread_id))

    async def _release(self, key: int) -> None:
        with contextlib.suppress(psycopg.Error):  # a dead session took its locks with it
            await self._execute("SELECT pg_advisory_unlock(%s)", key)

    @asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        """Hold the thread's lock for the block, or raise `ThreadLocked` at once."""
        key = thread_lock_key(thread_id)
        if thread_id in self._held:  # session locks are re-entrant: refuse it here
            raise ThreadLocked(thread_id)
        self._held.add(thread_id)
        try:
            if not await self._execute("SELECT pg_try_advisory_lock(%s)", key, taking=thread_id):
                raise ThreadLocked(thread_id)
            try:
                yield
            finally:
                if thread_id not in self._lost:
                    await self._release(key)
        finally:
            self._held.discard(thread_id)
            self._lost.discard(thread_id)


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
