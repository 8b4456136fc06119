"""Scripts for the debate's agents (see tests/support/scripted.py)."""

from __future__ import annotations

import re
from typing import Any

QUESTION = "Should a five-person team run its own Kafka cluster?"
STANCES = [
    {"name": "affirmative", "stance": "Argue that the team should run Kafka."},
    {"name": "negative", "stance": "Argue that the team should not run Kafka."},
]


def debate_agent(prompt: str) -> str:
    """Which debate agent a prompt (system text, then the user message) belongs to;
    debaters by the side the user message gives them."""
    if "You are a debater" in prompt:
        match = re.search(r'Your side: "([\w-]+)"', prompt)
        return match.group(1) if match else "unknown"
    if "independent sample" in prompt:
        return "self_consistency"
    if "one of several solvers" in prompt:
        match = re.search(r"Your approach \(([\w-]+)\)", prompt)
        return match.group(1) if match else "unknown"
    for marker, agent in (
        ("before any debate", "gate"),
        ("You judge a debate", "judge"),
        ("You answer a question on your own", "single_agent"),
    ):
        if marker in prompt:
            return agent
    return "unknown"


def turn(
    side: str, confidence: float, argument: str = "", *rebuttals: str, conceded: bool = False
) -> dict[str, Any]:
    """A debater's reply: its argument for `side` (the side itself comes from the graph,
    never from the reply), and whether it concedes (read from round 2 on)."""
    return {
        "argument": argument or f"{side} holds",
        "rebuttals": list(rebuttals),
        "confidence": confidence,
        "conceded": conceded,
    }


def solution(answer: str, confidence: float = 0.7, reasoning: str = "") -> dict[str, Any]:
    """A solver's (or a free-answer baseline's) reply in a debate of kind 'answer'."""
    return {
        "reasoning": reasoning or f"worked it out: {answer}",
        "answer": answer,
        "confidence": confidence,
    }


def verdict(winner: str, confidence: float) -> dict[str, Any]:
    return {
        "winner": winner,
        "confidence": confidence,
        "reasoning": f"{winner} argued better",
        "decisive_for": ["ops cost is real"],
        "decisive_against": ["scale might come"],
    }


def solo(position: str, confidence: float) -> dict[str, Any]:
    return {"position": position, "answer": f"I say {position}", "confidence": confidence}


def debate_script(**overrides: Any) -> dict[str, Any]:
    """Two sides that hold their ground; the judge finds for the negative."""
    script: dict[str, Any] = {
        "affirmative": turn("affirmative", 0.6, "Kafka scales"),
        "negative": turn("negative", 0.8, "Kafka is costly to run"),
        "judge": verdict("negative", 0.85),
        "gate": solo("negative", 0.5),
        "single_agent": solo("negative", 0.7),
        "self_consistency": solo("negative", 0.7),
    }
    script.update(overrides)
    return script


def notebook_model() -> Any:
    """The deterministic model notebooks/debate.ipynb runs on in the test suite."""
    from tests.support.factories import decode
    from tests.support.scripted import ScriptedChatModel

    return ScriptedChatModel(
        script={agent: decode(entry) for agent, entry in debate_script().items()},
        classify=debate_agent,
    )
