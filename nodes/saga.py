"""Saga nodes: run a step's action, undo a step, ask for approval, wait for an operator.

A saga is a list of `SagaStep`s. Each action and compensation is an `EffectFn`
that receives an `EffectCall` carrying its idempotency key; the effect function
must apply its effect at most once per key (nodes/orders.py does it with a
UNIQUE constraint). The node functions here are small: they call the effect,
record the outcome in the step log, and let the graph's edges decide what runs
next (see graphs/saga.py). Retries and timeouts live on the nodes, not in loops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from langgraph.errors import NodeError, NodeTimeoutError
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy
from pydantic import BaseModel

from mas_graphs.nodes.context import AgentContext, node_attempt
from mas_graphs.nodes.errors import describe_error, error_parts
from mas_graphs.nodes.inputs import ask_person, input_fields, validated_input
from mas_graphs.state.common import CallUsage
from mas_graphs.state.saga import (
    ApprovalAnswer,
    ApprovalRecord,
    CompensationRetryAnswer,
    Effect,
    Failure,
    LogEntry,
    Phase,
    SagaState,
)

FINISH = "finish_saga"
REQUEST_APPROVAL = "request_approval"
AWAIT_APPROVAL = "await_approval"
AWAIT_OPERATOR = "await_operator"


class TransientEffectError(ConnectionError):
    """A failure worth retrying: the effect's backend was unavailable."""


def is_transient(error: BaseException) -> bool:
    """Retry what may succeed next time: connection trouble and timeouts, not bad requests."""
    if isinstance(error, StepAttemptError):
        error = error.cause
    return isinstance(
        error, ConnectionError | TimeoutError | NodeTimeoutError | psycopg.OperationalError
    )


class StepAttemptError(Exception):
    """An action or compensation attempt failed; carries what the error handler logs."""

    def __init__(self, cause: Exception, *, attempt: int, started_at: str | None) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause, self.attempt, self.started_at = cause, attempt, started_at


class MissingThreadError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "a saga needs a checkpointer and a thread id: its idempotency keys derive from it"
        )


@dataclass(frozen=True)
class EffectCall:
    """What an action or compensation gets: its key, the saga state and the run context."""

    thread_id: str
    saga_id: str
    step: str
    node: str
    phase: Phase
    key: str
    state: SagaState
    runtime: Runtime[AgentContext]

    @property
    def action_key(self) -> str:
        """The key of the step's action: a compensation undoes exactly that effect."""
        return idempotency_key(self.saga_id, self.step, "action")


@dataclass(frozen=True)
class StepOutcome:
    detail: dict[str, Any]
    replayed: bool = False
    # later steps this step asks a person to approve (e.g. a flagged risk check)
    approval_for: tuple[str, ...] = ()
    usage: tuple[CallUsage, ...] = ()


EffectFn = Callable[[EffectCall], Awaitable[StepOutcome]]


@dataclass(frozen=True)
class SagaStep:
    name: str
    action: EffectFn
    timeout_s: float
    retry: RetryPolicy
    compensation: EffectFn | None = None
    compensation_node: str | None = None


@dataclass(frozen=True)
class Saga:
    steps: tuple[SagaStep, ...]
    # idempotent setup before the first step (creating the effect tables) and the check
    # that this thread may run this saga: (runtime, thread id, saga id)
    prepare: Callable[[Runtime[AgentContext], str, str], Awaitable[None]]
    # what a run's input must look like (checked in the first node, for server clients)
    input_schema: type[BaseModel]
    # what the effects are keyed by: the business object the saga acts on (an order),
    # so one order's effects happen once whatever thread runs it
    saga_id: Callable[[Mapping[str, Any]], str]
    step_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "step_names", tuple(s.name for s in self.steps))

    def step(self, name: str) -> SagaStep:
        return next(s for s in self.steps if s.name == name)

    def compensation_nodes(self) -> list[str]:
        return [s.compensation_node for s in self.steps if s.compensation_node]


def idempotency_key(saga_id: str, step: str, phase: Phase) -> str:
    return f"{saga_id}:{step}:{phase}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _timestamp(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds") if epoch else None


def _thread_id(runtime: Runtime[AgentContext]) -> str:
    info = runtime.execution_info
    if info is None or not info.thread_id:
        raise MissingThreadError()
    return info.thread_id


def _entry(
    step: str,
    node: str,
    phase: Literal["action", "compensation", "approval"],
    event: Any,
    *,
    started_at: str | None,
    attempts: int,
    detail: str,
) -> LogEntry:
    finished = now()
    return LogEntry(
        step=step,
        node=node,
        phase=phase,
        event=event,
        started_at=started_at or finished,
        finished_at=finished,
        attempts=attempts,
        detail=detail[:1_000],
    )


