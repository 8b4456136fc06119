"""The agents a worker can be: a role agent (a role prompt around a model, with an
optional ReAct tool loop) or an agent registered in Python.

Tool use goes through structured output (a `ToolStep` per turn) rather than a
provider's native tool-calling, so the same loop works on every provider,
constrained decoding keeps tool names inside the allow-list, and the loop is
bounded by the worker's `max_steps`.

A registered agent is any async callable or LangChain Runnable, registered by name
in Python (`register_agent`) or through an entry point of a user's package:

    [project.entry-points."mas_graphs.agents"]
    pricing = "my_package.agents:pricing_agent"

It gets an `AgentRequest` (data only: the task, its role, earlier results, a
person's note) and returns a `WorkerReport`, a dict of one, or text. The model
calls it makes through LangChain are counted and traced under its name; while it
runs it holds one of the run's model-call slots.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, NamedTuple

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError, create_model
from typing_extensions import TypedDict

from mas_graphs.nodes import prompts
from mas_graphs.nodes.errors import describe_error
from mas_graphs.nodes.limits import BudgetExceededError, CallMeter, model_call_slot
from mas_graphs.nodes.structured import (
    Sampling,
    SchemaT,
    StructuredOutputError,
    ask_structured,
    cut_at_word,
    fit_to,
)
from mas_graphs.nodes.tools import TOOLS
from mas_graphs.state.common import CallUsage, validation_problems
from mas_graphs.state.registry import Registry
from mas_graphs.state.supervisor import (
    Assignment,
    Critique,
    Memory,
    ToolCall,
    ToolStep,
    WorkerReport,
)

# Stated in a report made from an agent's plain-text answer, which gives no confidence.
TEXT_ANSWER_CONFIDENCE = 0.5
# A tool without a timeout of its own (an MCP server's is configured with it)
DEFAULT_TOOL_TIMEOUT_S = 30.0
TOOL_OUTPUT_CHARS = 1_000


@cache
def tool_step_schema(tool_names: tuple[str, ...]) -> type[ToolStep]:
    names: Any = Literal[tool_names]
    return create_model("ToolStep", __base__=ToolStep, tool=(names, tool_names[0]))


def worker_sampling(name: str, temperature: float | None) -> Sampling | None:
    """A worker's own temperature, with a seed of its own so two workers at the same
    temperature do not sample alike."""
    if temperature is None:
        return None
    return Sampling(temperature, zlib.crc32(name.encode()) % 2**31)


class RoleWork(NamedTuple):
    report: WorkerReport
    usage: list[CallUsage]
    tool_calls: list[ToolCall]
    memory: Memory | None  # set when the loop's tool results outgrew its budget


# Tokens are estimated from characters: no tokenizer of every model is at hand, and a
# budget needs a bound, not a count.
CHARS_PER_TOKEN = 4
DEFAULT_CONTEXT_TOKENS = 4_096
SUMMARY_LINE_CHARS = 100


def context_tokens(model: BaseChatModel) -> int:
    """The model's context size, where it says (llama.cpp's n_ctx, Ollama's num_ctx)."""
    for name in ("n_ctx", "num_ctx"):
        if isinstance(size := getattr(model, name, None), int) and size > 0:
            return size
    return DEFAULT_CONTEXT_TOKENS


def windowed(calls: list[ToolCall], budget_tokens: int) -> tuple[list[str], Memory | None]:
    """The loop's tool results as the model reads them: the newest, word for word, as
    many as fit `budget_tokens` (always the last one), and a line each for the older
    ones, which the record says were summarised."""
    texts = [observation(call) for call in calls]
    kept: list[str] = []
    used = 0
    for text in reversed(texts):
        cost = len(text) // CHARS_PER_TOKEN + 1
        if kept and used + cost > budget_tokens:
            break
        kept.insert(0, text)
        used += cost
    dropped = calls[: len(calls) - len(kept)]
    if not dropped:
        return kept, None
    summary = "\n".join(
        cut_at_word(f"step {call['step']}: {observation(call)}", SUMMARY_LINE_CHARS)
        for call in dropped
    )
    memory = Memory(budget_tokens=budget_tokens, dropped=len(dropped), summary=summary)
    return [f"Earlier results, summarised:\n{summary}", *kept], memory


