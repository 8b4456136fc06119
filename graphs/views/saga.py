"""How `mas` shows a saga: the step log live while it runs, then the final status."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from mas_graphs.state.pattern import PatternView, RunEvent

STATUS_STYLES = {
    "completed": "green",
    "compensated": "yellow",
    "compensation_failed": "bold red",
    "compensating": "yellow",
    "running": "blue",
    "awaiting_approval": "yellow",
}
EVENT_STYLES = {
    "succeeded": "green",
    "compensated": "yellow",
    "approved": "green",
    "failed": "red",
    "compensation_failed": "bold red",
    "rejected": "red",
}
# Nodes that are bookkeeping, not steps: not shown in the live log.
QUIET_NODES = {"open_saga", "finish_saga"}


class SagaProgress:
    """A live step log: each action or compensation as it starts, retries and ends."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[dict[str, Any]] = []

    def _row(self, node: str) -> dict[str, Any] | None:
        return next((r for r in reversed(self.rows) if r["node"] == node and not r["end"]), None)

    def on_event(self, event: RunEvent) -> None:
        if event.node in QUIET_NODES or event.node.startswith("__"):
            return
        now = time.perf_counter()
        row = self._row(event.node)
        if event.kind == "progress" and event.data.get("event") == "started":
            if row is None:
                row = {"node": event.node, "start": now, "end": None, "error": ""}
                self.rows.append(row)
            row.update(state="running", attempt=event.data.get("attempt", 1))
        elif event.kind == "progress" and row is not None:
            row.update(state=str(event.data.get("event")), end=now)
        elif event.kind == "node_error" and row is not None:
            row.update(state="failed", end=now, error=event.data.get("error", ""))
        elif event.kind == "node_end" and event.data.get("interrupted"):
            self.rows.append(
                {"node": event.node, "start": now, "end": now, "state": "waiting", "error": ""}
            )

    def __rich__(self) -> Panel:
        table = Table(box=None, header_style="bold")
        for column in ("", "step", "attempt", "time", "note"):
            table.add_column(column)
        now = time.perf_counter()
        for row in self.rows[-20:]:
            state = row["state"]
            icon: Any = (
                Spinner("dots")
                if state == "running"
                else Text(state, style=EVENT_STYLES.get(state, "yellow"))
            )
            elapsed = (row["end"] or now) - row["start"]
            table.add_row(
                icon,
                row["node"],
                str(row.get("attempt", "")),
                f"{elapsed:.1f}s",
                Text(row["error"][:80], style="red"),
            )
        return Panel(table, title=f"saga {self.title}", border_style="blue")


def progress(title: str) -> SagaProgress:
    return SagaProgress(title)


def step_log_table(values: dict[str, Any]) -> Table:
    table = Table(title="step log")
    for column in ("finished", "step", "node", "event", "attempts", "detail"):
        table.add_column(column)
    for entry in values.get("step_log", []):
        table.add_row(
            entry["finished_at"][11:23],
            entry["step"],
            entry["node"],
            Text(entry["event"], style=EVENT_STYLES.get(entry["event"], "")),
            str(entry["attempts"]),
            entry["detail"][:100],
        )
    return table


def render(console: Console, values: dict[str, Any]) -> None:
    """The final status of a saga and its step log."""
    status = values.get("status", "?")
    order = values.get("order", {})
    lines = [
        Text(f"order {order.get('order_id', '?')}: {status}", style=STATUS_STYLES.get(status, ""))
    ]
    if failure := values.get("failure"):
        lines.append(Text(f"failed at {failure['step']}: {failure['error']}", style="red"))
    if attention := values.get("attention"):
        lines.append(
            Text(
                f"needs attention: compensation {attention['node']} of {attention['step']}: "
                f"{attention['error']}",
                style="bold red",
            )
        )
    console.print(
        Panel(Group(*lines), title="saga", border_style=STATUS_STYLES.get(status, "blue"))
    )
    console.print(step_log_table(values))


def watch(snapshot: Any) -> Panel:
    """A saga read from its checkpoints: its step log so far, and what runs now."""
    values = snapshot.values
    table = Table(box=None, header_style="bold")
    for column in ("step", "phase", "outcome", "attempts", "detail"):
        table.add_column(column)
    for entry in values.get("step_log", [])[-20:]:
        table.add_row(
            entry["step"],
            entry["phase"],
            Text(entry["event"], style=EVENT_STYLES.get(entry["event"], "yellow")),
            str(entry["attempts"]),
            Text(entry["detail"][:80], style="dim"),
        )
    running = [task.name for task in snapshot.tasks]
    body: list[Any] = [table]
    if running:
        body.append(Spinner("dots", text=f" {', '.join(running)}"))
    status = values.get("status", "running")
    return Panel(Group(*body), title=f"saga · {status}", border_style="blue")


VIEW = PatternView(render=render, progress=progress, watch=watch)
