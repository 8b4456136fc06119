"""Saga state, its validated input (an order to fulfil), and the risk agent's output."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import TypedDict

from mas_graphs.state.common import CallUsage, TokenLimits, TokenLimitsState, merge_dicts

# The order-fulfilment saga: each step's action node, and the node that undoes it.
STEP_NAMES = ("risk_check", "reserve_inventory", "charge_payment", "schedule_shipping")
COMPENSATION_NAMES = {
    "reserve_inventory": "release_reservation",
    "charge_payment": "refund_payment",
    "schedule_shipping": "cancel_shipment",
}
StepName = Literal["risk_check", "reserve_inventory", "charge_payment", "schedule_shipping"]
Phase = Literal["action", "compensation"]
SagaStatus = Literal[
    "running", "awaiting_approval", "compensating", "completed", "compensated",
    "compensation_failed",
]  # fmt: skip
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"


# --- input -------------------------------------------------------------------------


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(pattern=IDENTIFIER, description="e.g. 'A-1001'")
    customer: str = Field(min_length=1, max_length=200)
    sku: str = Field(pattern=IDENTIFIER)
    quantity: int = Field(ge=1, le=1_000)
    unit_price_cents: int = Field(ge=0, le=10_000_000)
    address: str = Field(min_length=1, max_length=500)
    notes: str = Field(default="", max_length=2_000, description="Shown to the risk agent.")


class Fault(BaseModel):
    """An injected failure, for demos: every attempt, or the first `failures` attempts, of
    a step's action (or of its compensation) raise a transient error. Attempts are counted
    in the saga's own `order_injected_faults` table (nothing outside the saga's tables is
    touched), so the count survives crashes and resumes."""

    model_config = ConfigDict(extra="forbid")

    step: StepName
    phase: Phase = "action"
    failures: int | None = Field(default=None, ge=1, le=1_000, description="None: every attempt")

    @model_validator(mode="after")
    def _compensable(self) -> Fault:
        if self.phase == "compensation" and self.step not in COMPENSATION_NAMES:
            raise ValueError(f"step {self.step} has no compensation to fail")
        return self


class SagaInput(TokenLimits):
    """An order to fulfil, plus which steps need a person's approval and injected faults."""

    model_config = ConfigDict(extra="forbid")

    order: Order
    require_approval: list[StepName] = Field(default_factory=list, max_length=len(STEP_NAMES))
    faults: list[Fault] = Field(default_factory=list, max_length=8)


class SagaOptions(BaseModel):
    """How the graph is built: retry policy and per-attempt timeouts (kept for resume)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_s: float = Field(default=0.5, ge=0, le=60)
    step_timeout_s: float = Field(default=30.0, gt=0, le=3_600)
    agent_timeout_s: float = Field(default=300.0, gt=0, le=3_600)


# --- answers to interrupts ----------------------------------------------------------


class ApprovalAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    note: str = Field(default="", max_length=2_000)


class CompensationRetryAnswer(BaseModel):
    """After a compensation ran out of attempts: retry it once the cause is fixed."""

    model_config = ConfigDict(extra="forbid")

    retry: Literal[True]
    note: str = Field(default="", max_length=2_000)


# --- structured agent output ----------------------------------------------------------


class RiskAssessment(BaseModel):
    decision: Literal["approve", "flag"]
    reason: str = Field(max_length=300)


# --- graph state ------------------------------------------------------------------------


class LogEntry(TypedDict):
    """One outcome in the step log: an action, a compensation or an approval."""

    step: str
    node: str
    phase: Literal["action", "compensation", "approval"]
    event: Literal[
        "succeeded", "failed", "compensated", "compensation_failed", "approved", "rejected"
    ]
    started_at: str
    finished_at: str
    attempts: int
    detail: str


class Effect(TypedDict):
    """What an action or compensation did, under its idempotency key."""

    key: str
    replayed: bool
    detail: dict[str, Any]


class Failure(TypedDict):
    step: str
    node: str
    error: str


class ApprovalRecord(TypedDict):
    approved: bool
    note: str


class SagaInputState(TokenLimitsState):
    """A saga's input once its first node has validated it: every field
    of `SagaInput`, defaults filled in, so nodes read them without defaults of their own."""

    order: dict[str, Any]
    require_approval: list[str]
    faults: list[dict[str, Any]]


class SagaState(SagaInputState, total=False):
    """The input, and the channels the run writes as it goes."""

    status: SagaStatus
    started_at: str
    finished_at: str
    step_log: Annotated[list[LogEntry], operator.add]
    # step -> its action's effect; a step is done when it is here
    effects: Annotated[dict[str, Effect], merge_dicts]
    # step -> its compensation's effect; a compensation is done when it is here
    compensations: Annotated[dict[str, Effect], merge_dicts]
    # steps an earlier step (the risk agent) asked a person to approve
    approval_required: Annotated[list[str], operator.add]
    approvals: Annotated[dict[str, ApprovalRecord], merge_dicts]
    # step -> when a person was first asked to approve it
    approval_requested: Annotated[dict[str, str], merge_dicts]
    failure: Failure | None
    # steps to undo, in the order to undo them (reverse of execution)
    to_compensate: list[str]
    # the compensation that ran out of attempts and waits for an operator
    attention: Failure | None
    usage: Annotated[list[CallUsage], operator.add]