async def run_role_agent(
    model: BaseChatModel,
    request: AgentRequest,
    *,
    tool_names: list[str],
    max_steps: int,
    fallback: bool = False,
    sampling: Sampling | None = None,
    call_key: str = "",
    memory_tokens: int | None = None,
) -> RoleWork:
    """The worker's report on `request` (what any worker is given, a registered agent
    too); with tools, up to `max_steps` tool calls come first (each recorded, its key
    `call_key:<step>`). The role is data in the user message
    (nodes/prompts/supervisor.py); a fallback stands in for the worker whose role it is given.
    The tool results it reads stay within `memory_tokens` (default: half the model's
    context): older ones are summarised, a line each, and the record says so."""
    agent = request["worker"]
    usage: list[CallUsage] = []
    calls: list[ToolCall] = []
    budget = memory_tokens or context_tokens(model) // 2
    memory: Memory | None = None
    system = prompts.FALLBACK_WORKER if fallback else prompts.WORKER
    tools = [(name, tool_description(TOOLS.get(name))) for name in tool_names]

    def message(with_tools: bool) -> str:
        nonlocal memory
        observations, memory = windowed(calls, budget)
        return prompts.worker_message(
            name=agent,
            role=request["role"],
            task=request["task"],
            context=request["context"],
            tools=tools if with_tools else [],
            observations=observations,
            fallback=fallback,
            guidance=request["guidance"],
            assignment=request["assignment"],
        )

    try:
        if tool_names:
            step_schema = tool_step_schema(tuple(tool_names))
            for step in range(1, max_steps + 1):
                reply = await ask_structured(
                    model,
                    agent=agent,
                    system=system + prompts.TOOL_STEP,
                    user=message(with_tools=True),
                    schema=step_schema,
                    sampling=sampling,
                )
                usage.append(reply.usage)
                if reply.value.action == "finish":
                    break
                calls.append(
                    await call_tool(
                        reply.value.tool, reply.value.tool_input, step, f"{call_key}:{step}"
                    )
                )
        report = await ask_structured(
            model,
            agent=agent,
            system=system,
            user=message(with_tools=False),
            schema=WorkerReport,
            sampling=sampling,
        )
    except (StructuredOutputError, BudgetExceededError) as error:
        error.usage = usage + error.usage  # the tool steps before the failure cost too
        raise
    usage.append(report.usage)
    return RoleWork(report.value, usage, calls, memory)


def task_key(config: RunnableConfig) -> str:
    """This task in this thread, the same when a crash makes it run again: LangGraph's
    task ids (in the checkpoint namespace) derive from the checkpoint and the task."""
    configurable = config.get("configurable", {})
    return f"{configurable.get('thread_id', '-')}:{configurable.get('checkpoint_ns', '')}"


def tool_arguments(tool: BaseTool, text: str) -> dict[str, Any]:
    """What the agent wrote for a tool, as its arguments: the text itself for a tool
    of one argument, else a JSON object of them."""
    fields = tool.args
    if len(fields) == 1:
        [(name, spec)] = fields.items()
        kind = spec.get("type")
        value: Any = text
        if kind in ("integer", "number"):
            try:
                value = int(text) if kind == "integer" else float(text)
            except ValueError:
                raise ValueError(f"{name} must be a {kind}, not {text!r}") from None
        return {name: value}
    if not fields:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError(f"give a JSON object with {', '.join(fields)}")
    return parsed


def tool_description(tool: BaseTool) -> str:
    """What a tool does and what to give it, for the agent."""
    fields = list(tool.args)
    give = (
        "nothing"
        if not fields
        else f"the {fields[0]}"
        if len(fields) == 1
        else f"a JSON object with {', '.join(fields)}"
    )
    lines = (tool.description or "").strip().splitlines()
    return f"{lines[0] if lines else tool.name} (give it {give})"


