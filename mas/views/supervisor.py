"""How `mas` shows a finished supervisor run."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from nodes.structured import cut_at_word


def render(console: Console, values: dict[str, Any]) -> None:
    """Workers, conflicts and the synthesis of a finished supervisor run."""
    plan = values.get("plan", {})
    if plan.get("note"):
        console.print(f"[yellow]plan ({plan.get('source')}):[/] {plan['note']}")
    workers = Table(title="workers", show_lines=False)
    for column in ("worker", "batch", "status", "confidence", "summary"):
        workers.add_column(column)
    for name, result in values.get("results", {}).items():
        report = result.get("report") or {}
        status_style = {"ok": "green", "fallback": "yellow", "failed": "red"}[result["status"]]
        workers.add_row(
            name,
            str(result["batch"]),
            Text(result["status"], style=status_style),
            f"{report.get('confidence', 0):.2f}" if report else "-",
            cut_at_word(report.get("summary") or result.get("error") or "", 160),
        )
    console.print(workers)
    synthesis = values.get("synthesis") or {}
    for conflict in synthesis.get("conflicts", []):
        resolution = conflict.get("resolution") or {}
        console.print(
            f"[magenta]conflict[/] {conflict['topic']} ({', '.join(conflict['workers'])}): "
            f"{resolution.get('method', 'unresolved')} → {resolution.get('winner', '-')}: "
            f"{resolution.get('resolution', '')}"
        )
    body = [Text(synthesis.get("summary", ""))]
    body += [Text(f"• {r}") for r in synthesis.get("recommendations", [])]
    if "confidence" in synthesis:
        body.append(Text(f"confidence {synthesis['confidence']:.2f}", style="bold"))
    console.print(Panel(Group(*body), title="synthesis", border_style="green"))
