"""PostgreSQL checkpoint savers (sync and async) on a psycopg connection pool.

The settings LangGraph's Postgres saver requires: autocommit (it manages its own
transactions and `setup()` creates indexes concurrently), `dict_row` rows, and
`prepare_threshold=0` so pooled connections never collide on prepared statements
(and poolers like PgBouncer keep working).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from checkpoints.embedded import embedded_dsn
from checkpoints.errors import DatabaseUnavailable
from checkpoints.schema import SETUP_LOCK_KEY, ensure_mas_tables

CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "row_factory": dict_row,
    "prepare_threshold": 0,
}
CONNECT_TIMEOUT_S = 10.0

# Setup is idempotent but not free; do it once per DSN per process.
_prepared: set[str] = set()


def resolve_dsn(dsn: str | None = None) -> str:
    """The DSN to use: the argument, else `DATABASE_URL`, else the embedded server."""
    if dsn:
        return dsn
    # Imported here: `mas` imports this module, so a top-level import would be circular.
    from mas.settings import get_settings

    settings = get_settings()
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded_dsn(settings.data_dir)


# A password in a URL (`scheme://user:pw@host`, the user possibly empty, the password
# possibly holding an unencoded '@', so it runs to the last '@' of the token) or in the
# key=value form (`password=pw`, `password = 'p w'`, also as a URL query parameter).
DSN_PASSWORD = re.compile(
    r"(?P<url>://[^:/@\s]*:)(?P<pw>\S*)@"
    r"|(?P<kv>\bpassword\s*=\s*)(?P<kvpw>'(?:[^'\\]|\\.)*'|[^\s&'\"]+)",
    re.I,
)


def dsn_passwords(text: str) -> list[str]:
    """Every password written in `text`'s connection strings."""
    return [(m["pw"] if m["url"] else m["kvpw"].strip("'")) for m in DSN_PASSWORD.finditer(text)]


def redact_dsn(text: str) -> str:
    """`text` with any connection-string password replaced, safe for errors and logs."""
    return DSN_PASSWORD.sub(lambda m: f"{m['url']}***@" if m["url"] else f"{m['kv']}***", text)


def _unavailable(dsn: str, error: BaseException) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"PostgreSQL is unreachable at {redact_dsn(dsn)} ({error.__class__.__name__}); "
        "start it, fix DATABASE_URL, or unset DATABASE_URL to use the embedded server"
    )


SETUP_POLL_S = 0.1
SETUP_DEADLINE_S = 120.0


def _setup_stuck(dsn: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"another process has been setting up the tables at {redact_dsn(dsn)} for "
        f"{SETUP_DEADLINE_S:g} s; if none is, a session still holds the setup lock "
        "(see pg_locks); try again once it is gone"
    )


# The setup lock is held on a connection of its own, outside the pool, because setup()
# takes a pooled connection itself: with a pool of one, holding the lock on a pooled
# connection would leave setup() waiting forever. It is polled, never waited on: a
# waiter blocked inside pg_advisory_lock holds a snapshot, and the holder's CREATE INDEX
# CONCURRENTLY waits for every snapshot to end, a deadlock across two connections that
# PostgreSQL cannot detect.
def _setup(saver: PostgresSaver, dsn: str) -> None:
    if dsn in _prepared:
        return
    with psycopg.Connection.connect(dsn, autocommit=True, row_factory=dict_row) as lock:
        deadline = time.monotonic() + SETUP_DEADLINE_S
        while not lock.execute(
            "SELECT pg_try_advisory_lock(%s) AS locked", (SETUP_LOCK_KEY,)
        ).fetchone()["locked"]:  # type: ignore[index]
            if time.monotonic() > deadline:
                raise _setup_stuck(dsn)
            time.sleep(SETUP_POLL_S)
        saver.setup()
        ensure_mas_tables(lock.cursor())
    _prepared.add(dsn)


async def _asetup(saver: AsyncPostgresSaver, dsn: str) -> None:
    if dsn in _prepared:
        return
    async with await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, row_factory=dict_row
    ) as lock:
        deadline = time.monotonic() + SETUP_DEADLINE_S
        while True:
            cur = await lock.execute("SELECT pg_try_advisory_lock(%s) AS locked", (SETUP_LOCK_KEY,))
            row = await cur.fetchone()
            if row is not None and row["locked"]:
                break
            if time.monotonic() > deadline:
                raise _setup_stuck(dsn)
            await asyncio.sleep(SETUP_POLL_S)
        await saver.setup()
        await ensure_mas_tables(lock.cursor())
    _prepared.add(dsn)


WriteGuard = Callable[[str], Awaitable[None]]


class GuardedAsyncPostgresSaver(AsyncPostgresSaver):
    """LangGraph's async Postgres saver that lets its owner veto every write: the runner
    confirms, before each checkpoint and each task's writes, that it still holds the
    thread's lock (checkpoints/locks.py), so a run that lost it writes nothing more."""

    guard: WriteGuard | None = None

    async def _confirm(self, config: RunnableConfig) -> None:
        if self.guard is not None:
            await self.guard(str(config["configurable"]["thread_id"]))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        await self._confirm(config)
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._confirm(config)
        await super().aput_writes(config, writes, task_id, task_path)


def check_reachable(dsn: str) -> None:
    """Fail in seconds, not after the pool's retry window, when the server is down."""
    try:
        psycopg.connect(dsn, connect_timeout=int(CONNECT_TIMEOUT_S), autocommit=True).close()
    except psycopg.OperationalError as error:
        raise _unavailable(dsn, error) from None


@contextmanager
def connection(saver: PostgresSaver) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection from the saver's pool (or its single connection)."""
    if isinstance(saver.conn, ConnectionPool):
        with saver.conn.connection() as conn:
            yield conn
    else:
        yield saver.conn


@asynccontextmanager
async def aconnection(
    saver: AsyncPostgresSaver, *, wait_s: float | None = None
) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
    """A connection from the saver's pool; `wait_s` bounds the wait for one."""
    if isinstance(saver.conn, AsyncConnectionPool):
        async with saver.conn.connection(timeout=wait_s) as conn:
            yield conn
    else:
        yield saver.conn


@contextmanager
def open_saver(dsn: str | None = None, *, max_size: int = 10) -> Iterator[PostgresSaver]:
    """A set-up `PostgresSaver` on a pool; the pool closes when the block exits."""
    url = resolve_dsn(dsn)
    check_reachable(url)
    pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
        url, min_size=1, max_size=max_size, kwargs=CONNECTION_KWARGS, open=False
    )
    try:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except (PoolTimeout, psycopg.OperationalError) as error:
        pool.close()
        raise _unavailable(url, error) from None
    with pool:
        saver = PostgresSaver(pool)
        _setup(saver, url)
        yield saver


@asynccontextmanager
async def open_async_saver(
    dsn: str | None = None, *, max_size: int = 10
) -> AsyncIterator[GuardedAsyncPostgresSaver]:
    """A set-up `AsyncPostgresSaver` on an async pool shared by every graph run on it."""
    url = resolve_dsn(dsn)
    await asyncio.to_thread(check_reachable, url)
    pool: AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]] = AsyncConnectionPool(
        url, min_size=1, max_size=max_size, kwargs=CONNECTION_KWARGS, open=False
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except (PoolTimeout, psycopg.OperationalError) as error:
        await pool.close()
        raise _unavailable(url, error) from None
    async with pool:
        saver = GuardedAsyncPostgresSaver(pool)
        await _asetup(saver, url)
        yield saver