async def call_tool(name: str, text: str, step: int, key: str) -> ToolCall:
    """One tool call, bounded by the tool's timeout and holding a slot of the run's
    `max_parallel`; a failure or a timeout is what the agent reads, not a crash."""
    tool = TOOLS.get(name)
    config = getattr(tool, "config", None)  # an MCP tool's server has its own timeout
    timeout = float(getattr(config, "timeout_s", DEFAULT_TOOL_TIMEOUT_S))
    started = time.perf_counter()
    output, error = "", None
    try:
        arguments = tool_arguments(tool, text)
        call: RunnableConfig = {"metadata": {"idempotency_key": key}, "run_name": name}
        async with model_call_slot():
            result = await asyncio.wait_for(tool.ainvoke(arguments, call), timeout)
        output = result if isinstance(result, str) else json.dumps(result, default=str)
    except TimeoutError:
        error = f"timed out after {timeout:g} s"
    except Exception as failure:  # the agent reads what went wrong and carries on
        error = describe_error(failure)
    return ToolCall(
        step=step,
        tool=name,
        input=text,
        output=cut_at_word(output, TOOL_OUTPUT_CHARS) if output else "",
        error=error,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        key=key,
    )


def observation(call: ToolCall) -> str:
    said = f"error: {call['error']}" if call["error"] else call["output"]
    return f"{call['tool']}({call['input']!r}) -> {said}"


async def critique(
    model: BaseChatModel, *, agent: str, task: str, what: str, text: dict[str, Any]
) -> tuple[Critique, CallUsage]:
    """A critic's verdict on a report or a synthesis: accept it, or say what must change."""
    reply = await ask_structured(
        model,
        agent=agent,
        system=prompts.CRITIC,
        user=prompts.critique_message(task=task, what=what, text=text),
        schema=Critique,
    )
    return reply.value, reply.usage


async def revise_report(
    model: BaseChatModel,
    *,
    agent: str,
    role: str,
    task: str,
    draft: dict[str, Any],
    problems: list[str],
    sampling: Sampling | None = None,
) -> tuple[WorkerReport, CallUsage]:
    """The worker's report again, with the critic's problems fixed."""
    reply = await ask_structured(
        model,
        agent=agent,
        system=prompts.REVISER,
        user=prompts.revision_message(
            name=agent, role=role, task=task, draft=draft, problems=problems
        ),
        schema=WorkerReport,
        sampling=sampling,
    )
    return reply.value, reply.usage


# --- registered agents ------------------------------------------------------------------


class AgentRequest(TypedDict):
    """What a registered agent is given: data, never instructions of ours."""

    worker: str  # its name in this run
    task: str
    role: str  # what the run's input says this worker does ("" if nothing)
    context: list[dict[str, Any]]  # earlier workers' reports
    guidance: str  # a person's note when they asked for this worker again ("" if none)
    assignment: Assignment | None  # its own part of the task, if the planner gave one


@dataclass(frozen=True)
class RegisteredAgent:
    runnable: Runnable[Any, Any]
    description: str


def _description(found: Any, name: str) -> str:
    doc = inspect.getdoc(found) or ""
    return doc.strip().splitlines()[0] if doc.strip() else f"the registered agent {name}"


def as_agent(name: str, found: Any) -> RegisteredAgent:
    if isinstance(found, RegisteredAgent):
        return found
    if isinstance(found, Runnable):
        return RegisteredAgent(found, _description(found, name))
    call = getattr(found, "__call__", None)  # noqa: B004 - an object's async __call__ counts
    if inspect.iscoroutinefunction(found) or inspect.iscoroutinefunction(call):
        runnable: Runnable[Any, Any] = RunnableLambda(found, name=name)
        return RegisteredAgent(runnable, _description(found, name))
    raise TypeError(f"{found!r} is neither an async callable nor a LangChain Runnable")


AGENTS: Registry[RegisteredAgent] = Registry("agent", "mas_graphs.agents", as_agent)


def register_agent(
    name: str,
    agent: Runnable[Any, Any] | Callable[[AgentRequest], Awaitable[Any]],
    *,
    description: str | None = None,
) -> RegisteredAgent:
    """Let workers be `{"name": ..., "agent": name}`; `description` tells the planner
    what it does (default: the first line of its docstring)."""
    registered = as_agent(name, agent)
    if description is not None:
        registered = RegisteredAgent(registered.runnable, description)
    return AGENTS.register(name, registered)


TOKEN_KEYS = ("input_tokens", "output_tokens")


