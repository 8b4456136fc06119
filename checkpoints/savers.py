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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
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


def _setup(saver: PostgresSaver, pool: ConnectionPool[Any], dsn: str) -> None:
    if dsn in _prepared:
        return
    # Two processes setting up a fresh database at once would race on CREATE TABLE;
    # the lock is held on its own connection because setup() takes the saver's.
    with pool.connection() as conn:
        # Poll with pg_try_advisory_lock: a waiter blocked inside pg_advisory_lock holds a
        # snapshot, and the holder's CREATE INDEX CONCURRENTLY waits for every snapshot
        # to end, a deadlock across two connections that PostgreSQL cannot detect.
        while not conn.execute(
            "SELECT pg_try_advisory_lock(%s) AS locked", (SETUP_LOCK_KEY,)
        ).fetchone()["locked"]:
            time.sleep(SETUP_POLL_S)
        try:
            saver.setup()
            ensure_mas_tables(conn.cursor())
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))
    _prepared.add(dsn)


async def _asetup(saver: AsyncPostgresSaver, pool: AsyncConnectionPool[Any], dsn: str) -> None:
    if dsn in _prepared:
        return
    async with pool.connection() as conn:
        # Polling, not waiting in pg_advisory_lock: see _setup.
        while True:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (SETUP_LOCK_KEY,))
            row = await cur.fetchone()
            if row is not None and row["locked"]:
                break
            await asyncio.sleep(SETUP_POLL_S)
        try:
            await saver.setup()
            await ensure_mas_tables(conn.cursor())
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))
    _prepared.add(dsn)


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
        _setup(saver, pool, url)
        yield saver


@asynccontextmanager
async def open_async_saver(
    dsn: str | None = None, *, max_size: int = 10
) -> AsyncIterator[AsyncPostgresSaver]:
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
        saver = AsyncPostgresSaver(pool)
        await _asetup(saver, pool, url)
        yield saver
