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
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
)
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from mas_graphs.checkpoints.errors import DatabaseUnavailable, LockLostError
from mas_graphs.checkpoints.locks import LockHolder
from mas_graphs.checkpoints.schema import LOCK_LOST_SQLSTATE, SETUP_LOCK_KEY, ensure_mas_tables

CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "row_factory": dict_row,
    "prepare_threshold": 0,
}
CONNECT_TIMEOUT_S = 10.0

# Setup is idempotent but not free; do it once per DSN per process.
_prepared: set[str] = set()


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


CONFIRM_LOCK_SQL = "SELECT mas_confirm_lock(%s, %s)"
# Which lock, if any, a thread's writes must find still held (ThreadLocks.holder).
LockCheck = Callable[[str], LockHolder | None]
# The lock the writes on this task's cursor confirm first, in their transaction.
_confirming: ContextVar[LockHolder | None] = ContextVar("mas_confirming_lock", default=None)


@dataclass
class QueuedWrites:
    """One task's writes waiting for the next batch, and the caller waiting on them."""

    query: str
    args: tuple[str, str, str, str, str, Sequence[tuple[str, Any]]]
    holder: LockHolder | None
    saved: asyncio.Future[None]


class GuardedAsyncPostgresSaver(AsyncPostgresSaver):
    """LangGraph's async Postgres saver that lets its owner veto every write: each
    checkpoint and each task's writes commit only if the runner still holds the
    thread's lock (checkpoints/locks.py), checked in the write's own transaction, so a
    run that lost it writes nothing more.

    Task writes are group-committed: the writes of tasks that finish while a batch is
    being saved go together in the next one, one round trip and one commit, where
    LangGraph's saver spends one of each (and a thread hop) per task. Each call still
    returns only once its own writes are committed, so durability is unchanged; a
    fan-out of N tasks costs a few round trips instead of N."""

    lock_check: LockCheck | None = None
    _queued: list[QueuedWrites] | None = None
    _saving: asyncio.Task[None] | None = None

    def _holder(self, config: RunnableConfig) -> LockHolder | None:
        thread_id = str(config["configurable"]["thread_id"])
        return self.lock_check(thread_id) if self.lock_check is not None else None

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        async with super()._cursor(pipeline=pipeline) as cur:
            if (holder := _confirming.get()) is not None:
                await cur.execute(CONFIRM_LOCK_SQL, (holder.pid, holder.key))
            yield cur

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        holder = self._holder(config)
        token = _confirming.set(holder)
        try:
            return await super().aput(config, checkpoint, metadata, new_versions)
        except psycopg.Error as error:
            raise lock_lost(error, holder) from None
        finally:
            _confirming.reset(token)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        upsert = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        configurable = config["configurable"]
        queued = QueuedWrites(
            self.UPSERT_CHECKPOINT_WRITES_SQL if upsert else self.INSERT_CHECKPOINT_WRITES_SQL,
            (
                configurable["thread_id"],
                configurable["checkpoint_ns"],
                configurable["checkpoint_id"],
                task_id,
                task_path,
                writes,
            ),
            self._holder(config),
            asyncio.get_running_loop().create_future(),
        )
        if self._queued is None:
            self._queued = []
        self._queued.append(queued)
        if self._saving is None or self._saving.done():
            self._saving = asyncio.create_task(self._save_queued())
        await queued.saved

    async def _save_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await self._save_batch(batch)
            except psycopg.Error as error:
                if error.sqlstate != LOCK_LOST_SQLSTATE or len(threads := by_thread(batch)) < 2:
                    settle(batch, error)
                    continue
                # One thread's lock is gone: the others' writes are saved without it.
                for thread_batch in threads.values():
                    try:
                        await self._save_batch(thread_batch)
                    except psycopg.Error as thread_error:
                        settle(thread_batch, thread_error)
                    else:
                        settle(thread_batch, None)
            except BaseException as error:
                settle(batch, error)
                if not isinstance(error, Exception):
                    raise
            else:
                settle(batch, None)

    async def _save_batch(self, batch: list[QueuedWrites]) -> None:
        """One transaction: the batch's locks confirmed, then every write."""
        rows = await asyncio.to_thread(self._dump_batch, batch)  # off the loop, once
        async with self._cursor(pipeline=True) as cur:
            for holder in {q.holder for q in batch if q.holder is not None}:
                await cur.execute(CONFIRM_LOCK_SQL, (holder.pid, holder.key))
            for query, params in rows.items():
                await cur.executemany(query, params)

    def _dump_batch(self, batch: list[QueuedWrites]) -> dict[str, list[Any]]:
        rows: dict[str, list[Any]] = {}
        for queued in batch:
            rows.setdefault(queued.query, []).extend(self._dump_writes(*queued.args))
        return rows


def by_thread(batch: list[QueuedWrites]) -> dict[str | None, list[QueuedWrites]]:
    threads: dict[str | None, list[QueuedWrites]] = {}
    for queued in batch:
        threads.setdefault(queued.holder.thread_id if queued.holder else None, []).append(queued)
    return threads


def settle(batch: list[QueuedWrites], error: BaseException | None) -> None:
    """Tell each caller waiting on the batch how its writes went."""
    for queued in batch:
        if queued.saved.done():  # its caller was cancelled
            continue
        if error is None:
            queued.saved.set_result(None)
        else:
            queued.saved.set_exception(lock_lost(error, queued.holder))


def lock_lost(error: BaseException, holder: LockHolder | None) -> BaseException:
    """`LockLostError` for a write refused because its thread's lock is gone, else the
    error itself."""
    if (
        holder is not None
        and isinstance(error, psycopg.Error)
        and error.sqlstate == LOCK_LOST_SQLSTATE
    ):
        return LockLostError(holder.thread_id)
    return error


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
def open_saver(url: str, *, max_size: int = 10) -> Iterator[PostgresSaver]:
    """A set-up `PostgresSaver` on a pool for `url`; the pool closes when the block exits."""
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
    url: str, *, max_size: int = 10
) -> AsyncIterator[GuardedAsyncPostgresSaver]:
    """A set-up `AsyncPostgresSaver` for `url`, on an async pool shared by every graph run
    on it."""
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
