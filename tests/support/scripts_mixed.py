"""One scripted model for every pattern at once (a server runs them all on one model)."""

from __future__ import annotations

from typing import Any

from tests.support.scripted import supervisor_agent
from tests.support.scripts_debate import debate_agent, debate_script
from tests.support.scripts_saga import saga_agent, saga_script
from tests.support.scripts_supervisor import supervisor_script

CLASSIFY = "tests.support.scripts_mixed:any_agent"


def any_agent(prompt: str) -> str:
    """The agent a prompt belongs to, in whichever pattern it comes from."""
    for classify in (supervisor_agent, debate_agent, saga_agent):
        if (agent := classify(prompt)) != "unknown":
            return agent
    return "unknown"


def mixed_script() -> dict[str, Any]:
    return {**supervisor_script(), **debate_script(), **saga_script()}
