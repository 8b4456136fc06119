"""Where the CLI's thread commands go: this machine's database and runner, or a running
server through the LangGraph SDK. Each command is written once against `Backend`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot

from mas import runner
from mas.cli import remote
from mas.database import resolve_dsn
from mas.errors import InputError, UnknownThreadError
from mas.patterns import get_pattern
from mas.runner import OnEvent, RunResult
from mas.server.threads import get_thread, list_threads
from mas_graphs.checkpoints.admin import ThreadRecord
from mas_graphs.checkpoints.savers import connection, open_saver


@dataclass(frozen=True)
class Pending:
    """A run whose request is checked: `pattern` (when known before it runs) picks its
    live view, `follow(on_event)` runs it to its end or next interrupt and returns its
    pattern and result."""

    pattern: str | None
    follow: Callable[[OnEvent], tuple[str, RunResult]]


class Backend(Protocol):
    def start(
        self, pattern: str, data: Any, *, thread_id: str | None, model: str | None
    ) -> Pending:
        """A new run of `pattern` on `data`, its input checked before anything starts."""

    def resume(
        self, thread_id: str, *, answer: Any, model: str | None, restart: list[str]
    ) -> Pending:
        """A thread's next run: after a crash, with an answer to its interrupt, or running
        parts of a finished run again (`restart`)."""

    def threads(self, *, limit: int) -> list[ThreadRecord]:
        """Threads, newest first."""

    def state(self, thread_id: str, *, history: bool) -> dict[str, Any]:
        """A thread's state (and checkpoints), as `mas show --json` prints it."""


@dataclass(frozen=True)
class LocalBackend:
    """This machine: the runner, on the project's PostgreSQL."""

    dsn: str | None

    def start(
        self, pattern: str, data: Any, *, thread_id: str | None, model: str | None
    ) -> Pending:
        prepared = runner.prepare_run(pattern, data, thread_id=thread_id, model=model)

        def follow(on_event: OnEvent) -> tuple[str, RunResult]:
            return pattern, runner.start(prepared, dsn=self.dsn, on_event=on_event)

        return Pending(pattern, follow)

    def resume(
        self, thread_id: str, *, answer: Any, model: str | None, restart: list[str]
    ) -> Pending:
        with open_saver(resolve_dsn(self.dsn)) as saver, connection(saver) as conn:
            record = get_thread(conn, thread_id)
        if record is None:
            raise UnknownThreadError(thread_id)

        def follow(on_event: OnEvent) -> tuple[str, RunResult]:
            result = runner.resume(
                thread_id,
                answer=answer,
                model=model,
                dsn=self.dsn,
                on_event=on_event,
                restart=restart or None,
            )
            return record.pattern, result

        return Pending(record.pattern, follow)

    def threads(self, *, limit: int) -> list[ThreadRecord]:
        with open_saver(resolve_dsn(self.dsn)) as saver, connection(saver) as conn:
            return list_threads(conn, limit=limit)

    def state(self, thread_id: str, *, history: bool) -> dict[str, Any]:
        with local_thread(self.dsn, thread_id) as thread:
            record, graph, config = thread.record, thread.graph, thread.config
            snapshot = graph.get_state(config, subgraphs=True)
            steps = list(graph.get_state_history(config)) if history else []
        return {
            "thread_id": thread_id,
            "pattern": record.pattern,
            "status": record.status,
            "runs": record.runs,
            "error": record.error,
            "next": list(snapshot.next),
            "values": snapshot.values,
            "interrupts": [i.value for i in snapshot.interrupts],
            "nested": nested_runs(snapshot),
            "history": [
                {
                    "checkpoint_id": s.config["configurable"]["checkpoint_id"],
                    "step": s.metadata.get("step") if s.metadata else None,
                    "source": s.metadata.get("source") if s.metadata else None,
                    "next": list(s.next),
                    "created_at": s.created_at,
                }
                for s in steps
            ],
        }


@dataclass(frozen=True)
class LocalThread:
    """A thread in this machine's database, opened: its pattern's graph on the saver."""

    saver: PostgresSaver
    record: ThreadRecord
    graph: CompiledStateGraph[Any, Any, Any, Any]
    config: Any


@contextmanager
def local_thread(dsn: str | None, thread_id: str) -> Iterator[LocalThread]:
    with open_saver(resolve_dsn(dsn)) as saver:
        with connection(saver) as conn:
            record = get_thread(conn, thread_id)
        if record is None:
            raise UnknownThreadError(thread_id)
        graph = get_pattern(record.pattern).build(saver, record.options)
        yield LocalThread(saver, record, graph, {"configurable": {"thread_id": thread_id}})


def nested_runs(snapshot: StateSnapshot) -> list[dict[str, Any]]:
    """The nested runs (teams) a thread has under way, at every depth."""
    runs = []
    for task in snapshot.tasks:
        if isinstance(task.state, StateSnapshot):
            runs.append(
                {
                    "node": task.name,
                    "namespace": task.state.config["configurable"]["checkpoint_ns"],
                    "next": list(task.state.next),
                    "step": (task.state.metadata or {}).get("step"),
                    "nested": nested_runs(task.state),
                }
            )
    return runs


@dataclass(frozen=True)
class RemoteBackend:
    """A running server (`mas serve`, `langgraph dev`): its operator sets models and
    build options, and it checks the input again."""

    server: remote.Server

    def start(
        self, pattern: str, data: Any, *, thread_id: str | None, model: str | None
    ) -> Pending:
        # Checked here for a quick one-line error; the server checks it again.
        state_input, options = get_pattern(pattern).parse(data)
        if given := sorted(set(options) & set(data)):
            raise InputError(f"{', '.join(given)}: build options are the server's to set")

        def follow(on_event: OnEvent) -> tuple[str, RunResult]:
            result = remote.run(
                self.server, pattern, state_input, thread_id=thread_id, on_event=on_event
            )
            return pattern, result

        return Pending(pattern, follow)

    def resume(
        self, thread_id: str, *, answer: Any, model: str | None, restart: list[str]
    ) -> Pending:
        def follow(on_event: OnEvent) -> tuple[str, RunResult]:
            if restart:
                return remote.restart(self.server, thread_id, restart, on_event=on_event)
            return remote.resume(self.server, thread_id, answer=answer, on_event=on_event)

        return Pending(None, follow)  # the server names the pattern when it resumes

    def threads(self, *, limit: int) -> list[ThreadRecord]:
        return remote.threads(self.server, limit=limit)

    def state(self, thread_id: str, *, history: bool) -> dict[str, Any]:
        return remote.state(self.server, thread_id, history=history)
