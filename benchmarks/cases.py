"""The benchmark workloads: for each pattern, its input, a scripted model, our compiled
graph and the bare same-shape graph. Shared by the overhead, checkpoint and scale
benchmarks so they all measure the same runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from benchmarks.bare import bare_debate, bare_saga, bare_scenarios, bare_supervisor
from mas.patterns import get_pattern
from mas_graphs.graphs import debate, saga, scenarios, supervisor
from tests.support.factories import decode
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_debate import QUESTION, STANCES, debate_agent, debate_script
from tests.support.scripts_saga import order, saga_agent, saga_script
from tests.support.scripts_scenarios import SLEEP_SKILL
from tests.support.scripts_supervisor import TEAM, supervisor_script

Graph = CompiledStateGraph[Any, Any, Any, Any]


@dataclass(frozen=True)
class Case:
    name: str
    raw_input: dict[str, Any]
    model: BaseChatModel
    ours: Callable[[Checkpointer], Graph]
    bare: Callable[[Checkpointer], Graph]
    needs_db: bool = False  # the saga's effects go to PostgreSQL tables

    @property
    def state_input(self) -> dict[str, Any]:
        data = self.raw_input
        if "order" in data:  # an order has one saga: every run fulfils a new one
            data = {**data, "order": {**data["order"], "order_id": f"B-{uuid.uuid4().hex[:10]}"}}
        return get_pattern(self.name).parse(data)[0]


def scripted(script: dict[str, Any], classify: Any = None, delay: float = 0.0) -> ScriptedChatModel:
    extra: dict[str, Any] = {"classify": classify} if classify else {}
    return ScriptedChatModel(
        script={agent: decode(entry) for agent, entry in script.items()},
        delays={"*": delay} if delay else {},
        **extra,
    )


def scenarios_input(count: int = 3, base_size: int = 20, batch_size: int = 5) -> dict[str, Any]:
    """`count` scenarios of scale 1..count on the sleep skill with no sleep: pure overhead."""
    return {
        "skill": SLEEP_SKILL,
        "params": {"item_s": 0.0},
        "base_size": base_size,
        "scenarios": [
            {"name": f"s{i}", "scale": i, "batch_size": batch_size} for i in range(1, count + 1)
        ],
    }


def cases(rounds: int = 3) -> list[Case]:
    sup = scripted(supervisor_script())
    deb = scripted(debate_script(), debate_agent)
    sag = scripted(saga_script(), saga_agent)
    return [
        Case(
            "supervisor",
            {"task": "Queue or not?", "workers": TEAM},
            sup,
            lambda cp: supervisor.build(checkpointer=cp, model=sup),
            lambda cp: bare_supervisor(sup, cp),
        ),
        Case(
            "debate",
            {"question": QUESTION, "stances": STANCES, "rounds": rounds},
            deb,
            lambda cp: debate.build(checkpointer=cp, model=deb),
            lambda cp: bare_debate(deb, cp),
        ),
        Case(
            "scenarios",
            scenarios_input(),
            sup,
            lambda cp: scenarios.build(checkpointer=cp),
            lambda cp: bare_scenarios(cp),
        ),
        Case(
            "saga",
            {"order": order()},
            sag,
            lambda cp: saga.build(checkpointer=cp, model=sag),
            lambda cp: bare_saga(cp),
            needs_db=True,
        ),
    ]
