"""How `mas` shows a supervisor run: its workers as a tree (a team's nested run under
the worker it ran for), plan revisions, critic rounds, a person's decisions, and the
synthesis."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text
from rich.tree import Tree

from mas_graphs.nodes.structured import cut_at_word
from mas_graphs.state.pattern import PATTERNS, PatternView

STATUS_STYLE = {"ok": "green", "fallback": "yellow", "failed": "red"}


def worker_line(name: str, result: dict[str, Any]) -> Text:
    report = result.get("report") or {}
    line = Text(f"{name} ", style="bold")
    line.append(result["status"], style=STATUS_STYLE[result["status"]])
    kind = result.get("kind", "role")
    if kind == "team":
        line.append(f" · {(result.get('team') or {}).get('pattern', 'team')}", style="cyan")
    elif kind == "agent":
        line.append(" · registered agent", style="cyan")
    line.append(f" · batch {result['batch']}")
    if report:
        line.append(f" · confidence {report.get('confidence', 0):.2f}")
    if reviews := result.get("reviews"):
        accepted = "accepted" if reviews[-1]["accepted"] else "not accepted"
        line.append(f" · {len(reviews)} critic round(s), {accepted}", style="magenta")
    if calls := result.get("tool_calls"):
        failed = sum(1 for call in calls if call["error"])
        line.append(f" · {len(calls)} tool call(s)" + (f", {failed} failed" if failed else ""))
    if memory := result.get("memory"):  # older threads' results have no memory record
        line.append(f" · {memory['dropped']} earlier result(s) summarised", style="dim")
    summary = report.get("summary") or result.get("error") or ""
    line.append(f"\n{cut_at_word(summary, 160)}", style="dim")
    return line


def team_branch(tree: Tree, values: dict[str, Any]) -> None:
    """A nested supervisor under its worker: its workers, and their teams recursively."""
    for name, result in values.get("results", {}).items():
        branch = tree.add(worker_line(name, result))
        if (team := result.get("team")) and team["pattern"] in PATTERNS:
            view = PATTERNS.get(team["pattern"]).view
            if view is not None and view.team_branch is not None:
                view.team_branch(branch, team["values"])


def render(console: Console, values: dict[str, Any]) -> None:
    """Workers (teams as trees), plan changes, conflicts and the synthesis."""
    plan = values.get("plan", {})
    if plan.get("note"):
        console.print(
            Text.assemble((f"plan ({plan.get('source')}):", "yellow"), f" {plan['note']}")
        )
    tree = Tree(f"[bold]{len(values.get('results', {}))} workers[/]")
    team_branch(tree, values)
    console.print(tree)
    for revision in values.get("plan_revisions", []):
        change = "changed" if revision["changed"] else "kept"
        failed = "; ".join(f"{n} failed: {e}" for n, e in revision.get("failed", {}).items())
        console.print(
            Text.assemble(
                ("replan", "cyan"),
                f" after batch {revision['after_batch']} ({failed or 'batch done'}): "
                f"{change} {revision['before']} → {revision['after']}: {revision['reason']}",
            )
        )
    synthesis = values.get("synthesis") or {}
    for conflict in synthesis.get("conflicts", []):
        resolution = conflict.get("resolution") or {}
        console.print(
            Text.assemble(
                ("conflict", "magenta"),
                f" {conflict['topic']} ({', '.join(conflict['workers'])}): "
                f"{resolution.get('method', 'unresolved')} → {resolution.get('winner', '-')}: "
                f"{resolution.get('resolution', '')}",
            )
        )
    for escalation in values.get("escalations", []):
        workers = f" {', '.join(escalation['workers'])}" if escalation["workers"] else ""
        console.print(
            Text.assemble(
                ("a person", "yellow"),
                f" ({escalation['reason']}): {escalation['action']}{workers}"
                + (f" · {escalation['note']}" if escalation["note"] else ""),
            )
        )
    if not synthesis:
        return  # a run stopped before its synthesis (over budget): its workers are shown
    body = [Text(synthesis.get("summary", ""))]
    body += [Text(f"• {r}") for r in synthesis.get("recommendations", [])]
    if "confidence" in synthesis:
        body.append(Text(f"confidence {synthesis['confidence']:.2f}", style="bold"))
    if reviews := synthesis.get("reviews"):
        accepted = "accepted" if reviews[-1]["accepted"] else "not accepted"
        body.append(Text(f"{len(reviews)} critic round(s), {accepted}", style="magenta"))
    if synthesis.get("note"):
        body.append(Text(synthesis["note"], style="yellow"))
    console.print(Panel(Group(*body), title="synthesis", border_style="green"))


def watch(snapshot: Any) -> Panel:
    """A supervisor run read from its checkpoints: the plan's batches, each worker's
    outcome so far (teams with their own), and the batch under way."""
    values = snapshot.values
    plan = values.get("plan") or {}
    batches = plan.get("batches", [])
    index = values.get("batch_index", 0)
    results = values.get("results", {})
    tree = Tree(f"[bold]batch {min(index + 1, len(batches))} of {len(batches)}[/]")
    for number, batch in enumerate(batches):
        branch = tree.add(f"batch {number}")
        for name in batch:
            if name in results:
                branch.add(worker_line(name, results[name]))
            elif number == index:
                branch.add(Text(f"{name} working", style="blue"))
            else:
                branch.add(Text(f"{name} waiting", style="dim"))
    body: list[Any] = [tree]
    if synthesis := values.get("synthesis"):
        body.append(Text(f"synthesis: {cut_at_word(synthesis.get('summary', ''), 160)}"))
    return Panel(Group(*body), title="supervisor", border_style="blue")


VIEW = PatternView(render=render, team_branch=team_branch, watch=watch)
