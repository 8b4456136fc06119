"""The one table mas-graphs keeps beside LangGraph's, a row per thread run by the runner,
and the function its writes use to confirm a thread's lock.

LangGraph's checkpoints say where a thread is; `mas_threads` says what it is
(pattern, model spec) and how its last run ended, which checkpoints alone
cannot tell apart (a crashed run and a running one look the same).
"""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg import AsyncCursor, Cursor

# Arbitrary fixed keys in Postgres' advisory-lock space, one per purpose.
SETUP_LOCK_KEY = 0x6D61_735F_7365_7475  # "mas_setu"

MAS_TABLES_SQL = """
CREATE TABLE IF NOT EXISTS mas_threads (
    thread_id   TEXT PRIMARY KEY,
    pattern     TEXT NOT NULL,
    model_spec  TEXT,
    options     JSONB NOT NULL DEFAULT '{}',
    lock_key    BIGINT NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT,
    runs        INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- "<thread id>@<checkpoint id>" a fork was made from
ALTER TABLE mas_threads ADD COLUMN IF NOT EXISTS forked_from TEXT;
-- a fork's input edits, applied when it next runs (again after a crash: they are idempotent)
ALTER TABLE mas_threads ADD COLUMN IF NOT EXISTS fork_edits JSONB;
CREATE OR REPLACE FUNCTION mas_confirm_lock(holder INTEGER, lock_key BIGINT) RETURNS VOID
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND pid = holder AND granted AND objsubid = 1
          AND classid = ((lock_key >> 32) & 4294967295)::oid
          AND objid = (lock_key & 4294967295)::oid
    ) THEN
        RAISE EXCEPTION 'session % no longer holds lock %', holder, lock_key
            USING ERRCODE = 'MA001';
    END IF;
END $$;
"""
# Raised by mas_confirm_lock, in the transaction of a write whose thread lock is gone.
LOCK_LOST_SQLSTATE = "MA001"


def thread_lock_key(thread_id: str) -> int:
    """A stable signed 64-bit advisory-lock key for a thread id."""
    digest = hashlib.blake2b(f"mas-thread:{thread_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def ensure_mas_tables(cur: Cursor[Any] | AsyncCursor[Any]) -> Any:
    """Create mas-graphs' own tables; returns the awaitable for an async cursor."""
    return cur.execute(MAS_TABLES_SQL)
