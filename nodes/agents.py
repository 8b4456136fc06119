"""Role agents: a role prompt around a model, with an optional ReAct tool loop.

Tool use goes through structured output (a `ToolStep` per turn) rather than a
provider's native tool-calling, so the same loop works on every provider,
constrained decoding keeps tool names inside the allow-list, and the loop is
bounded by `max_steps`.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import create_model

from nodes import prompts
from nodes.structured import StructuredOutputError, ask_structured
from nodes.tools import TOOLS
from state.common import CallUsage
from state.supervisor import ToolStep, WorkerReport


@cache
def tool_step_schema(tool_names: tuple[str, ...]) -> type[ToolStep]:
    names: Any = Literal[tool_names]
    return create_model("ToolStep", __base__=ToolStep, tool=(names, tool_names[0]))


async def run_role_agent(
    model: BaseChatModel,
    *,
    agent: str,
    role: str,
    task: str,
    context: list[dict[str, Any]],
    tool_names: list[str],
    max_steps: int,
    fallback: bool = False,
) -> tuple[WorkerReport, list[CallUsage]]:
    """The worker's report; with tools, up to `max_steps` tool calls come first. The role
    is data in the user message (nodes/prompts.py); a fallback stands in for the worker
    whose role it is given."""
    usage: list[CallUsage] = []
    observations: list[str] = []
    system = prompts.FALLBACK_WORKER if fallback else prompts.WORKER
    tools = [(name, TOOLS.get(name).description) for name in tool_names]

    def message(with_tools: bool) -> str:
        return prompts.worker_message(
            name=agent,
            role=role,
            task=task,
            context=context,
            tools=tools if with_tools else [],
            observations=observations,
            fallback=fallback,
        )

    try:
        if tool_names:
            step_schema = tool_step_schema(tuple(tool_names))
            for _ in range(max_steps):
                step = await ask_structured(
                    model,
                    agent=agent,
                    system=system + prompts.TOOL_STEP,
                    user=message(with_tools=True),
                    schema=step_schema,
                )
                usage.append(step.usage)
                if step.value.action == "finish":
                    break
                result = await TOOLS.get(step.value.tool).ainvoke(step.value.tool_input)
                observations.append(f"{step.value.tool}({step.value.tool_input!r}) -> {result}")
        report = await ask_structured(
            model, agent=agent, system=system, user=message(with_tools=False), schema=WorkerReport
        )
    except StructuredOutputError as error:
        error.usage = usage + error.usage  # the tool steps before the failure cost too
        raise
    usage.append(report.usage)
    return report.value, usage
