"""Structured agent output: constrained where the provider can, fitted, validated always.

Every agent that returns data goes through `ask_structured`: the pydantic schema
is sent as a JSON schema for constrained decoding (Ollama's `format`, llama.cpp's
grammar via the same keyword) and described to the model in words (never as a
skeleton of `<placeholders>` a small model would copy). The reply is fitted to
the schema's bounds (an over-long string is cut at a word boundary, a list cut to
its limit, a number clamped into range, each noted) and validated; an invalid
reply gets exactly one repair turn, and a second failure raises
`StructuredOutputError` naming the agent and the raw output. Every call counts in
the usage, failed ones included.
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
from langgraph.runtime import Runtime
from pydantic import BaseModel, ValidationError

from mas_graphs.nodes.context import AgentContext, agent_context
from mas_graphs.nodes.limits import BudgetExceededError, model_call_slot
from mas_graphs.state.common import INPUT_NAMES, CallUsage

SchemaT = TypeVar("SchemaT", bound=BaseModel)

# Providers that accept a JSON schema through the `format` keyword.
CONSTRAINED_PROVIDERS = {"ChatOllama", "ChatLlamaCpp"}
RAW_PREVIEW_CHARS = 500


class StructuredOutputError(ValueError):
    """An agent's output did not validate, even after one repair turn. Carries the usage
    of the calls it made, so failed attempts still count."""

    def __init__(self, agent: str, raw: str, problem: str, usage: list[CallUsage]) -> None:
        preview = raw if len(raw) <= RAW_PREVIEW_CHARS else raw[:RAW_PREVIEW_CHARS] + "…"
        super().__init__(f"agent '{agent}' returned invalid output ({problem}); raw: {preview!r}")
        self.agent, self.raw, self.problem, self.usage = agent, raw, problem, usage


@dataclass(frozen=True)
class Reply(Generic[SchemaT]):
    value: SchemaT
    usage: CallUsage


@dataclass(frozen=True)
class Sampling:
    """Per-call sampling, for agents that must differ (self-consistency samples)."""

    temperature: float
    seed: int


@cache
def json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """`schema`'s JSON schema; cached because pydantic rebuilds it on every call."""
    return schema.model_json_schema()


def sampled(model: BaseChatModel, sampling: Sampling | None) -> BaseChatModel:
    """`model` with its own temperature and seed, where the provider has them (Ollama,
    llama.cpp); a copy, so the process's model object is left as it was."""
    fields = type(model).model_fields
    if sampling is None or "temperature" not in fields:
        return model
    update: dict[str, Any] = {"temperature": sampling.temperature}
    if "seed" in fields:
        update["seed"] = sampling.seed
    return model.model_copy(update=update)


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


# --- fitting a reply to the schema's bounds ------------------------------------------------


