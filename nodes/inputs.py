"""Checking what comes in from outside a graph: a run's input, a person's answer.

The runner validates a run's input before any work starts; a graph also validates it
in its first node, so a graph a server runs (input straight from an HTTP client)
refuses bad input the same way, with the same one-line message. A person's answer to
an interrupt is validated in the node that asked: an invalid answer asks again,
carrying the error and the expected schema, so no client can poison a thread with an
answer the node cannot use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from mas_graphs.nodes.structured import json_schema
from mas_graphs.state.common import validation_problems

ModelT = TypeVar("ModelT", bound=BaseModel)


class InvalidInputError(ValueError):
    """A run's input that failed validation; the message names each field and problem."""


def validated_input(
    pattern: str,
    schema: type[ModelT],
    given: Mapping[str, Any],
    check: Callable[[ModelT], None] | None = None,
    *,
    limits: Mapping[str, Any] | None = None,
) -> ModelT:
    """`given` as a `schema` instance, or `InvalidInputError` naming what is wrong;
    `limits` are the operator's (e.g. `max_workers`), as pydantic validation context."""
    try:
        value = schema.model_validate(dict(given), context=dict(limits or {}))
        if check is not None:
            check(value)
    except ValidationError as error:
        raise InvalidInputError(f"invalid {pattern} input: {validation_problems(error)}") from None
    except ValueError as error:
        raise InvalidInputError(f"invalid {pattern} input: {error}") from None
    return value


def input_fields(schema: type[BaseModel], state: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a graph's state that is the run's input."""
    return {name: state[name] for name in schema.model_fields if name in state}


def ask_person(payload: dict[str, Any], answer: type[ModelT]) -> ModelT:
    """Pause with `interrupt(payload)` until a valid `answer` comes back.

    An invalid answer is not an error of the node (LangGraph would keep it as the
    thread's pending resume value and replay it forever): the node asks again, with the
    problem and the expected schema. LangGraph matches resume values to a node's
    interrupts in order, so on every resume the earlier, invalid answers replay into
    the earlier calls and the newest one reaches the newest call.
    """
    request = {**payload, "answer": json_schema(answer)}
    while True:
        raw = interrupt(request)
        try:
            return answer.model_validate(raw)
        except ValidationError as error:
            problem = validation_problems(error, prefix="answer.")
            request = {**request, "error": f"invalid answer: {problem}; answer again"}
