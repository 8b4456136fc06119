"""Scripts for the saga's risk agent (see tests/support/scripted.py), and sample orders."""

from __future__ import annotations

import os
import uuid
from typing import Any

import psycopg

from mas_graphs.nodes.orders import order_rows
from tests.support.factories import decode
from tests.support.scripted import ScriptedChatModel

APPROVE = {"decision": "approve", "reason": "an ordinary order"}
FLAG = {"decision": "flag", "reason": "an unusually large order"}


def saga_agent(system: str) -> str:
    """Which saga agent a system prompt belongs to (there is one: the risk checker)."""
    return "risk_checker" if "order risk checker" in system else "unknown"


def order(**overrides: Any) -> dict[str, Any]:
    """An order; a new order id each time, since an order has one saga (one thread)."""
    return {
        "order_id": f"A-{uuid.uuid4().hex[:10]}",
        "customer": "Ada Lovelace",
        "sku": "BOOK-42",
        "quantity": 2,
        "unit_price_cents": 1_999,
        "address": "12 Analytical Row, London",
        **overrides,
    }


def saga_script(risk: Any = None) -> dict[str, Any]:
    return {"risk_checker": APPROVE if risk is None else risk}


def notebook_model() -> Any:
    """The deterministic model notebooks/saga.ipynb runs on in the test suite."""
    return saga_model()


def snapshot(tables: dict[str, list[dict[str, Any]]], thread_id: str) -> dict[str, list[Any]]:
    """The rows minus what differs between threads anyway (ids, times, the thread and its
    order's id)."""
    orders = {row["order_id"] for rows in tables.values() for row in rows}

    def same(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for order_id in orders:
            value = value.replace(order_id, "<order>")
        return value.replace(thread_id, "<thread>")

    return {
        table: [
            {k: same(v) for k, v in row.items() if k not in ("id", "created_at")}
            for row in table_rows
        ]
        for table, table_rows in tables.items()
    }


def saga_model(risk: Any = None) -> ScriptedChatModel:
    script = {agent: decode(entry) for agent, entry in saga_script(risk).items()}
    return ScriptedChatModel(script=script, classify=saga_agent)


async def saga_rows(thread_id: str) -> dict[str, list[dict[str, Any]]]:
    """The saga's rows in its order tables, read from DATABASE_URL."""
    async with await psycopg.AsyncConnection.connect(os.environ["DATABASE_URL"]) as conn:
        return await order_rows(conn, thread_id)
