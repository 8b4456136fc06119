"""The saga on a scripted risk agent and the real order tables: happy path, failures at
each step, compensation retries and failures, approvals, input validation."""

from __future__ import annotations

from typing import Any

import pytest

import mas
from mas.errors import InputError, ResumeAnswerError
from mas.runner import RunResult
from mas_graphs.nodes.saga import idempotency_key
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_saga import (
    FLAG,
    order,
    saga_model,
    saga_rows,
)

FAST = {"backoff_s": 0.0, "max_attempts": 3}
FORWARD = ["risk_check", "reserve_inventory", "charge_payment", "schedule_shipping"]
UNDO = {
    "reserve_inventory": "release_reservation",
    "charge_payment": "refund_payment",
    "schedule_shipping": "cancel_shipment",
}


async def run_saga(
    thread_id: str, model: ScriptedChatModel | None = None, **extra: Any
) -> RunResult:
    data = {"order": order(), **FAST, **extra}
    return await mas.arun("saga", data, thread_id=thread_id, model=model or saga_model())


def kinds(table_rows: list[dict[str, Any]]) -> list[str]:
    return [row["kind"] for row in table_rows]


def events(values: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["node"], entry["event"]) for entry in values["step_log"]]


async def test_happy_path_writes_every_row_and_completes(thread_id: str) -> None:
    result = await run_saga(thread_id)
    assert result.status == "done"
    assert result["status"] == "completed"
    assert events(result) == [(step, "succeeded") for step in FORWARD]
    tables = await saga_rows(thread_id)
    assert kinds(tables["order_risk_checks"]) == ["assess"]
    assert [(r["kind"], r["sku"], r["quantity"]) for r in tables["order_reservations"]] == [
        ("reserve", "BOOK-42", 2)
    ]
    assert [(r["kind"], r["amount_cents"]) for r in tables["order_payments"]] == [("charge", 3_998)]
    assert kinds(tables["order_shipments"]) == ["schedule"]
    order_id = tables["order_payments"][0]["order_id"]
    key = idempotency_key(f"order:{order_id}", "charge_payment", "action")
    assert tables["order_payments"][0]["idempotency_key"] == key
    assert result["effects"]["charge_payment"]["key"] == key
    for entry in result["step_log"]:
        assert entry["attempts"] == 1
        assert entry["started_at"] <= entry["finished_at"]


@pytest.mark.parametrize("failing", FORWARD)
async def test_failure_at_each_step_compensates_completed_steps_in_reverse(
    thread_id: str, failing: str
) -> None:
    result = await run_saga(thread_id, faults=[{"step": failing}])
    assert result["status"] == "compensated"
    done = FORWARD[: FORWARD.index(failing)]
    undone = [UNDO[s] for s in [failing, *reversed(done)] if s in UNDO]
    assert events(result) == [
        *[(step, "succeeded") for step in done],
        (failing, "failed"),
        *[(node, "compensated") for node in undone],
    ]
    failure = result["failure"]
    assert failure["step"] == failing and "injected fault" in failure["error"]
    failed_entry = result["step_log"][len(done)]
    assert failed_entry["attempts"] == FAST["max_attempts"]
    # The failed step applied nothing, so its compensation had nothing to undo.
    if failing in UNDO:
        assert result["compensations"][failing]["detail"]["undone"] is False
    tables = await saga_rows(thread_id)
    expected = {
        "order_reservations": ["reserve", "release"] if "reserve_inventory" in done else [],
        "order_payments": ["charge", "refund"] if "charge_payment" in done else [],
        "order_shipments": [],
    }
    assert {table: kinds(tables[table]) for table in expected} == expected


async def test_transient_step_failure_is_retried_and_succeeds(thread_id: str) -> None:
    result = await run_saga(thread_id, faults=[{"step": "charge_payment", "failures": 2}])
    assert result["status"] == "completed"
    charge = next(e for e in result["step_log"] if e["node"] == "charge_payment")
    assert charge["attempts"] == 3
    assert kinds((await saga_rows(thread_id))["order_payments"]) == ["charge"]


