"""mas-graphs: multi-agent workflow patterns as durable LangGraph graphs."""

from mas.models import register_model
from mas.runner import RunEvent, Runner, RunResult, aresume, arun, resume, run

__all__ = [
    "RunEvent",
    "RunResult",
    "Runner",
    "aresume",
    "arun",
    "register_model",
    "resume",
    "run",
]
