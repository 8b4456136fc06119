"""End to end on the embedded Gemma 3 270M model: a real supervisor run, stored in Postgres."""

from __future__ import annotations

import psycopg
import pytest

import mas
from checkpoints.admin import get_thread
from checkpoints.savers import CONNECTION_KWARGS


@pytest.mark.gemma
def test_supervisor_completes_on_the_embedded_model(pg_dsn: str, thread_id: str) -> None:
    task = {
        "task": "Should a small team use PostgreSQL as its job queue?",
        "workers": [
            {"name": "advocate", "role": "Argue for using PostgreSQL."},
            {"name": "skeptic", "role": "Argue against using PostgreSQL."},
        ],
    }
    result = mas.run("supervisor", task, thread_id=thread_id, model="llamacpp")
    assert result.status == "done"
    assert set(result["results"]) <= {"advocate", "skeptic"} and result["results"]
    synthesis = result["synthesis"]
    assert isinstance(synthesis["summary"], str) and 0 <= synthesis["confidence"] <= 1
    assert sum(u["output_tokens"] for u in result["usage"]) > 0
    with psycopg.connect(pg_dsn, **CONNECTION_KWARGS) as conn:
        record = get_thread(conn, thread_id)
    assert record is not None and record.status == "done" and record.model_spec == "llamacpp"
