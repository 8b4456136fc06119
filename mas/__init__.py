"""mas-graphs: multi-agent workflow patterns as durable LangGraph graphs."""

from mas.providers.models import register_model
from mas.runner import Runner, RunResult, afork, aresume, arun, fork, resume, run
from mas_graphs.state.pattern import PatternSpec, PatternView, RunEvent, TeamRole, register_pattern

__all__ = [
    "PatternSpec",
    "PatternView",
    "RunEvent",
    "RunResult",
    "Runner",
    "TeamRole",
    "afork",
    "aresume",
    "arun",
    "fork",
    "register_model",
    "register_pattern",
    "resume",
    "run",
]
