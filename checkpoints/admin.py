"""Thread administration: the run registry, listing, deletion and pruning.

Threads run by `mas` (the runner) are in its registry, `mas_threads`. Threads run by
the Agent Protocol server live in the server's own tables, which this package does not
read (`mas/server/threads.py` lists both kinds).

Listing reads the run registry (`mas_threads`) together with the newest
checkpoint of each thread and the advisory locks currently held, so a thread is
`running` only while some process really holds its lock; a registry row that
says running without a lock holder is a run whose process died (`failed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection, Connection
from psycopg.types.json import Jsonb

from mas_graphs.checkpoints.schema import thread_lock_key

ThreadStatus = Literal["running", "interrupted", "over_budget", "failed", "done"]
CRASHED_NOTE = "the process running it exited mid-run; `mas resume` continues it"


@dataclass(frozen=True)
class ThreadRecord:
    thread_id: str
    pattern: str
    model_spec: str | None
    options: dict[str, Any]
    status: ThreadStatus
    error: str | None
    runs: int
    last_step: int | None
    updated_at: datetime
    # who runs it: "mas" (the runner, mas_threads) or "server" (Aegra's thread table)
    served_by: Literal["mas", "server"] = "mas"
    owner: str | None = None
    forked_from: str | None = None  # "<thread id>@<checkpoint id>"
    fork_edits: dict[str, Any] | None = None  # input edits its next run applies first


RECORD_START_SQL = """
INSERT INTO mas_threads (thread_id, pattern, model_spec, options, lock_key, status, runs)
VALUES (%(thread_id)s, %(pattern)s, %(model_spec)s, %(options)s, %(lock_key)s, 'running', 1)
ON CONFLICT (thread_id) DO UPDATE
SET status = 'running', error = NULL, runs = mas_threads.runs + 1, updated_at = now(),
    model_spec = COALESCE(EXCLUDED.model_spec, mas_threads.model_spec)
RETURNING runs
"""

# A new thread's first run in one round trip: registered only if nothing knows the id yet
# (no registry row, no checkpoint; a database the server shares takes the long way).
CLAIM_SQL = """
INSERT INTO mas_threads (thread_id, pattern, model_spec, options, lock_key, status, runs)
SELECT %(thread_id)s, %(pattern)s, %(model_spec)s, %(options)s, %(lock_key)s, 'running', 1
WHERE NOT EXISTS (SELECT 1 FROM checkpoints WHERE thread_id = %(thread_id)s)
  AND to_regclass('public.thread') IS NULL
ON CONFLICT (thread_id) DO NOTHING
RETURNING runs
"""

RECORD_END_SQL = """
UPDATE mas_threads SET status = %(status)s, error = %(error)s, updated_at = now(),
    fork_edits = NULL
WHERE thread_id = %(thread_id)s
"""

# The registry joined with each thread's newest root checkpoint and its lock holder.
THREADS_SQL = """
SELECT t.thread_id, t.pattern, t.model_spec, t.options, t.status, t.error, t.runs, t.updated_at,
       t.forked_from, t.fork_edits,
       (latest.metadata ->> 'step')::int AS last_step,
       EXISTS (
           SELECT 1 FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid = ((t.lock_key >> 32) & 4294967295)::oid
             AND l.objid = (t.lock_key & 4294967295)::oid
       ) AS locked
