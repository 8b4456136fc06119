"""Role agents: a role prompt around a model, with an optional ReAct tool loop.

Tool use goes through structured output (a `ToolStep` per turn) rather than a
provider's native tool-calling, so the same loop works on every provider,
constrained decoding keeps tool names inside the allow-list, and the loop is
bounded by `max_steps`.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import create_model

from nodes.structured import ask_structured
from nodes.tools import TOOLS
from state.common import CallUsage
from state.supervisor import ToolStep, WorkerReport


def worker_prompt(role: str) -> str:
    return (
        "You are one worker in a team supervised by a planner.\n"
        f"Your role: {role}\n"
        "Answer only for your role. Label each finding with a short topic so the team's "
        "findings can be compared, and give your overall confidence from 0 to 1."
    )


def task_message(task: str, context: list[dict[str, Any]], observations: list[str]) -> str:
    parts = [f"Task:\n{task}"]
    if context:
        parts.append("Results from earlier workers:\n" + json.dumps(context, ensure_ascii=False))
    if observations:
        parts.append("Your tool results so far:\n" + "\n".join(observations))
    return "\n\n".join(parts)


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
) -> tuple[WorkerReport, list[CallUsage]]:
    """The worker's report; with tools, up to `max_steps` tool calls come first."""
    usage: list[CallUsage] = []
    observations: list[str] = []
    system = worker_prompt(role)
    if tool_names:
        step_schema = tool_step_schema(tuple(tool_names))
        tool_system = (
            f"{system}\nYou may call these tools: "
            + "; ".join(f"{name}: {TOOLS[name].description}" for name in tool_names)
            + "\nChoose action 'tool' with a tool and its input, or 'finish' when you know enough."
        )
        for _ in range(max_steps):
            step = await ask_structured(
                model,
                agent=agent,
                system=tool_system,
                user=task_message(task, context, observations),
                schema=step_schema,
            )
            usage.append(step.usage)
            if step.value.action == "finish":
                break
            result = await TOOLS[step.value.tool].ainvoke(step.value.tool_input)
            observations.append(f"{step.value.tool}({step.value.tool_input!r}) -> {result}")
    report = await ask_structured(
        model,
        agent=agent,
        system=system,
        user=task_message(task, context, observations),
        schema=WorkerReport,
    )
    usage.append(report.usage)
    return report.value, usage
