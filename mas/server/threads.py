"""Every thread in the project's database: the runner's (its registry, read by
`mas_graphs.checkpoints.admin`) and the Agent Protocol server's (Aegra's own tables,
read here, with the server code). For a served thread the server's status is the one
source of truth: it leases each run to one worker and runs it again if that worker
dies, which our registry could only guess at. A thread is one kind or the other, never
both (the runner refuses to resume a served thread)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, Connection

from mas_graphs.checkpoints import admin
from mas_graphs.checkpoints.admin import ThreadRecord

# The server's threads that ran one of the graphs (a thread never run has no graph yet),
# with the server's status, the last run's error, and the newest checkpoint's step.
SERVED_SQL = """
SELECT t.thread_id, t.metadata_json ->> 'graph_id' AS pattern, t.metadata_json ->> 'owner' AS owner,
       CASE t.status WHEN 'busy' THEN 'running' WHEN 'interrupted' THEN 'interrupted'
                     WHEN 'error' THEN 'failed' ELSE 'done' END AS status,
       (SELECT r.error_message FROM runs r WHERE r.thread_id = t.thread_id
        ORDER BY r.created_at DESC LIMIT 1) AS error,
       (SELECT count(*) FROM runs r WHERE r.thread_id = t.thread_id)::int AS runs,
       (SELECT (c.metadata ->> 'step')::int FROM checkpoints c
        WHERE c.thread_id = t.thread_id AND c.checkpoint_ns = ''
        ORDER BY c.checkpoint_id DESC LIMIT 1) AS last_step,
       t.updated_at
FROM thread t
WHERE t.metadata_json ->> 'graph_id' IS NOT NULL
  AND (%(thread_id)s::text IS NULL OR t.thread_id = %(thread_id)s::text)
ORDER BY t.updated_at DESC
LIMIT %(limit)s
"""
SERVER_TABLES_SQL = "SELECT to_regclass('public.thread') IS NOT NULL AS present"


def _served(row: dict[str, Any]) -> ThreadRecord:
    return ThreadRecord(
        thread_id=row["thread_id"],
        pattern=row["pattern"],
        model_spec=None,
        options={},
        status=row["status"],
        error=row["error"],
        runs=row["runs"],
        last_step=row["last_step"],
        updated_at=row["updated_at"],
        served_by="server",
        owner=row["owner"],
    )


def _params(thread_id: str | None = None, limit: int = 1000) -> dict[str, Any]:
    return {"thread_id": thread_id, "limit": limit}


def _served_threads(conn: Connection[Any], thread_id: str | None, limit: int) -> list[ThreadRecord]:
    present = conn.execute(SERVER_TABLES_SQL).fetchone()
    if not present or not present["present"]:
        return []
    return [_served(row) for row in conn.execute(SERVED_SQL, _params(thread_id, limit))]


def list_threads(conn: Connection[Any], *, limit: int = 1000) -> list[ThreadRecord]:
    """Newest first, the runner's and the server's: id, pattern, status, last step, time."""
    both = admin.list_threads(conn, limit=limit) + _served_threads(conn, None, limit)
    return sorted(both, key=lambda r: r.updated_at, reverse=True)[:limit]


def get_thread(conn: Connection[Any], thread_id: str) -> ThreadRecord | None:
    if (record := admin.get_thread(conn, thread_id)) is not None:
        return record
    served = _served_threads(conn, thread_id, 1)
    return served[0] if served else None


async def aget_thread(conn: AsyncConnection[Any], thread_id: str) -> ThreadRecord | None:
    if (record := await admin.aget_thread(conn, thread_id)) is not None:
        return record
    present = await (await conn.execute(SERVER_TABLES_SQL)).fetchone()
    if not present or not present["present"]:
        return None
    served = await (await conn.execute(SERVED_SQL, _params(thread_id, 1))).fetchone()
    return _served(served) if served else None
