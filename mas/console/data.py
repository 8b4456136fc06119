"""What the console shows, read from checkpoints and the threads' registry: plain data
for the templates, no HTML here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send, StateSnapshot

from mas_graphs.checkpoints.admin import ThreadRecord, count_checkpoints
from mas_graphs.checkpoints.savers import connection

# Channels LangGraph writes to start nodes: an edge's, and the `Send`s'.
BRANCH_TO = "branch:to:"
TASKS = "__pregel_tasks"
# The newest checkpoints a run's page lists; older ones are a click away.
TIMELINE_ROWS = 200
STATUS_LABELS = {
    "running": "running",
    "interrupted": "waiting for a person",
    "over_budget": "over budget",
    "failed": "failed",
    "done": "done",
}


@dataclass(frozen=True)
class Step:
    """One checkpoint of a run: the nodes whose writes made it, when, and their cost."""

    checkpoint_id: str
    step: int
    source: str
    nodes: list[str]
    created_at: str
    seconds: float | None  # since the checkpoint before
    calls: int
    tokens: int


@dataclass(frozen=True)
class Pending:
    """An interrupt waiting for an answer: what it asks and the answer's JSON schema."""

    thread_id: str
    pattern: str
    interrupt_id: str
    kind: str
    question: dict[str, Any]
    schema: dict[str, Any] | None


@dataclass(frozen=True)
class RunPage:
    record: ThreadRecord
    values: dict[str, Any]
    next: list[str]
    steps: list[Step]  # newest first
    older: int  # checkpoints not in `steps`
    ran: set[str] = field(default_factory=set)  # nodes that have run at least once
    pending: list[Pending] = field(default_factory=list)


@dataclass(frozen=True)
class Team:
    """A team worker's nested run: finished (its final state, kept in the worker's result)
    or under way (its own checkpoint, with what it runs next)."""

    worker: str
    pattern: str
    status: str
    values: dict[str, Any]
    next: list[str]


def teams_of(values: dict[str, Any], snapshot: StateSnapshot | None) -> list[Team]:
    """The run's teams: those that finished, then those under way (`snapshot`, read with
    its subgraphs, of a run with work left), each named by its worker where the input
    says which one it is."""
    teams = [
        Team(name, result["team"]["pattern"], result["status"], result["team"]["values"], [])
        for name, result in values.get("results", {}).items()
        if result.get("team")
    ]
    waiting = [
        worker
        for worker in values.get("workers", [])
        if worker.get("kind") == "team" and worker["name"] not in {t.worker for t in teams}
    ]
    for task in snapshot.tasks if snapshot else ():
        if isinstance(task.state, StateSnapshot):
            nested = task.state.values
            pattern = next((w["pattern"] for w in waiting if w["pattern"] and fits(w, nested)), "")
            names = [w["name"] for w in waiting if w["pattern"] == pattern]
            worker = names[0] if len(names) == 1 else "a team"
            teams.append(Team(worker, pattern, "running", nested, list(task.state.next)))
    return teams


