"""Scripts for the supervisor's agents (see tests/support/scripted.py)."""

from __future__ import annotations

from typing import Any

TEAM = [
    {"name": "researcher", "role": "Find the facts [researcher]"},
    {"name": "analyst", "role": "Weigh the options [analyst]"},
    {"name": "critic", "role": "Find the risks [critic]"},
]


def plan(*steps: tuple[str, list[str]], rationale: str = "scripted plan") -> dict[str, Any]:
    return {
        "steps": [{"worker": w, "depends_on": deps} for w, deps in steps],
        "rationale": rationale,
    }


def report(summary: str, confidence: float, *findings: tuple[str, str]) -> dict[str, Any]:
    return {
        "summary": summary,
        "findings": [{"topic": t, "claim": c} for t, c in findings],
        "confidence": confidence,
    }


def supervisor_script(**overrides: Any) -> dict[str, Any]:
    """researcher and analyst in parallel, then critic; analyst and critic disagree."""
    script: dict[str, Any] = {
        "planner": plan(("researcher", []), ("analyst", []), ("critic", ["researcher", "analyst"])),
        "researcher": report("Postgres can queue jobs", 0.8, ("queue", "SKIP LOCKED works")),
        "analyst": report("Use Postgres", 0.9, ("choice", "use the database")),
        "critic": report("Write your own", 0.5, ("choice", "a custom queue is simpler")),
        "fallback:researcher": report("fallback researcher", 0.3),
        "fallback:analyst": report("fallback analyst", 0.3),
        "fallback:critic": report("fallback critic", 0.3),
        "conflict_detector": {
            "conflicts": [
                {"topic": "choice", "workers": ["analyst", "critic"], "description": "db vs custom"}
            ]
        },
        "arbiter": {"winner": "analyst", "resolution": "the database is already there"},
        "synthesizer": {
            "summary": "Use PostgreSQL with SKIP LOCKED.",
            "recommendations": ["start with SKIP LOCKED"],
            "confidence": 0.8,
        },
    }
    script.update(overrides)
    return script


def notebook_model() -> Any:
    """The deterministic model notebooks/supervisor.ipynb runs on in the test suite."""
    from tests.support.factories import decode
    from tests.support.scripted import ScriptedChatModel

    script = supervisor_script(
        # the notebook's MCP section: one tool call, then the report
        fact_checker=[
            {"action": "tool", "tool": "facts.lookup", "tool_input": "postgres"},
            {"action": "finish"},
            report("PostgreSQL can queue jobs with SKIP LOCKED", 0.8, ("queue", "SKIP LOCKED")),
        ]
    )
    return ScriptedChatModel(script={agent: decode(entry) for agent, entry in script.items()})