FROM mas_threads t
LEFT JOIN LATERAL (
    SELECT c.metadata FROM checkpoints c
    WHERE c.thread_id = t.thread_id AND c.checkpoint_ns = ''
    ORDER BY c.checkpoint_id DESC LIMIT 1
) latest ON true
WHERE %(thread_id)s::text IS NULL OR t.thread_id = %(thread_id)s::text
ORDER BY t.updated_at DESC
LIMIT %(limit)s
"""

# The checkpoints a prune removes (`mas_pruned`, filled by `prune_thread`), their
# writes, and the blobs no remaining checkpoint points at.
PRUNE_SQL = [
    """
    DELETE FROM checkpoint_writes w USING mas_pruned p
    WHERE w.thread_id = %(thread_id)s
      AND w.checkpoint_ns = p.checkpoint_ns AND w.checkpoint_id = p.checkpoint_id
    """,
    """
    DELETE FROM checkpoints c USING mas_pruned p
    WHERE c.thread_id = %(thread_id)s
      AND c.checkpoint_ns = p.checkpoint_ns AND c.checkpoint_id = p.checkpoint_id
    """,
    # A blob is live while any remaining checkpoint's channel_versions points at it.
    """
    DELETE FROM checkpoint_blobs b
    WHERE b.thread_id = %(thread_id)s AND NOT EXISTS (
        SELECT 1 FROM checkpoints c, jsonb_each_text(c.checkpoint -> 'channel_versions') v
        WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
          AND v.key = b.channel AND v.value = b.version
    )
    """,
]
# A fork: a new thread holding a thread's checkpoints up to one of them, in every
# namespace (a team's nested run too), their blobs, and the writes of the checkpoints
# before that one; that one's own writes stay behind, so the fork runs its next step.
FORK_SQL = [
    """
    INSERT INTO checkpoints
        (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
    SELECT %(target)s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
           metadata
    FROM checkpoints WHERE thread_id = %(source)s AND checkpoint_id <= %(checkpoint_id)s
    """,
    """
    INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(target)s, checkpoint_ns, channel, version, type, blob
    FROM checkpoint_blobs WHERE thread_id = %(source)s
    """,
    """
    INSERT INTO checkpoint_writes
        (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path)
    SELECT %(target)s, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path
    FROM checkpoint_writes WHERE thread_id = %(source)s AND checkpoint_id < %(checkpoint_id)s
    """,
    """
    INSERT INTO mas_threads
        (thread_id, pattern, model_spec, options, lock_key, status, error, runs, forked_from,
         fork_edits)
    SELECT %(target)s, pattern, model_spec, options, %(lock_key)s, 'failed',
           'forked; not run yet: `mas resume` runs it', 0,
           %(source)s || '@' || %(checkpoint_id)s, %(edits)s
    FROM mas_threads WHERE thread_id = %(source)s
    """,
]
CHECKPOINT_EXISTS_SQL = """
SELECT 1 FROM checkpoints
WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id = %s
"""
THREAD_EXISTS_SQL = """
SELECT 1 FROM checkpoints WHERE thread_id = %(t)s
UNION ALL SELECT 1 FROM mas_threads WHERE thread_id = %(t)s
"""

CHAIN_SQL = """
SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id,
       checkpoint -> 'channel_versions' AS versions
FROM checkpoints WHERE thread_id = %s ORDER BY checkpoint_ns, checkpoint_id DESC
"""
# (namespace, channel, version) of every stored value ("empty": a delta channel's step
# that stored only its writes)
STORED_SQL = """
SELECT checkpoint_ns, channel, version FROM checkpoint_blobs
WHERE thread_id = %s AND type <> 'empty'
"""


def checkpoints_to_prune(
    conn: Connection[Any], thread_id: str, keep: int, delta_channels: frozenset[str]
) -> list[tuple[str, str]]:
    """All but the newest `keep` checkpoints per namespace, except those a kept one
    still needs: a delta channel (LangGraph's `DeltaChannel`) is rebuilt from the writes
    of every checkpoint back to its last stored snapshot, so that chain stays."""
    stored = {
        (row["checkpoint_ns"], row["channel"], row["version"])
        for row in conn.execute(STORED_SQL, (thread_id,))
    }
    chains: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(CHAIN_SQL, (thread_id,)):
        chains.setdefault(row["checkpoint_ns"], []).append(row)
    pruned: list[tuple[str, str]] = []
    for namespace, rows in chains.items():  # newest first
        if len(rows) <= keep:
            continue
        by_id = {row["checkpoint_id"]: row for row in rows}
        kept = {row["checkpoint_id"] for row in rows[:keep]}
        oldest = rows[keep - 1]
        versions = oldest["versions"] or {}
        unseeded = {
            channel
            for channel in delta_channels & set(versions)
            if (namespace, channel, str(versions[channel])) not in stored
        }
        parent = by_id.get(oldest["parent_checkpoint_id"] or "")
        while unseeded and parent is not None:
            kept.add(parent["checkpoint_id"])
            versions = parent["versions"] or {}
            unseeded = {
                channel
                for channel in unseeded
                if channel in versions
                and (namespace, channel, str(versions[channel])) not in stored
            }
            parent = by_id.get(parent["parent_checkpoint_id"] or "")
        pruned += [
            (namespace, row["checkpoint_id"]) for row in rows if row["checkpoint_id"] not in kept
        ]
    return pruned


def _record(row: dict[str, Any]) -> ThreadRecord:
    status: ThreadStatus = row["status"]
    error = row["error"]
    if status == "running" and not row["locked"]:
        status, error = "failed", error or CRASHED_NOTE
    return ThreadRecord(
        thread_id=row["thread_id"],
        pattern=row["pattern"],
        model_spec=row["model_spec"],
        options=row["options"],
        status=status,
        error=error,
        runs=row["runs"],
        last_step=row["last_step"],
        updated_at=row["updated_at"],
        forked_from=row["forked_from"],
        fork_edits=row["fork_edits"],
    )


def _params(thread_id: str | None = None, limit: int = 1000) -> dict[str, Any]:
    return {"thread_id": thread_id, "limit": limit}


# --- async: what the runner needs ------------------------------------------------


def _run_params(
    thread_id: str, pattern: str, model_spec: str | None, options: dict[str, Any]
) -> dict[str, Any]:
    return {
        "thread_id": thread_id,
        "pattern": pattern,
        "model_spec": model_spec,
        "options": Jsonb(options),
        "lock_key": thread_lock_key(thread_id),
    }


async def aclaim_thread(
    conn: AsyncConnection[Any],
    thread_id: str,
    pattern: str,
    model_spec: str | None,
    options: dict[str, Any],
) -> bool:
    """Register a new thread's first run, if nothing knows its id yet; False says look
    closer (`aget_thread`): it may exist, or the database may be shared with the server."""
    cur = await conn.execute(CLAIM_SQL, _run_params(thread_id, pattern, model_spec, options))
    return await cur.fetchone() is not None


async def arecord_run_start(
    conn: AsyncConnection[Any],
    thread_id: str,
    pattern: str,
    model_spec: str | None,
    options: dict[str, Any],
) -> int:
    """Mark the thread running; returns which run of the thread this is (1, 2, ...)."""
    cur = await conn.execute(RECORD_START_SQL, _run_params(thread_id, pattern, model_spec, options))
    row = await cur.fetchone()
    return int(row["runs"]) if row else 1


async def arecord_run_end(
    conn: AsyncConnection[Any], thread_id: str, status: ThreadStatus, error: str | None = None
) -> None:
    await conn.execute(RECORD_END_SQL, {"thread_id": thread_id, "status": status, "error": error})


async def aget_thread(conn: AsyncConnection[Any], thread_id: str) -> ThreadRecord | None:
    """A thread the runner ran, or None."""
    cur = await conn.execute(THREADS_SQL, _params(thread_id, 1))
    row = await cur.fetchone()
    return _record(row) if row else None


# --- sync: what the CLI's admin commands need ------------------------------------


def list_threads(conn: Connection[Any], *, limit: int = 1000) -> list[ThreadRecord]:
    """Newest first, the runner's threads: id, pattern, status, last step, time."""
    return [_record(row) for row in conn.execute(THREADS_SQL, _params(limit=limit))]


def get_thread(conn: Connection[Any], thread_id: str) -> ThreadRecord | None:
    """A thread the runner ran, or None."""
    row = conn.execute(THREADS_SQL, _params(thread_id, 1)).fetchone()
    return _record(row) if row else None


def delete_thread(conn: Connection[Any], thread_id: str) -> None:
    """Remove a thread's checkpoints, writes, blobs and registry row in one transaction."""
    with conn.transaction():
        for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints", "mas_threads"):
            conn.execute(f"DELETE FROM {table} WHERE thread_id = %s", (thread_id,))


def count_checkpoints(conn: Connection[Any], thread_id: str, namespace: str | None = None) -> int:
    """A thread's checkpoints: all of them, or those of one namespace ("" the run's own)."""
    row = conn.execute(
        "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s"
        " AND (%s::text IS NULL OR checkpoint_ns = %s::text)",
        (thread_id, namespace, namespace),
    ).fetchone()
    return int(row["n"]) if row else 0


def prune_thread(
    conn: Connection[Any],
    thread_id: str,
    *,
    keep: int,
    delta_channels: frozenset[str] = frozenset(),
) -> int:
    """Delete all but the newest `keep` checkpoints of a thread (and those the kept
    ones' `delta_channels` are rebuilt from); returns how many went.

    LangGraph's Postgres saver has no prune. Pending writes of the kept
    checkpoints stay, so a thread pruned mid-run still resumes exactly.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1: the newest checkpoint is the thread's state")
    before = count_checkpoints(conn, thread_id)
    with conn.transaction():
        pruned = checkpoints_to_prune(conn, thread_id, keep, delta_channels)
        conn.execute(
            "CREATE TEMP TABLE mas_pruned (checkpoint_ns text, checkpoint_id text) ON COMMIT DROP"
        )
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO mas_pruned VALUES (%s, %s)", pruned)
        for statement in PRUNE_SQL:
            conn.execute(statement, {"thread_id": thread_id})
    return before - count_checkpoints(conn, thread_id)


async def afork_thread(
    conn: AsyncConnection[Any],
    source: str,
    checkpoint_id: str,
    target: str,
    edits: dict[str, Any] | None = None,
) -> None:
    """Copy `source` up to its root checkpoint `checkpoint_id` into a new thread `target`,
    in one transaction, and register it as a fork not yet run (`forked_from`), with the
    input `edits` its first run applies. Raises
    `LookupError` for an unknown checkpoint and `FileExistsError` for a taken id."""
    async with conn.transaction():
        cur = await conn.execute(CHECKPOINT_EXISTS_SQL, (source, checkpoint_id))
        if await cur.fetchone() is None:
            raise LookupError(f"thread {source} has no checkpoint {checkpoint_id}")
        cur = await conn.execute(THREAD_EXISTS_SQL, {"t": target})
        if await cur.fetchone() is not None:
            raise FileExistsError(f"thread {target} already exists")
        params = {
            "source": source,
            "target": target,
            "checkpoint_id": checkpoint_id,
            "lock_key": thread_lock_key(target),
            "edits": Jsonb(edits) if edits else None,
        }
        for statement in FORK_SQL:
            await conn.execute(statement, params)