def fits(worker: dict[str, Any], nested: dict[str, Any]) -> bool:
    """Whether a nested run's state is a run of this team worker's input."""
    given = worker.get("input") or {}
    return all(nested.get(key) == value for key, value in given.items() if key in nested)


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def age(when: datetime, now: datetime) -> str:
    seconds = max(0.0, (now - when).total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def matches(record: ThreadRecord, *, status: str, pattern: str, query: str) -> bool:
    """The threads list's filters: a status, a pattern, and text in the id or error."""
    if status and record.status != status:
        return False
    if pattern and record.pattern != pattern:
        return False
    text = f"{record.thread_id} {record.error or ''}".lower()
    return not query or query.lower() in text


def timeline(tuples: list[CheckpointTuple]) -> list[Step]:
    """Checkpoints newest first, as the saver lists them, each with the nodes that ran to
    make it and the model calls they made, read from the writes LangGraph keeps with
    each checkpoint (what its tasks wrote) rather than from each checkpoint's state,
    which a long run's growing channels make slow to rebuild. Pass two checkpoints more
    than the rows wanted: the writes two back say which nodes ran."""
    steps = []
    for index, after in enumerate(tuples[: len(tuples) - 1]):
        before = tuples[index + 1]
        made = [value for _, channel, value in before.pending_writes or () if channel == "usage"]
        calls = [
            c for items in made if isinstance(items, list) for c in items if isinstance(c, dict)
        ]
        earlier = tuples[index + 2] if index + 2 < len(tuples) else None
        seconds = None
        if before.checkpoint.get("ts") and after.checkpoint.get("ts"):
            seconds = (
                datetime.fromisoformat(after.checkpoint["ts"])
                - datetime.fromisoformat(before.checkpoint["ts"])
            ).total_seconds()
        steps.append(
            Step(
                checkpoint_id=str(after.config["configurable"]["checkpoint_id"]),
                step=int((after.metadata or {}).get("step", -1)),
                source=str((after.metadata or {}).get("source", "")),
                nodes=triggered(earlier) if earlier else [],
                created_at=str(after.checkpoint.get("ts", "")),
                seconds=seconds,
                calls=sum(int(c.get("calls", 0)) for c in calls),
                tokens=sum(
                    int(c.get("input_tokens", 0)) + int(c.get("output_tokens", 0)) for c in calls
                ),
            )
        )
    return steps


def usage_written(checkpoint: CheckpointTuple) -> list[dict[str, Any]]:
    """The model calls the tasks run from `checkpoint` recorded (their `usage` writes)."""
    written = [v for _, channel, v in checkpoint.pending_writes or () if channel == "usage"]
    return [c for items in written if isinstance(items, list) for c in items if isinstance(c, dict)]


def triggered(checkpoint: CheckpointTuple) -> list[str]:
    """The nodes the writes kept with `checkpoint` start next: edges (`branch:to:<node>`)
    and `Send`s, in order, once each."""
    nodes: list[str] = []
    for _, channel, value in checkpoint.pending_writes or ():
        if channel.startswith(BRANCH_TO):
            nodes.append(channel.removeprefix(BRANCH_TO))
        elif channel == TASKS and isinstance(value, Send):
            nodes.append(value.node)
    return list(dict.fromkeys(nodes))


def pending_of(record: ThreadRecord, snapshot: StateSnapshot) -> list[Pending]:
    """The interrupts a thread waits on (a nested team's included), with their schemas."""
    found = []
    for pending in snapshot.interrupts:
        payload = (
            dict(pending.value) if isinstance(pending.value, dict) else {"value": pending.value}
        )
        schema = payload.pop("answer", None)
        found.append(
            Pending(
                thread_id=record.thread_id,
                pattern=record.pattern,
                interrupt_id=pending.id,
                kind=str(payload.get("kind", "")),
                question=payload,
                schema=schema if isinstance(schema, dict) else None,
            )
        )
    return found


def run_page(
    record: ThreadRecord, graph: CompiledStateGraph[Any, Any, Any, Any], config: Any
) -> RunPage:
    snapshot = graph.get_state(config)
    saver = graph.checkpointer
    assert isinstance(saver, PostgresSaver)  # the console reads the project's PostgreSQL
    root: RunnableConfig = {"configurable": {**config["configurable"], "checkpoint_ns": ""}}
    tuples = list(saver.list(root, limit=TIMELINE_ROWS + 2))
    newest = tuples[0].checkpoint if tuples else None
    # every node that has run records what it saw: the newest checkpoint names them all
    ran = set(newest["versions_seen"]) - set(snapshot.next) if newest else set()
    total = len(tuples)
    if total > TIMELINE_ROWS:
        with connection(saver) as conn:
            total = count_checkpoints(conn, record.thread_id, "")
    return RunPage(
        record=record,
        values=snapshot.values,
        next=list(snapshot.next),
        steps=timeline(tuples)[:TIMELINE_ROWS],
        older=max(0, total - TIMELINE_ROWS),
        ran=ran,
        pending=pending_of(record, snapshot),
    )


def state_at(
    graph: CompiledStateGraph[Any, Any, Any, Any], thread_id: str, checkpoint_id: str
) -> StateSnapshot:
    config: RunnableConfig = {
        "configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}
    }
    return graph.get_state(config)


@dataclass(frozen=True)
class Change:
    key: str
    kind: str  # added, removed, changed
    before: str
    after: str


def as_text(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False, sort_keys=True)


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Channel by channel: what one checkpoint's state has that the other's does not."""
    changes = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            changes.append(Change(key, "removed", as_text(before[key]), ""))
        elif key not in before:
            changes.append(Change(key, "added", "", as_text(after[key])))
        elif before[key] != after[key]:
            changes.append(Change(key, "changed", as_text(before[key]), as_text(after[key])))
    return changes
