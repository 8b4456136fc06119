"""What the console shows, read from checkpoints and the threads' registry: plain data
for the templates, no HTML here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot

from mas_graphs.checkpoints.admin import ThreadRecord
from mas_graphs.state.common import call_tokens

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


def timeline(history: list[StateSnapshot], limit: int = TIMELINE_ROWS) -> list[Step]:
    """Checkpoints newest first (as LangGraph lists them), each with the nodes that ran
    to make it (what the checkpoint before it had next) and the model calls they made."""
    oldest_first = list(reversed(history[: limit + 1]))
    steps = []
    for before, after in zip([None, *oldest_first], oldest_first, strict=False):
        if before is None and len(history) > limit:
            continue  # the row before the first shown, read only for its successor
        usage_before = len(before.values.get("usage", [])) if before else 0
        new_calls = after.values.get("usage", [])[usage_before:]
        created = after.created_at or ""
        seconds = None
        if before is not None and before.created_at and created:
            seconds = (
                datetime.fromisoformat(created) - datetime.fromisoformat(before.created_at)
            ).total_seconds()
        steps.append(
            Step(
                checkpoint_id=str(after.config["configurable"]["checkpoint_id"]),
                step=int((after.metadata or {}).get("step", -1)),
                source=str((after.metadata or {}).get("source", "")),
                nodes=list(before.next) if before is not None else [],
                created_at=created,
                seconds=seconds,
                calls=sum(call["calls"] for call in new_calls),
                tokens=sum(call_tokens(call) for call in new_calls),
            )
        )
    return list(reversed(steps))


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
    history = list(graph.get_state_history(config, limit=TIMELINE_ROWS + 1))
    total = len(history)
    if total > TIMELINE_ROWS and isinstance(graph.checkpointer, BaseCheckpointSaver):
        total = sum(1 for _ in graph.checkpointer.list(config))
    ran = {node for step in history for node in step.next} - set(snapshot.next)
    return RunPage(
        record=record,
        values=snapshot.values,
        next=list(snapshot.next),
        steps=timeline(history),
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
