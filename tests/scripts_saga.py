"""Scripts for the saga's risk agent (see tests/scripted.py), and sample orders."""

from __future__ import annotations

from typing import Any

APPROVE = {"decision": "approve", "reason": "an ordinary order"}
FLAG = {"decision": "flag", "reason": "an unusually large order"}


def saga_agent(system: str) -> str:
    """Which saga agent a system prompt belongs to (there is one: the risk checker)."""
    return "risk_checker" if "order risk checker" in system else "unknown"


def order(**overrides: Any) -> dict[str, Any]:
    return {
        "order_id": "A-1001",
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
    from tests.factories import decode
    from tests.scripted import ScriptedChatModel

    return ScriptedChatModel(
        script={agent: decode(entry) for agent, entry in saga_script().items()},
        classify=saga_agent,
    )


def snapshot(tables: dict[str, list[dict[str, Any]]], thread_id: str) -> dict[str, list[Any]]:
    """The rows minus what differs between threads anyway (ids, times, the thread id)."""
    return {
        table: [
            {
                k: (v.replace(thread_id, "<thread>") if isinstance(v, str) else v)
                for k, v in row.items()
                if k not in ("id", "created_at")
            }
            for row in table_rows
        ]
        for table, table_rows in tables.items()
    }
