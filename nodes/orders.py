"""The order-fulfilment domain: an LLM risk check, then reserve inventory, charge payment
and schedule shipping, on real tables in the run's PostgreSQL; compensations release
the reservation, refund the charge and cancel the shipment.

Every effect is one row, inserted under its idempotency key (UNIQUE) in the same
statement that applies it: `INSERT ... ON CONFLICT (idempotency_key) DO NOTHING`.
If the row is already there, the effect was applied by an earlier execution and
the recorded row is returned instead. The effect tables form a ledger: an action
row (reserve, charge, schedule) and, once undone, its compensation row (release,
refund, cancel), which copies the action row's values and can only be written
when the action row exists, so a compensation never undoes what never happened.

Fault injection (input `faults`) is part of the domain so demos exercise the same
code paths as real failures; it only ever writes to the saga's own tables. Code that
must watch or hold an effect at its boundaries (a crash test that kills the process
right after an effect commits) installs an `EffectHook` from Python; nothing in a run's
input can.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row, scalar_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from mas_graphs.nodes import prompts
from mas_graphs.nodes.context import AgentContext, agent_context
from mas_graphs.nodes.saga import (
    EffectCall,
    EffectFn,
    Saga,
    SagaStep,
    StepOutcome,
    TransientEffectError,
    is_transient,
)
from mas_graphs.nodes.structured import StructuredOutputError, ask_agent
from mas_graphs.state.saga import COMPENSATION_NAMES, RiskAssessment, SagaInput

# Taken in the transaction that creates the tables, so concurrent first runs do not race.
SCHEMA_LOCK = 727_001
SCHEMA = """
CREATE TABLE IF NOT EXISTS order_risk_checks (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    thread_id text NOT NULL,
    order_id text NOT NULL,
    kind text NOT NULL CHECK (kind = 'assess'),
    decision text NOT NULL CHECK (decision IN ('approve', 'flag')),
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The model call's usage is kept with the decision, so a re-run that reuses the decision
-- after a crash still accounts for the call that made it.
ALTER TABLE order_risk_checks ADD COLUMN IF NOT EXISTS usage jsonb NOT NULL DEFAULT '[]';
CREATE TABLE IF NOT EXISTS order_reservations (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    thread_id text NOT NULL,
    order_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('reserve', 'release')),
    sku text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS order_payments (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    thread_id text NOT NULL,
    order_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('charge', 'refund')),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS order_shipments (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    thread_id text NOT NULL,
    order_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('schedule', 'cancel')),
    address text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS order_injected_faults (
    id bigserial PRIMARY KEY,
    thread_id text NOT NULL,
    step text NOT NULL,
    phase text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""
# table -> the columns an action writes (its compensation row copies them)
EFFECT_TABLES: dict[str, tuple[str, ...]] = {
    "order_risk_checks": ("decision", "reason", "usage"),
    "order_reservations": ("sku", "quantity"),
    "order_payments": ("amount_cents",),
    "order_shipments": ("address",),
}


async def create_order_tables(conn: AsyncConnection[Any]) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        # One statement at a time: the pool prepares every statement it sends.
        for statement in filter(str.strip, SCHEMA.split(";")):
            await conn.execute(statement)


# Pools whose database has the tables: the DDL takes locks (ALTER TABLE an exclusive
# one), so each process runs it once per database, not once per saga.
_prepared_pools: weakref.WeakSet[AsyncConnectionPool[Any]] = weakref.WeakSet()


# An effect row of this thread for another order, or of this order on another thread.
CROSSED_SQL = """
SELECT thread_id, order_id FROM (
    SELECT thread_id, order_id FROM order_risk_checks
    UNION ALL SELECT thread_id, order_id FROM order_reservations
    UNION ALL SELECT thread_id, order_id FROM order_payments
    UNION ALL SELECT thread_id, order_id FROM order_shipments
) effects
WHERE (thread_id = %(thread_id)s) <> (order_id = %(order_id)s)
LIMIT 1
"""


class SagaConflictError(ValueError):
    """A thread and an order that belong to different sagas (not worth retrying)."""


def order_saga_id(state: Mapping[str, Any]) -> str:
    """An order saga's id: the order, so its effects happen once whichever thread runs it."""
    return f"order:{state['order']['order_id']}"


async def prepare_order_tables(
    runtime: Runtime[AgentContext], thread_id: str, saga_id: str
) -> None:
    """Create the tables (once per database per process), then refuse to mix sagas: a
    thread id reused for another order (e.g. after `mas delete`) would replay the old
    order's effects, and an order started again on a new thread would be charged twice."""
    pool = await agent_context(runtime).database()
    async with pool.connection() as conn:
        if pool not in _prepared_pools:
            await create_order_tables(conn)
            _prepared_pools.add(pool)
        order_id = saga_id.removeprefix("order:")
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(CROSSED_SQL, {"thread_id": thread_id, "order_id": order_id})
            crossed = await cur.fetchone()
    if crossed is None:
        return
    if crossed["thread_id"] == thread_id:
        raise SagaConflictError(
            f"thread {thread_id} already applied effects for order {crossed['order_id']}; a "
            "thread runs one order's saga: start this order on a new thread id"
        )
    raise SagaConflictError(
        f"order {order_id} already has a saga on thread {crossed['thread_id']}: continue it "
        f"with `mas resume {crossed['thread_id']}`, or give this order a new order_id"
    )


async def order_rows(conn: AsyncConnection[Any], thread_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every effect row of one saga thread, per table, oldest first (without the risk
    check's model usage: bookkeeping, whose latency differs from run to run)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    async with conn.cursor(row_factory=dict_row) as cur:
        for table in EFFECT_TABLES:
            query = sql.SQL("SELECT * FROM {} WHERE thread_id = %s ORDER BY id").format(
                sql.Identifier(table)
            )
            await cur.execute(query, (thread_id,))
            rows[table] = [
                {k: v for k, v in row.items() if k != "usage"} for row in await cur.fetchall()
            ]
    return rows


# --- fault injection and effect hooks ----------------------------------------------


async def inject_fault(conn: AsyncConnection[Any], call: EffectCall) -> None:
    """Fail this attempt if the input asks for it and the fault's budget is not used up."""
    fault = next(
        (
            f
            for f in call.state.get("faults", [])
            if f["step"] == call.step and f["phase"] == call.phase
        ),
        None,
    )
    if fault is None:
        return
    where = (call.thread_id, call.step, call.phase)
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute(
            "SELECT count(*) FROM order_injected_faults "
            "WHERE thread_id = %s AND step = %s AND phase = %s",
            where,
        )
        used = int(await cur.fetchone() or 0)
    limit = fault["failures"]
    if limit is not None and used >= limit:
        return
    await conn.execute(
        "INSERT INTO order_injected_faults (thread_id, step, phase) VALUES (%s, %s, %s)", where
    )
    of = f" of {limit}" if limit is not None else ""
    raise TransientEffectError(f"injected fault in {call.node} (failure {used + 1}{of})")


Moment = Literal["start", "after_effect"]
# Called at a step's start (nothing of it has happened yet) and right after its effect
# committed (the row exists, the node's result is not checkpointed yet).
# The run's hooks travel in its context (`AgentContext.effect_hooks`).
EffectHook = Callable[[EffectCall, Moment], Awaitable[None]]


async def at_boundary(call: EffectCall, moment: Moment) -> None:
    hooks: tuple[EffectHook, ...] = agent_context(call.runtime).effect_hooks
    for hook in hooks:
        await hook(call, moment)


def hooked(effect: EffectFn) -> EffectFn:
    """`effect`, announced to the hooks before anything of it happens."""

    async def run(call: EffectCall) -> StepOutcome:
        await at_boundary(call, "start")
        return await effect(call)

    return run


# --- effects ------------------------------------------------------------------------------


def _outcome(row: dict[str, Any], columns: tuple[str, ...], replayed: bool) -> StepOutcome:
    detail = {"row": row["id"], "kind": row["kind"], **{c: row[c] for c in columns}}
    return StepOutcome(detail=detail, replayed=replayed)


async def _row(conn: AsyncConnection[Any], table: str, key: str) -> dict[str, Any] | None:
    query = sql.SQL("SELECT * FROM {} WHERE idempotency_key = %s").format(sql.Identifier(table))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, (key,))
        return await cur.fetchone()


async def apply_action(
    call: EffectCall, table: str, kind: str, values: dict[str, Any]
) -> StepOutcome:
    """Insert the action's row under its key; if it is there already, return that row."""
    columns = EFFECT_TABLES[table]
    pool = await agent_context(call.runtime).database()
    async with pool.connection() as conn:
        await inject_fault(conn, call)
        query = sql.SQL(
            "INSERT INTO {table} (idempotency_key, thread_id, order_id, kind, {columns}) "
            "VALUES (%(key)s, %(thread_id)s, %(order_id)s, %(kind)s, {values}) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING *"
        ).format(
            table=sql.Identifier(table),
            columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
            values=sql.SQL(", ").join(map(sql.Placeholder, columns)),
        )
        params = {
            "key": call.key,
            "thread_id": call.thread_id,
            "order_id": call.state["order"]["order_id"],
            "kind": kind,
            **values,
        }
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            inserted = await cur.fetchone()
        row = inserted or await _row(conn, table, call.key)
    assert row is not None
    await at_boundary(call, "after_effect")
    return _outcome(row, columns, replayed=inserted is None)


async def apply_compensation(call: EffectCall, table: str, kind: str) -> StepOutcome:
    """Insert the compensation's row, copied from the action's row, under its own key.
    Without an action row there is nothing to undo, and nothing is written."""
    columns = EFFECT_TABLES[table]
    pool = await agent_context(call.runtime).database()
    async with pool.connection() as conn:
        await inject_fault(conn, call)
        copied = sql.SQL(", ").join(map(sql.Identifier, columns))
        query = sql.SQL(
            "INSERT INTO {table} (idempotency_key, thread_id, order_id, kind, {columns}) "
            "SELECT %(key)s, thread_id, order_id, %(kind)s, {columns} FROM {table} "
            "WHERE idempotency_key = %(action_key)s "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING *"
        ).format(table=sql.Identifier(table), columns=copied)
        params = {"key": call.key, "kind": kind, "action_key": call.action_key}
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            inserted = await cur.fetchone()
        row = inserted or await _row(conn, table, call.key)
    await at_boundary(call, "after_effect")
    if row is None:
        return StepOutcome(detail={"kind": kind, "undone": False, "why": "no effect to undo"})
    return _outcome(row, columns, replayed=inserted is None)


# --- the steps ----------------------------------------------------------------------------


def _decision(outcome: StepOutcome) -> StepOutcome:
    """The recorded decision, its model call's usage, and whether a person must approve:
    a flagged order needs one before money moves."""
    detail = dict(outcome.detail)
    usage = tuple(detail.pop("usage", ()))
    return StepOutcome(
        detail=detail,
        replayed=outcome.replayed,
        approval_for=("charge_payment",) if detail.get("decision") == "flag" else (),
        usage=usage,
    )


async def assess_risk(call: EffectCall) -> StepOutcome:
    """The risk agent decides; the decision is recorded once. A re-run after a crash
    reuses the recorded decision instead of asking the model again."""
    pool = await agent_context(call.runtime).database()
    async with pool.connection() as conn:
        recorded = await _row(conn, "order_risk_checks", call.key)
    if recorded is not None:
        return _decision(_outcome(recorded, EFFECT_TABLES["order_risk_checks"], True))
    order = call.state["order"]
    try:
        reply = await ask_agent(
            call.runtime,
            "risk_checker",
            system=prompts.RISK_CHECKER,
            user=f"Order: {prompts.as_data({**order, 'total_cents': total_cents(order)})}",
            schema=RiskAssessment,
        )
    except StructuredOutputError as error:
        # An unreadable verdict is not an approval: a person decides instead.
        assessment = RiskAssessment(decision="flag", reason=f"risk agent failed: {error.problem}")
        usage: tuple[Any, ...] = tuple(error.usage)
    else:
        assessment, usage = reply.value, (reply.usage,)
    values = {**assessment.model_dump(), "usage": Jsonb(list(usage))}
    return _decision(await apply_action(call, "order_risk_checks", "assess", values))


def total_cents(order: dict[str, Any]) -> int:
    return int(order["quantity"]) * int(order["unit_price_cents"])


async def reserve_inventory(call: EffectCall) -> StepOutcome:
    order = call.state["order"]
    values = {"sku": order["sku"], "quantity": order["quantity"]}
    return await apply_action(call, "order_reservations", "reserve", values)


async def release_reservation(call: EffectCall) -> StepOutcome:
    return await apply_compensation(call, "order_reservations", "release")


async def charge_payment(call: EffectCall) -> StepOutcome:
    amount = total_cents(call.state["order"])
    return await apply_action(call, "order_payments", "charge", {"amount_cents": amount})


async def refund_payment(call: EffectCall) -> StepOutcome:
    return await apply_compensation(call, "order_payments", "refund")


async def schedule_shipping(call: EffectCall) -> StepOutcome:
    address = call.state["order"]["address"]
    return await apply_action(call, "order_shipments", "schedule", {"address": address})


async def cancel_shipment(call: EffectCall) -> StepOutcome:
    return await apply_compensation(call, "order_shipments", "cancel")


def order_saga(
    *, max_attempts: int, backoff_s: float, step_timeout_s: float, agent_timeout_s: float
) -> Saga:
    """The order-fulfilment saga: steps in order, each with its compensation, retry policy
    (transient errors only) and per-attempt timeout."""
    retry = RetryPolicy(
        max_attempts=max_attempts, initial_interval=backoff_s, jitter=False, retry_on=is_transient
    )

    def step(
        name: str, action: Any, compensation: Any = None, timeout_s: float = step_timeout_s
    ) -> SagaStep:
        return SagaStep(
            name=name,
            action=hooked(action),
            timeout_s=timeout_s,
            retry=retry,
            compensation=hooked(compensation) if compensation else None,
            compensation_node=COMPENSATION_NAMES.get(name) if compensation else None,
        )

    return Saga(
        steps=(
            step("risk_check", assess_risk, timeout_s=agent_timeout_s),
            step("reserve_inventory", reserve_inventory, release_reservation),
            step("charge_payment", charge_payment, refund_payment),
            step("schedule_shipping", schedule_shipping, cancel_shipment),
        ),
        prepare=prepare_order_tables,
        input_schema=SagaInput,
        saga_id=order_saga_id,
    )
