"""Scripts for notebooks/custom_pattern.ipynb: the README's `brief` pattern on its own and
as a supervisor's team (see tests/support/scripted.py)."""

from __future__ import annotations

from typing import Any

from tests.support.scripts_supervisor import report

DRAFT = "Tabs let each reader pick a width. Spaces look the same everywhere. Teams pick one."
BRIEF = "Pick spaces: they look the same in every editor."


def notebook_model() -> Any:
    """The deterministic model the notebook runs on in the test suite."""
    from tests.support.factories import decode
    from tests.support.plugins import brief_agent
    from tests.support.scripted import ScriptedChatModel

    script: dict[str, Any] = {
        "writer": DRAFT,
        "editor": BRIEF,
        "analyst": report("Spaces are the community default for Python", 0.8),
        "synthesizer": {
            "summary": "Use spaces: the brief and the analysis agree.",
            "recommendations": ["configure the formatter for spaces"],
            "confidence": 0.8,
        },
    }
    return ScriptedChatModel(
        script={agent: decode(entry) for agent, entry in script.items()}, classify=brief_agent
    )