async def test_compensation_that_fails_once_succeeds_on_retry(thread_id: str) -> None:
    faults = [
        {"step": "schedule_shipping"},
        {"step": "charge_payment", "phase": "compensation", "failures": 1},
    ]
    result = await run_saga(thread_id, faults=faults)
    assert result["status"] == "compensated"
    refund = next(e for e in result["step_log"] if e["node"] == "refund_payment")
    assert (refund["event"], refund["attempts"]) == ("compensated", 2)
    assert kinds((await saga_rows(thread_id))["order_payments"]) == ["charge", "refund"]


async def test_compensation_that_keeps_failing_waits_and_a_later_resume_completes_it(
    thread_id: str,
) -> None:
    # The refund fails on every attempt of the first run (an outage longer than the
    # retry budget); the later retry runs after the outage is over.
    faults = [
        {"step": "schedule_shipping"},
        {"step": "charge_payment", "phase": "compensation", "failures": 3},
    ]
    model = saga_model()
    stuck = await run_saga(thread_id, model, faults=faults)
    assert stuck.status == "interrupted"
    assert stuck["status"] == "compensation_failed"
    assert stuck["attention"]["step"] == "charge_payment"
    assert stuck.interrupts[0]["kind"] == "compensation_failed"
    assert stuck.interrupts[0]["node"] == "refund_payment"
    assert events(stuck)[-1] == ("refund_payment", "compensation_failed")
    tables = await saga_rows(thread_id)
    assert kinds(tables["order_payments"]) == ["charge"]
    assert kinds(tables["order_reservations"]) == ["reserve"], "not undone before the refund"

    with pytest.raises(ResumeAnswerError, match=r"answer\.retry"):
        await mas.aresume(thread_id, answer={"retry": False}, model=model)
    done = await mas.aresume(thread_id, answer={"retry": True}, model=model)
    assert done["status"] == "compensated"
    assert done["attention"] is None
    assert events(done)[-2:] == [
        ("refund_payment", "compensated"),
        ("release_reservation", "compensated"),
    ]
    tables = await saga_rows(thread_id)
    assert kinds(tables["order_payments"]) == ["charge", "refund"]
    assert kinds(tables["order_reservations"]) == ["reserve", "release"]


async def test_flagged_order_waits_for_approval_before_charging(thread_id: str) -> None:
    model = saga_model(FLAG)
    paused = await run_saga(thread_id, model)
    assert paused.status == "interrupted"
    assert paused.interrupts[0]["kind"] == "step_approval"
    assert paused.interrupts[0]["step"] == "charge_payment"
    assert kinds((await saga_rows(thread_id))["order_payments"]) == []
    done = await mas.aresume(
        thread_id, answer={"approve": True, "note": "known customer"}, model=model
    )
    assert done["status"] == "completed"
    assert ("await_approval", "approved") in events(done)
    assert model.calls == ["risk_checker"], "the recorded decision is not asked for again"


async def test_rejected_approval_compensates_the_completed_steps(thread_id: str) -> None:
    model = saga_model()
    paused = await run_saga(thread_id, model, require_approval=["schedule_shipping"])
    assert paused.interrupts[0]["step"] == "schedule_shipping"
    done = await mas.aresume(thread_id, answer={"approve": False, "note": "fraud"}, model=model)
    assert done["status"] == "compensated"
    assert done["failure"]["error"] == "rejected by approver: fraud"
    assert events(done)[-3:] == [
        ("await_approval", "rejected"),
        ("refund_payment", "compensated"),
        ("release_reservation", "compensated"),
    ]
    tables = await saga_rows(thread_id)
    assert kinds(tables["order_shipments"]) == []
    assert kinds(tables["order_payments"]) == ["charge", "refund"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"faults": [{"step": "teleport"}]}, "faults.0.step"),
        ({"order": order(quantity=-1)}, "order.quantity"),
        ({"order": order(sku="")}, "order.sku"),
        ({"faults": [{"step": "risk_check", "phase": "compensation"}]}, "no compensation"),
        ({"pause": {"at": "charge_payment:start", "marker_file": "/tmp/x"}}, "pause: Extra"),
        ({"require_approval": ["lunch"]}, "require_approval.0"),
        ({"surprise": 1}, "surprise"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
async def test_bad_input_is_rejected_naming_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError, match=field):
        await mas.arun("saga", {"order": order(), **bad}, model=saga_model())
