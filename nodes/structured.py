"""Structured agent output: constrained where the provider can, validated always.

Every agent that returns data goes through `ask_structured`: the pydantic
schema is sent as a JSON schema for constrained decoding (Ollama's `format`,
llama.cpp's grammar via the same keyword), the reply is validated, an invalid
reply gets exactly one repair turn, and a second failure raises
`StructuredOutputError` naming the agent and the raw output.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ValidationError

from state.common import CallUsage

SchemaT = TypeVar("SchemaT", bound=BaseModel)

# Providers that accept a JSON schema through the `format` keyword.
CONSTRAINED_PROVIDERS = {"ChatOllama", "ChatLlamaCpp"}
RAW_PREVIEW_CHARS = 500


class StructuredOutputError(ValueError):
    """An agent's output did not validate, even after one repair turn."""

    def __init__(self, agent: str, raw: str, problem: str) -> None:
        preview = raw if len(raw) <= RAW_PREVIEW_CHARS else raw[:RAW_PREVIEW_CHARS] + "…"
        super().__init__(f"agent '{agent}' returned invalid output ({problem}); raw: {preview!r}")
        self.agent, self.raw, self.problem = agent, raw, problem


@dataclass(frozen=True)
class Reply(Generic[SchemaT]):
    value: SchemaT
    usage: CallUsage


@cache
def json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """`schema`'s JSON schema; cached because pydantic rebuilds it on every call."""
    return schema.model_json_schema()


def constrained(model: BaseChatModel, schema: type[BaseModel]) -> Runnable[Any, BaseMessage]:
    """The model bound to decode only JSON matching `schema`, where the provider supports it."""
    if type(model).__name__ in CONSTRAINED_PROVIDERS:
        return model.bind(format=json_schema(schema))
    return model


def extract_json(text: str) -> str:
    """The JSON object in a reply, tolerating code fences and chatter around it."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start != -1 and end > start else text.strip()


def parse_reply(text: str, schema: type[SchemaT]) -> SchemaT:
    return schema.model_validate_json(extract_json(text))


def _problem(error: ValidationError | ValueError) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "output"
        got = repr(first.get("input"))[:80]
        return f"{where}: {first['msg']} (got {got})"
    return str(error)


def skeleton(node: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A JSON example of a schema: small models follow a shape better than a schema."""
    if "$ref" in node:
        return skeleton(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in node:
        return " | ".join(str(v) for v in node["enum"])
    if "const" in node:
        return node["const"]
    if "anyOf" in node:
        return skeleton(next(o for o in node["anyOf"] if o.get("type") != "null"), defs)
    kind = node.get("type")
    if kind == "object":
        return {name: skeleton(sub, defs) for name, sub in node.get("properties", {}).items()}
    if kind == "array":
        return [skeleton(node.get("items", {}), defs)]
    if kind in ("number", "integer"):
        low, high = node.get("minimum"), node.get("maximum")
        return f"<{kind} {low}-{high}>" if low is not None and high is not None else f"<{kind}>"
    if kind == "boolean":
        return "<true | false>"
    return f"<{node.get('description', 'text')}>"


@cache
def schema_instructions(schema: type[BaseModel]) -> str:
    full = json_schema(schema)
    shape = skeleton(full, full.get("$defs", {}))
    return "Reply with one JSON object and nothing else, shaped like this:\n" + json.dumps(
        shape, ensure_ascii=False
    )


def _tokens(message: BaseMessage) -> tuple[int, int]:
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))


async def ask_structured(
    model: BaseChatModel,
    *,
    agent: str,
    system: str,
    user: str,
    schema: type[SchemaT],
    check: Callable[[SchemaT], None] | None = None,
    config: RunnableConfig | None = None,
) -> Reply[SchemaT]:
    """Ask `agent` for a `schema` instance; one repair turn, then `StructuredOutputError`.

    `check` adds rules a JSON schema cannot express (e.g. no dependency cycles);
    it raises `ValueError`, and its message goes into the repair turn.

    Role text (`system`) and task text (`user`) stay in separate messages so
    user input can never rewrite an agent's instructions.
    """
    runnable = constrained(model, schema)
    messages: list[BaseMessage] = [
        SystemMessage(f"{system}\n\n{schema_instructions(schema)}"),
        HumanMessage(user),
    ]
    started = time.perf_counter()
    tokens_in = tokens_out = calls = 0
    problem = ""
    raw = ""
    for attempt in range(2):
        reply = await runnable.ainvoke(messages, config)
        calls += 1
        t_in, t_out = _tokens(reply)
        tokens_in, tokens_out = tokens_in + t_in, tokens_out + t_out
        raw = reply.text if isinstance(reply, AIMessage) else str(reply.content)
        try:
            value = parse_reply(raw, schema)
            if check is not None:
                check(value)
        except (ValidationError, ValueError) as error:
            problem = _problem(error)
            if attempt == 0:
                messages += [
                    AIMessage(raw),
                    HumanMessage(
                        f"That reply was invalid ({problem}). "
                        "Reply again with only the corrected JSON object."
                    ),
                ]
            continue
        usage = CallUsage(
            agent=agent,
            calls=calls,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return Reply(value=value, usage=usage)
    raise StructuredOutputError(agent, raw, problem)