class CallCounter(AsyncCallbackHandler):
    """Counts the model calls (and their tokens) a registered agent makes."""

    raise_error = True  # a budget reached stops the agent before its next model call

    def __init__(self, meter: CallMeter) -> None:
        self.calls = self.input_tokens = self.output_tokens = 0
        self.models: list[str] = []
        self._meter = meter

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._meter.check()
        meta = metadata or {}
        provider, name = meta.get("ls_provider"), meta.get("ls_model_name")
        label = f"{provider}:{name}" if provider and name else str(provider or "unknown")
        if label not in self.models:
            self.models.append(label)

    async def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.calls += 1
        for generations in response.generations:
            for generation in generations:
                usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
                if usage:
                    tokens_in, tokens_out = (int(usage.get(k, 0)) for k in TOKEN_KEYS)
                    self.input_tokens += tokens_in
                    self.output_tokens += tokens_out
                    self._meter.spend(tokens_in + tokens_out)


def with_handler(config: RunnableConfig, handler: AsyncCallbackHandler) -> RunnableConfig:
    """`config` with `handler` added to its callbacks (the trace's handlers stay)."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        return {**config, "callbacks": manager}
    return {**config, "callbacks": [*(callbacks or []), handler]}


async def call_agent(
    registered: RegisteredAgent, request: Mapping[str, Any], config: RunnableConfig, name: str
) -> tuple[Any, CallUsage]:
    """What a registered agent returned, and what its model calls cost (counted by a
    callback, so any LangChain model inside it counts); it holds one of the run's model
    call slots while it works."""
    started = time.perf_counter()
    async with model_call_slot(name) as meter:
        counter = CallCounter(meter)
        agent_config: RunnableConfig = {**with_handler(config, counter), "run_name": name}
        output = await registered.runnable.ainvoke(request, agent_config)
    usage = CallUsage(
        agent=name,
        calls=counter.calls,
        input_tokens=counter.input_tokens,
        output_tokens=counter.output_tokens,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        ok=True,
        notes=[],
        model=", ".join(counter.models) or "unknown",
    )
    return output, usage


async def run_registered_agent(
    registered: RegisteredAgent, request: AgentRequest, config: RunnableConfig
) -> tuple[WorkerReport, list[CallUsage]]:
    """A registered agent's answer as a report, and what its model calls cost."""
    output, usage = await call_agent(registered, request, config, request["worker"])
    return as_report(output, usage["notes"]), [usage]


def output_text(output: Any) -> str | None:
    """Text an agent answered with: a LangChain message, a LangGraph agent's final
    message, or a string."""
    if isinstance(output, dict) and output.get("messages"):
        output = output["messages"][-1]
    text = output.text if isinstance(output, BaseMessage) else output
    return text.strip() if isinstance(text, str) and text.strip() else None


def agent_output(
    output: Any,
    schema: type[SchemaT],
    notes: list[str],
    *,
    what: str,
    from_text: Callable[[str], dict[str, Any]],
) -> SchemaT:
    """What a registered agent returned, as `schema`: an instance, or a model or dict of
    its fields (fitted to its bounds, like a model's reply), or text (a string, a
    LangChain message, a LangGraph agent's final message), which `from_text` makes into
    its fields, at a stated confidence of TEXT_ANSWER_CONFIDENCE."""
    if isinstance(output, schema):
        return output
    if isinstance(output, BaseModel):
        output = output.model_dump()
    if isinstance(output, dict) and not output.get("messages"):
        try:
            return fit_to(schema, output, notes)
        except ValidationError as error:
            raise ValueError(
                f"the agent's {what} is invalid: {validation_problems(error)}"
            ) from None
    text = output_text(output)
    if text is None:
        raise ValueError(f"the agent returned no {what} and no text ({type(output).__name__})")
    notes.append(f"a text answer: confidence {TEXT_ANSWER_CONFIDENCE} stated for it")
    return schema.model_validate({**from_text(text), "confidence": TEXT_ANSWER_CONFIDENCE})


def as_report(output: Any, notes: list[str]) -> WorkerReport:
    """A registered worker's answer as its report; text becomes the summary."""
    return agent_output(
        output,
        WorkerReport,
        notes,
        what="report",
        from_text=lambda text: {"summary": cut_at_word(text, 1_000), "findings": []},
    )
