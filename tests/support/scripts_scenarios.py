"""Skills and models for the scenarios tests (see nodes/skills.py, tests/support/scripted.py).

`SleepSkill` is registered as `sleep` through the tests' plugin entry point
(tests/support/plugins.py), so CLI subprocesses (and their resumes) find it by name. It logs
every item it starts to the file named by MAS_TEST_SKILL_LOG, so calls can be counted
across processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict

from mas_graphs.nodes.skills import InputSpec, Item

SLEEP_SKILL = "sleep"  # registered by the tests' plugin (tests/support/plugins.py)
# (scenario, started, ended) of every batch run in this process, for overlap checks.
BATCH_INTERVALS: list[tuple[str, float, float]] = []


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_s: float = 0.01


def log_item(item_id: str) -> None:
    """Log an item as it starts, so items cut short by a kill count too."""
    if log := os.environ.get("MAS_TEST_SKILL_LOG"):
        with Path(log).open("a") as file:
            file.write(f"{item_id}\n")
            file.flush()
            os.fsync(file.fileno())


def healed() -> bool:
    path = os.environ.get("MAS_TEST_HEAL_FILE")
    return path is not None and Path(path).exists()


class SleepSkill:
    """Sleeps per item. Characteristics: `slow` multiplies the sleep, `fail_from` makes
    items from that index on raise ConnectionError (a transient error, so retried), until
    the file MAS_TEST_HEAL_FILE names exists (a fault that went away).
    Outputs are right except for items whose index falls in the difficulty share."""

    name = "sleep"
    primary_metric = "accuracy"
    params_model: type[BaseModel] = SleepParams

    def make_inputs(self, spec: InputSpec) -> list[Item]:
        traits = spec["characteristics"]
        return [
            {
                "id": f"{spec['scenario']}:{index}",
                "index": index,
                "sleep_factor": float(traits.get("slow", 1.0)),
                "fails": index >= int(traits.get("fail_from", spec["size"] + 1)),
                "wrong": index % 10 < round(spec["difficulty"] * 10),
            }
            for index in range(spec["size"])
        ]

    async def process(
        self, items: list[Item], params: Any, model: BaseChatModel | None
    ) -> list[Any]:
        started = time.perf_counter()
        outputs = []
        for item in items:
            log_item(item["id"])
            await asyncio.sleep(params.item_s * item["sleep_factor"])
            if item["fails"] and not healed():
                raise ConnectionError(f"item {item['id']} failed")
            outputs.append(not item["wrong"])
        scenario = items[0]["id"].split(":")[0]
        BATCH_INTERVALS.append((scenario, started, time.perf_counter()))
        return outputs

    def score(self, items: list[Item], outputs: list[Any]) -> dict[str, float]:
        return {"accuracy": sum(outputs) / len(outputs)}


def labeler_agent(system: str) -> str:
    return "labeler" if "label customer reviews" in system else "unknown"


NEGATIVE_WORDS = ("broke", "waste", "damaged", "stopped", "worse")


def scripted_label(messages: list[BaseMessage]) -> str:
    """Right on plain reviews, fooled by the hedge on hard ones, so accuracy falls with
    difficulty the way a real model's would."""
    text = messages[-1].text
    negative = any(word in text for word in NEGATIVE_WORDS)
    if ", but " in text:
        negative = not negative
    return json.dumps({"label": "negative" if negative else "positive"})


def notebook_model() -> Any:
    """The deterministic model notebooks/scenarios.ipynb runs on in the test suite."""
    from tests.support.scripted import ScriptedChatModel

    return ScriptedChatModel(script={"labeler": scripted_label}, classify=labeler_agent)


def long_scenario(batches: int) -> dict[str, Any]:
    """One scenario of `batches` one-item batches of the instant sleep skill, run to the
    end without sync points: a run only as long as its batch count."""
    return {
        "skill": SLEEP_SKILL,
        "params": {"item_s": 0.0},
        "base_size": batches,
        "sync": "free",
        "scenarios": [{"name": "long", "scale": 1.0, "batch_size": 1, "budget_s": 600}],
    }
