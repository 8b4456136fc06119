"""One run per thread at a time, across processes: a Postgres advisory lock.

The lock is session-level on a dedicated connection, so it is released the
moment its holder exits or is killed (the server ends the session), and a
crashed run never leaves a thread locked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import psycopg

from checkpoints.errors import ThreadLocked
from checkpoints.schema import thread_lock_key


@asynccontextmanager
async def athread_lock(dsn: str, thread_id: str) -> AsyncIterator[None]:
    """Hold the thread's lock for the block, or raise `ThreadLocked` at once."""
    key = thread_lock_key(thread_id)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        row = await cur.fetchone()
        if not row or not row[0]:
            raise ThreadLocked(thread_id)
        try:
            yield
        finally:
            if not conn.closed:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextmanager
def thread_lock(dsn: str, thread_id: str) -> Iterator[None]:
    """Synchronous twin of `athread_lock`, for admin commands that change a thread."""
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


LOCK_HELD_SQL = """
SELECT 1 FROM pg_locks
WHERE locktype = 'advisory' AND granted
  AND classid = ((%(key)s >> 32) & x'ffffffff'::bigint)::oid
  AND objid = (%(key)s & x'ffffffff'::bigint)::oid
  AND objsubid = 1
"""
