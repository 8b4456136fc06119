"""How `mas` shows a scenarios run: a live progress bar per scenario with its milestones,
and the aggregate when it is done."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from mas_graphs.state.pattern import PatternView, RunEvent

STATUS_STYLES = {"running": "blue", "done": "green", "failed": "red", "timed_out": "yellow"}


class ScenariosProgress:
    """One bar per scenario, fed by the batches' progress events; milestones as they pass."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.perf_counter()
        self.scenarios: dict[str, dict[str, Any]] = {}
        self.milestones: list[str] = []

    def on_event(self, event: RunEvent) -> None:
        if event.kind != "progress":
            return
        data = event.data
        if data.get("node") == "run_batch":
            self.scenarios[data["scenario"]] = data
        elif data.get("node") == "milestone_sync":
            at = time.perf_counter() - self.started
            late = f" (late: {', '.join(data['late'])})" if data.get("late") else ""
            self.milestones.append(f"{data['milestone']} at {at:.1f}s{late}")

    def __rich__(self) -> Panel:
        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("scenario", "progress", "items", "status", "elapsed"):
            table.add_column(column)
        for name, data in self.scenarios.items():
            table.add_row(
                name,
                ProgressBar(total=data["size"], completed=data["items_done"], width=30),
                f"{data['items_done']}/{data['size']}",
                Text(data["status"], style=STATUS_STYLES.get(data["status"], "")),
                f"{data['elapsed_ms'] / 1000:.1f}s",
            )
        passed = Text("milestones: " + (" · ".join(self.milestones) or "none yet"), style="dim")
        return Panel(Group(table, passed), title=self.title, border_style="blue")


def progress(title: str) -> ScenariosProgress:
    return ScenariosProgress(title)


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(console: Console, values: dict[str, Any]) -> None:
    """Per-scenario results, scaling, quality ranking, timeline and recommendations."""
    result = values.get("aggregate") or {}
    metric = result.get("quality_metric", "")
    scaling = result.get("scaling", {})
    table = Table(title=f"scenarios · skill {result.get('skill')} · sync {result.get('sync')}")
    for column in ("scenario", "status", "items", "elapsed", "ms/item", "vs simplest", "growth"):
        table.add_column(column)
    table.add_column(metric or "quality")
    for name, s in result.get("scenarios", {}).items():
        growth = scaling.get(name, {})
        table.add_row(
            name,
            Text(s["status"], style=STATUS_STYLES.get(s["status"], "")),
            f"{s['items_processed']}/{s['size']}",
            f"{s['elapsed_ms'] / 1000:.2f}s",
            _number(s["ms_per_item"], 3),
            _number(growth.get("relative_time_per_item")) + "x" if growth else "-",
            growth.get("class", "-"),
            _number(s["quality"].get(metric)),
        )
    console.print(table)
    if result.get("aborted"):
        console.print(
            Text("every scenario failed, again after a retry with smaller batches:", style="red")
        )
        for line in result["diagnosis"]:
            console.print(Text(f"  {line}", style="red"))
    else:
        for name, s in result.get("scenarios", {}).items():
            for error in s["errors"]:
                console.print(Text.assemble((f"{name}:", "red"), f" {error}"))
    timeline = Table(title="milestones")
    timeline.add_column("milestone")
    timeline.add_column("at", justify="right")
    names = list(result.get("scenarios", {}))
    for name in names:
        timeline.add_column(name, justify="right")
    for m in result.get("timeline", []):
        cells = [
            Text(f"{s['pct']:.0f}% late", style="yellow")
            if (s := m["scenarios"][n]).get("late")  # older threads' records have no flag
            else f"{s['pct']:.0f}%"
            for n in names
        ]
        timeline.add_row(m["label"], f"{m['at_ms'] / 1000:.1f}s", *cells)
    console.print(timeline)
    ranking = ", ".join(
        f"{r['scenario']} ({_number(r[metric])})" for r in result.get("quality_ranking", [])
    )
    body = [
        Text(f"quality ranking by {metric}: {ranking}"),
        Text(
            f"parallel efficiency {result.get('parallel_efficiency', 0):.2f} "
            f"(wall {result.get('wall_ms', 0) / 1000:.1f}s)"
        ),
        *(Text(f"• {advice}") for advice in result.get("recommendations", [])),
    ]
    console.print(Panel(Group(*body), title="aggregate", border_style="green"))


def team_branch(tree: Tree, values: dict[str, Any]) -> None:
    """A nested scenarios run under its worker: its quality ranking."""
    ranking = (values.get("aggregate") or {}).get("quality_ranking", [])
    tree.add(Text("ranking: " + ", ".join(r["scenario"] for r in ranking)))


def watch(snapshot: Any) -> ScenariosProgress:
    """A run read from its checkpoints: each scenario's bar (a phase under way from its
    own checkpoints, batch by batch) and the sync points passed."""
    values = snapshot.values
    runs = dict(values.get("runs", {}))
    for task in snapshot.tasks:
        nested = getattr(task.state, "values", None)
        if isinstance(nested, dict) and "run" in nested:
            runs[nested["run"]["name"]] = nested["run"]
    shown = ScenariosProgress("scenarios")
    shown.scenarios = {
        name: {k: run[k] for k in ("size", "items_done", "status", "elapsed_ms")}
        for name, run in runs.items()
    }
    shown.milestones = [
        f"{m['label']} at {m['at_ms'] / 1000:.1f}s" for m in values.get("timeline", [])
    ]
    return shown


VIEW = PatternView(render=render, progress=progress, team_branch=team_branch, watch=watch)
