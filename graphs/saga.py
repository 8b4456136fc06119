"""The saga pattern: steps with side effects run in order; when one still fails after
its retries, every completed step is undone in reverse order by its compensation.

    open_saga -> [approval] -> risk_check -> [approval] -> reserve_inventory
      -> charge_payment -> schedule_shipping -> finish_saga                 (completed)
    ([approval]: request_approval, which records when a person was asked, then
     await_approval, which waits for the answer)
    any step's retries spent (its error handler), or an approval rejected:
      -> cancel_shipment -> refund_payment -> release_reservation -> finish_saga  (compensated)
    a compensation's retries spent (its error handler):
      -> await_operator (interrupt; status compensation_failed)
         -- `mas resume THREAD --answer '{"retry": true}'` --> that compensation again

Every step and compensation is its own node with a `RetryPolicy` (transient errors
only, exponential backoff) and a per-attempt timeout; routing is by conditional
edges and `Command`s computed from the state: the next step is the first one
without a recorded effect, the next compensation the first entry of the
`to_compensate` plan (newest step first) without a recorded compensation. The
plan is written in the same checkpointed update that records the failure, so a
crash can never lose a compensation: a resumed thread carries on with the plan.

Delivery guarantees, precisely:

- Node execution is at-least-once. The runner checkpoints after every superstep
  (`durability="sync"`); a process killed while a node runs loses that node's
  result, and the resumed thread runs the node again from its start. Retries run
  it again too. So an action or compensation function may run more than once,
  and an LLM call inside one (the risk check) may be repeated if the kill comes
  before its decision is recorded.
- The effect is effectively-once. Each action and compensation gets the
  idempotency key `f"{saga_id}:{step}:{action|compensation}"`, where the saga id
  names what the saga acts on (`order:<order_id>`), stored in a
  UNIQUE column of the row that *is* the effect, written by one
  `INSERT ... ON CONFLICT DO NOTHING` statement. A re-execution finds the row,
  applies nothing, and returns the recorded row (marked `replayed`), whether the
  first execution was cut off before or after its commit. A compensation's row
  is only written when its action's row exists, so undoing is exact too.
- One saga per order, one order per thread: before its first step a saga refuses a
  thread that already applied another order's effects (a thread id reused after
  `mas delete` would replay them) and an order that already has a saga on another
  thread (it would be charged twice).
- What the key does not cover: effects outside those tables (e.g. a real payment
  provider) are effectively-once only if that provider honours the same key.

The risk-check agent's decision is recorded under its key like any effect; a
re-run reuses the recorded decision, so a crash cannot turn a flagged order
into an approved one by asking the model twice.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from mas_graphs.graphs.views.saga import VIEW
from mas_graphs.nodes.context import AgentContext, graph_defaults, with_default_context
from mas_graphs.nodes.orders import order_saga
from mas_graphs.nodes.saga import (
    AWAIT_APPROVAL,
    AWAIT_OPERATOR,
    FINISH,
    REQUEST_APPROVAL,
    Saga,
    action_failed_handler,
    action_node,
    approval_answer,
    approval_node,
    await_operator,
    compensation_failed_handler,
    compensation_node,
    compensation_retry_answer,
    finish_saga,
    next_action,
    next_compensation,
    prepare_node,
    request_node,
)
from mas_graphs.state.pattern import PatternSpec
from mas_graphs.state.saga import SagaInput, SagaOptions, SagaState

NAME = "saga"
PREPARE = "open_saga"


def build_saga(
    saga: Saga,
    *,
    checkpointer: Checkpointer = None,
    model: BaseChatModel | None = None,
    defaults: AgentContext | None = None,
    name: str = NAME,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile any `Saga` (a list of steps with compensations) into a graph."""
    default = graph_defaults(model, defaults)
    actions = list(saga.step_names)
    compensations = saga.compensation_nodes()

    def route_forward(state: SagaState) -> str:
        return next_action(saga, state)

    def route_compensation(state: SagaState) -> str:
        return next_compensation(saga, state)

    builder = StateGraph(
        SagaState,
        context_schema=AgentContext,
        input_schema=saga.input_schema,
        output_schema=SagaState,
    )
    # Creating the effect tables is idempotent; retried like any effect.
    first = saga.steps[0]
    builder.add_node(
        PREPARE,
        with_default_context(prepare_node(saga), default),
        retry_policy=first.retry,
        timeout=first.timeout_s,
    )
    builder.add_node(REQUEST_APPROVAL, request_node(saga))
    builder.add_node(
        AWAIT_APPROVAL,
        approval_node(saga),
        destinations={
            **{node: "approved" for node in actions},
            **{node: "rejected" for node in compensations},
            FINISH: "rejected",
        },
    )
    for index, step in enumerate(saga.steps):
        # Only the compensations of this step and earlier ones can follow it.
        undo = [s.compensation_node for s in saga.steps[: index + 1] if s.compensation_node]
        after = actions[index + 1] if index + 1 < len(actions) else FINISH
        builder.add_node(
            step.name,
            with_default_context(action_node(saga, step), default),
            retry_policy=step.retry,
            timeout=step.timeout_s,
            error_handler=action_failed_handler(saga, step),
            destinations={**{node: "failed" for node in undo}, FINISH: "failed"},
        )
        builder.add_conditional_edges(step.name, route_forward, [after, REQUEST_APPROVAL])
        if step.compensation_node is None:
            continue
        builder.add_node(
            step.compensation_node,
            with_default_context(compensation_node(saga, step), default),
            retry_policy=step.retry,
            timeout=step.timeout_s,
            error_handler=compensation_failed_handler(step),
            destinations={AWAIT_OPERATOR: "failed"},
        )
        earlier = undo[:-1]
        builder.add_conditional_edges(
            step.compensation_node, route_compensation, [*earlier, FINISH]
        )
    builder.add_node(
        AWAIT_OPERATOR, await_operator, destinations={node: "retry" for node in compensations}
    )
    builder.add_node(FINISH, finish_saga)

    builder.add_edge(START, PREPARE)
    builder.add_conditional_edges(PREPARE, route_forward, [actions[0], REQUEST_APPROVAL])
    builder.add_edge(REQUEST_APPROVAL, AWAIT_APPROVAL)
    builder.set_finish_point(FINISH)
    return builder.compile(checkpointer=checkpointer, name=name)


def build(
    options: SagaOptions = SagaOptions(),
    *,
    checkpointer: Checkpointer = None,
    model: BaseChatModel | None = None,
    defaults: AgentContext | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the order-fulfilment saga with `options` (retries and timeouts of its
    steps, see `SagaOptions`).

    `model` (or `context=AgentContext(...)` at invoke time) supplies the risk agent's
    chat model; the context's `db` pool is where the order rows go.
    """
    saga = order_saga(
        max_attempts=options.max_attempts,
        backoff_s=options.backoff_s,
        step_timeout_s=options.step_timeout_s,
        agent_timeout_s=options.agent_timeout_s,
    )
    return build_saga(saga, checkpointer=checkpointer, model=model, defaults=defaults)


PATTERN = PatternSpec(
    name="saga",
    description="Order fulfilment: steps with side effects run in order; a failure "
    "undoes the completed ones by their compensations.",
    input=SagaInput,
    options=SagaOptions,
    build=build,
    answers={"step_approval": approval_answer, "compensation_failed": compensation_retry_answer},
    solo_reason="its steps change things outside the run, and undoing them needs a "
    "thread of its own; run it by itself",
    view=VIEW,
)
graph = build()
