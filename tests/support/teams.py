"""Scripts for supervisors with teams: planners that plan whatever team they are given,
and one classifier for every pattern's agents at any depth (see tests/support/scripted.py)."""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import BaseMessage

from tests.support.factories import decode
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_debate import debate_script
from tests.support.scripts_mixed import any_agent
from tests.support.scripts_supervisor import plan, report, supervisor_script

CLASSIFY = "tests.support.scripts_mixed:any_agent"


def listed_workers(messages: list[BaseMessage]) -> list[str]:
    """The workers a planner's (or replanner's) user message lists."""
    user = next(m.text for m in messages if m.type == "human")
    section = re.search(r"(?:The team|Still to run):\n((?:- .*(?:\n|$))+)", user)
    return re.findall(r"^- ([a-z][\w-]*):", section.group(1), re.M) if section else []


def plan_everyone(messages: list[BaseMessage]) -> str:
    """A plan with every listed worker in one batch, for a team of any depth."""
    return json.dumps(plan(*[(name, []) for name in listed_workers(messages)]))


def teams_script(**overrides: Any) -> dict[str, Any]:
    """Every pattern's agents; planners plan whatever team they see, every role worker
    (tagged `[member]`) reports, and the conflict check finds none."""
    script: dict[str, Any] = {
        **supervisor_script(),
        **debate_script(),
        "planner": plan_everyone,
        "member": report("a member's finding", 0.7, ("topic", "a member's claim")),
        "conflict_detector": {"conflicts": []},
    }
    script.update(overrides)
    return script


def teams_model(**overrides: Any) -> ScriptedChatModel:
    script = {agent: decode(entry) for agent, entry in teams_script(**overrides).items()}
    return ScriptedChatModel(script=script, classify=any_agent)


def member(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "role": f"Do your part [member] as {name}", **extra}


def lead(name: str, *members: str, **extra: Any) -> dict[str, Any]:
    """A team lead: a worker that is a nested supervisor with its own team."""
    return {
        "name": name,
        "pattern": "supervisor",
        "role": f"Lead the {name} team",
        "input": {"workers": [member(m) for m in members], **extra},
    }