def cut_at_word(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a word boundary, marked with '…'."""
    if len(text) <= limit:
        return text
    room = text[: max(limit - 1, 0)]
    space = room.rfind(" ")
    if space > limit * 0.6:
        room = room[:space]
    return room.rstrip(" ,;:-") + "…"


def _branch(node: dict[str, Any], defs: dict[str, Any], value: Any) -> dict[str, Any]:
    if "$ref" in node:
        return _branch(defs[node["$ref"].rsplit("/", 1)[-1]], defs, value)
    if "anyOf" in node and value is not None:
        return _branch(next(o for o in node["anyOf"] if o.get("type") != "null"), defs, value)
    return node


def fit(value: Any, node: dict[str, Any], defs: dict[str, Any], path: str, notes: list[str]) -> Any:
    """`value` within `node`'s bounds; each change is described in `notes`."""
    node = _branch(node, defs, value)
    where = path or "output"
    if isinstance(value, str) and (limit := node.get("maxLength")) and len(value) > limit:
        notes.append(f"{where}: cut from {len(value)} to {limit} characters")
        return cut_at_word(value, limit)
    if isinstance(value, list):
        limit = node.get("maxItems")
        if limit is not None and len(value) > limit:
            notes.append(f"{where}: kept the first {limit} of {len(value)} items")
            value = value[:limit]
        items = node.get("items", {})
        return [fit(v, items, defs, f"{path}.{i}", notes) for i, v in enumerate(value)]
    if isinstance(value, dict) and "properties" in node:
        props = node["properties"]
        return {
            k: fit(v, props[k], defs, f"{path}.{k}".lstrip("."), notes) if k in props else v
            for k, v in value.items()
        }
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = node.get("minimum", value), node.get("maximum", value)
        clamped = min(max(value, low), high)
        if clamped != value:
            notes.append(f"{where}: {value} clamped to {clamped}")
            return clamped
    return value


def fit_to(schema: type[SchemaT], data: Any, notes: list[str]) -> SchemaT:
    """`data` as a `schema` instance, fitted to its bounds first (each change noted)."""
    full = json_schema(schema)
    return schema.model_validate(fit(data, full, full.get("$defs", {}), "", notes))


def parse_reply(text: str, schema: type[SchemaT], notes: list[str] | None = None) -> SchemaT:
    """The reply as a `schema` instance, fitted to its bounds first."""
    # strict=False: small models put raw newlines and tabs inside strings; that is no
    # reason to throw an answer away.
    data = json.loads(extract_json(text), strict=False)
    return fit_to(schema, data, notes if notes is not None else [])


def _problem(error: ValidationError | ValueError) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "output"
        got = repr(first.get("input"))[:80]
        return f"{where}: {first['msg']} (got {got})"
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON: {error.msg} at char {error.pos}"
    return str(error)


# --- describing the schema in words ----------------------------------------------------------


def _kind(node: dict[str, Any], defs: dict[str, Any]) -> str:
    node = _branch(node, defs, "")
    if names := node.get(INPUT_NAMES):
        return f"one of the names listed under '{names}' in the user message"
    if "enum" in node:
        return "one of: " + ", ".join(str(v) for v in node["enum"])
    if "const" in node:
        return f"exactly {node['const']!r}"
    kind = node.get("type")
    if kind == "string":
        limit = node.get("maxLength")
        return f"text of at most {limit} characters" if limit else "text"
    if kind in ("number", "integer"):
        low, high = node.get("minimum"), node.get("maximum")
        word = "a whole number" if kind == "integer" else "a number"
        return f"{word} from {low:g} to {high:g}" if low is not None and high is not None else word
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        items = _branch(node.get("items", {}), defs, "")
        limit = node.get("maxItems")
        count = f"a list of at most {limit}" if limit is not None else "a list of"
        if items.get("type") == "object":
            return f"{count} objects"
        return f"{count} items, each {_kind(items, defs)}"
    if kind == "object":
        return "an object"
    return "a value"


def describe_fields(node: dict[str, Any], defs: dict[str, Any], indent: str = "") -> list[str]:
    """One line per field: its name, what kind of value, and what it should say."""
    lines = []
    for name, sub in _branch(node, defs, "").get("properties", {}).items():
        sub = _branch(sub, defs, "")
        about = sub.get("description") or ""
        lines.append(f"{indent}- {name}: {_kind(sub, defs)}" + (f". {about}" if about else ""))
        inner = _branch(sub.get("items", {}), defs, "") if sub.get("type") == "array" else sub
        if inner.get("type") == "object":
            lines += describe_fields(inner, defs, indent + "  ")
    return lines


@cache
def schema_instructions(schema: type[BaseModel]) -> str:
    full = json_schema(schema)
    fields = "\n".join(describe_fields(full, full.get("$defs", {})))
    return f"Reply with one JSON object and nothing else. Its fields, in this order:\n{fields}"


def model_label(model: BaseChatModel) -> str:
    """Which model a call used, as prices name it: `provider:model` (`ollama:llama3.2`,
    `llamacpp:<gguf stem>`), or the provider alone when the model has no name."""
    params = model._get_ls_params()
    provider = params.get("ls_provider") or type(model).__name__
    name = params.get("ls_model_name")
    return f"{provider}:{name}" if name else str(provider)


def cut_off(message: BaseMessage) -> bool:
    """Whether the provider stopped the reply at its token limit (llama.cpp and OpenAI-style
    providers say `finish_reason`, Ollama `done_reason`)."""
    meta = message.response_metadata or {}
    return "length" in (meta.get("finish_reason"), meta.get("done_reason"))


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
    sampling: Sampling | None = None,
) -> Reply[SchemaT]:
    """Ask `agent` for a `schema` instance; one repair turn, then `StructuredOutputError`.

    `check` adds rules a JSON schema cannot express (e.g. no dependency cycles);
    it raises `ValueError`, and its message goes into the repair turn.

    Instructions (`system`, the project's own) and data (`user`, which may carry text
    from the run's input) stay in separate messages (see nodes/prompts/).
    """
    runnable = constrained(sampled(model, sampling), schema)
    messages: list[BaseMessage] = [
        SystemMessage(f"{system}\n\n{schema_instructions(schema)}"),
        HumanMessage(user),
    ]
    started = time.perf_counter()
    tokens_in = tokens_out = calls = 0
    problem = raw = ""
    notes: list[str] = []

    label = model_label(model)

    def usage(ok: bool) -> CallUsage:
        return CallUsage(
            agent=agent,
            calls=calls,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            ok=ok,
            notes=notes,
            model=label,
        )

    for attempt in range(2):
        try:
            async with model_call_slot(agent) as meter:
                reply = await runnable.ainvoke(messages, config)
                t_in, t_out = _tokens(reply)
                meter.spend(t_in + t_out)
        except BudgetExceededError as error:
            error.usage = [usage(ok=False)] if calls else []  # a first attempt still cost
            raise
        calls += 1
        tokens_in, tokens_out = tokens_in + t_in, tokens_out + t_out
        raw = reply.text if isinstance(reply, AIMessage) else str(reply.content)
        try:
            value = parse_reply(raw, schema, notes)
            if check is not None:
                check(value)
        except (ValidationError, ValueError) as error:
            problem = _problem(error)
            if cut_off(reply):
                problem = f"cut off at the token limit ({problem})"
            notes.append(f"attempt {attempt + 1} invalid: {problem}"[:300])
            if attempt == 0:
                shorter = " Keep every field short." if cut_off(reply) else ""
                messages += [
                    AIMessage(raw),
                    HumanMessage(
                        f"That reply was invalid ({problem}). "
                        f"Reply again with only the corrected JSON object.{shorter}"
                    ),
                ]
            continue
        return Reply(value=value, usage=usage(ok=True))
    raise StructuredOutputError(agent, raw, problem, [usage(ok=False)])


async def ask_agent(
    runtime: Runtime[AgentContext],
    agent: str,
    *,
    system: str,
    user: str,
    schema: type[SchemaT],
    check: Callable[[SchemaT], None] | None = None,
    sampling: Sampling | None = None,
) -> Reply[SchemaT]:
    """`ask_structured` for one of a pattern's own agents, on the model its run's context
    gives that agent."""
    model = agent_context(runtime).model_for(agent)
    return await ask_structured(
        model, agent=agent, system=system, user=user, schema=schema, check=check, sampling=sampling
    )
