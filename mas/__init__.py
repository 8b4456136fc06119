"""mas-graphs: multi-agent workflow patterns as durable LangGraph graphs."""

from mas.runner import RunEvent, RunResult, aresume, arun, resume, run

__all__ = ["RunEvent", "RunResult", "aresume", "arun", "resume", "run"]