def describe(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in detail.items())


async def _attempt(
    saga: Saga,
    fn: EffectFn,
    step: str,
    node: str,
    phase: Phase,
    state: SagaState,
    runtime: Runtime[AgentContext],
) -> tuple[StepOutcome, Effect, int, str | None]:
    """One attempt of an effect, announced live; failures carry the attempt for the log."""
    info = runtime.execution_info
    attempt = node_attempt(runtime)
    started_at = _timestamp(info.node_first_attempt_time if info else None)
    thread_id = _thread_id(runtime)
    saga_id = saga.saga_id(state)
    key = idempotency_key(saga_id, step, phase)
    runtime.stream_writer({"node": node, "step": step, "event": "started", "attempt": attempt})
    try:
        outcome = await fn(EffectCall(thread_id, saga_id, step, node, phase, key, state, runtime))
    except Exception as error:  # a timeout's cancellation is not an Exception: it passes
        raise StepAttemptError(error, attempt=attempt, started_at=started_at) from error
    return (
        outcome,
        Effect(key=key, replayed=outcome.replayed, detail=outcome.detail),
        attempt,
        started_at,
    )


# --- nodes ------------------------------------------------------------------------------


def prepare_node(saga: Saga) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def open_saga(state: SagaState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        """Validate the input (a server's client sends it straight here), then prepare."""
        data = validated_input("saga", saga.input_schema, input_fields(saga.input_schema, state))
        await saga.prepare(runtime, _thread_id(runtime), saga.saga_id(data.model_dump()))
        return {**data.model_dump(), "status": "running", "started_at": now()}

    return open_saga


def action_node(saga: Saga, step: SagaStep) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def run_action(state: SagaState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        outcome, effect, attempts, started_at = await _attempt(
            saga, step.action, step.name, step.name, "action", state, runtime
        )
        entry = _entry(
            step.name, step.name, "action", "succeeded",
            started_at=started_at, attempts=attempts, detail=describe(outcome.detail),
        )  # fmt: skip
        runtime.stream_writer({"node": step.name, "step": step.name, "event": "succeeded"})
        return {
            "effects": {step.name: effect},
            "step_log": [entry],
            "approval_required": list(outcome.approval_for),
            "usage": list(outcome.usage),
        }

    run_action.__name__ = step.name
    return run_action


def compensation_node(saga: Saga, step: SagaStep) -> Callable[..., Awaitable[dict[str, Any]]]:
    assert step.compensation is not None and step.compensation_node is not None
    compensate, node = step.compensation, step.compensation_node

    async def run_compensation(state: SagaState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        outcome, effect, attempts, started_at = await _attempt(
            saga, compensate, step.name, node, "compensation", state, runtime
        )
        entry = _entry(
            step.name, node, "compensation", "compensated",
            started_at=started_at, attempts=attempts, detail=describe(outcome.detail),
        )  # fmt: skip
        runtime.stream_writer({"node": node, "step": step.name, "event": "compensated"})
        return {"compensations": {step.name: effect}, "step_log": [entry], "attention": None}

    run_compensation.__name__ = node
    return run_compensation


def _failure_entry(
    step: str, node: str, phase: Phase, error: NodeError, retry: RetryPolicy
) -> tuple[LogEntry, str]:
    cause = error.error
    if isinstance(cause, StepAttemptError):
        attempts, started_at, text = cause.attempt, cause.started_at, str(cause)
    else:
        # A timeout (raised around the node), or an error restored from a checkpoint
        # after a crash: either way every attempt was used.
        attempts, started_at = retry.max_attempts, None
        name, message = error_parts(cause)
        text = message if name == StepAttemptError.__name__ else describe_error(cause)
    event = "failed" if phase == "action" else "compensation_failed"
    return _entry(
        step, node, phase, event, started_at=started_at, attempts=attempts, detail=text
    ), text


def plan_compensation(saga: Saga, state: SagaState, attempted: str | None) -> list[str]:
    """Steps to undo, newest first. An `attempted` step that failed comes first: an
    attempt may have applied its effect before failing (e.g. a timeout after the commit),
    and a compensation undoes only an effect recorded under the action's key, so it is
    safe either way."""
    done = [name for name in saga.step_names if name in state.get("effects", {})]
    candidates = [*([attempted] if attempted else []), *reversed(done)]
    return [name for name in candidates if saga.step(name).compensation is not None]


def start_compensation(
    saga: Saga,
    state: SagaState,
    failure: Failure,
    *,
    attempted: str | None,
    update: dict[str, Any],
) -> Command[Any]:
    plan = plan_compensation(saga, state, attempted)
    return Command(
        update={**update, "status": "compensating", "failure": failure, "to_compensate": plan},
        goto=next_compensation(saga, {**state, "to_compensate": plan}),
    )


def action_failed_handler(saga: Saga, step: SagaStep) -> Callable[..., Command[Any]]:
    def action_failed(state: SagaState, error: NodeError) -> Command[Any]:
        """Retries are spent: undo what was done, newest first."""
        entry, text = _failure_entry(step.name, step.name, "action", error, step.retry)
        failure = Failure(step=step.name, node=step.name, error=text)
        return start_compensation(
            saga, state, failure, attempted=step.name, update={"step_log": [entry]}
        )

    return action_failed


def compensation_failed_handler(step: SagaStep) -> Callable[..., Command[Any]]:
    assert step.compensation_node is not None
    node = step.compensation_node

    def compensation_failed(state: SagaState, error: NodeError) -> Command[Any]:
        """Retries are spent: stop and wait for an operator; the plan stays in the state."""
        entry, text = _failure_entry(step.name, node, "compensation", error, step.retry)
        return Command(
            update={
                "status": "compensation_failed",
                "attention": Failure(step=step.name, node=node, error=text),
                "step_log": [entry],
            },
            goto=AWAIT_OPERATOR,
        )

    return compensation_failed


def next_compensation(saga: Saga, state: SagaState) -> str:
    done = state.get("compensations", {})
    for name in state.get("to_compensate", []):
        if name not in done:
            node = saga.step(name).compensation_node
            assert node is not None
            return node
    return FINISH


def needs_approval(state: SagaState, step: str) -> bool:
    wanted = step in state["require_approval"] or step in state.get("approval_required", [])
    return wanted and step not in state.get("approvals", {})


def next_action(saga: Saga, state: SagaState) -> str:
    """The next step to run, its approval gate first, or the end."""
    effects = state.get("effects", {})
    for name in saga.step_names:
        if name not in effects:
            return REQUEST_APPROVAL if needs_approval(state, name) else name
    return FINISH


def pending_step(saga: Saga, state: SagaState) -> str:
    effects = state.get("effects", {})
    return next(name for name in saga.step_names if name not in effects)


def request_node(saga: Saga) -> Callable[..., dict[str, Any]]:
    def request_approval(state: SagaState) -> dict[str, Any]:
        """Record when a person was first asked: the node that waits for the answer runs
        again when the answer comes (and after a crash), and must not move that time."""
        step = pending_step(saga, state)
        if step in state.get("approval_requested", {}):
            return {}
        return {"approval_requested": {step: now()}}

    return request_approval


def approval_node(saga: Saga) -> Callable[..., Command[Any]]:
    def await_approval(state: SagaState) -> Command[Any]:
        """Pause before a step that needs a person's approval; rejecting it compensates."""
        step = pending_step(saga, state)
        asked_at = state.get("approval_requested", {}).get(step)
        answer = ask_person(
            {
                "kind": "step_approval",
                "step": step,
                "order": state["order"],
                "reason": "flagged by an earlier step"
                if step in state.get("approval_required", [])
                else "the input requires approval",
            },
            ApprovalAnswer,
        )
        event = "approved" if answer.approve else "rejected"
        entry = _entry(step, AWAIT_APPROVAL, "approval", event, started_at=asked_at, attempts=1,
                       detail=answer.note)  # fmt: skip
        update: dict[str, Any] = {
            "approvals": {step: ApprovalRecord(approved=answer.approve, note=answer.note)},
            "step_log": [entry],
        }
        if answer.approve:
            return Command(update={**update, "status": "running"}, goto=step)
        reason = f"rejected by approver: {answer.note or 'no reason given'}"
        failure = Failure(step=step, node=AWAIT_APPROVAL, error=reason)
        # The rejected step never ran: only the completed ones are undone.
        return start_compensation(saga, state, failure, attempted=None, update=update)

    return await_approval


def await_operator(state: SagaState) -> Command[Any]:
    """A compensation ran out of attempts: wait, durably, until an operator retries it."""
    attention = state.get("attention")
    assert attention is not None
    ask_person(
        {
            "kind": "compensation_failed",
            "status": "compensation_failed",
            "step": attention["step"],
            "node": attention["node"],
            "failure": attention["error"],
        },
        CompensationRetryAnswer,
    )
    return Command(update={"status": "compensating"}, goto=attention["node"])


def finish_saga(state: SagaState) -> dict[str, Any]:
    status = "compensated" if state.get("failure") else "completed"
    return {"status": status, "finished_at": now()}


def approval_answer(payload: dict[str, Any]) -> type[ApprovalAnswer]:
    return ApprovalAnswer


def compensation_retry_answer(payload: dict[str, Any]) -> type[CompensationRetryAnswer]:
    return CompensationRetryAnswer
