"""How `mas` shows a debate: rounds live while it runs, then the verdict and token totals."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from mas_graphs.nodes.structured import cut_at_word
from mas_graphs.state.pattern import PatternView, RunEvent

STOP_REASONS = {
    "gate": "skipped by the confidence gate",
    "converged": "positions converged",
    "conceded": "a side conceded",
    "round_limit": "round limit reached",
}


def _confidence(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


class DebateProgress:
    """A live table of rounds: each debater's position as its turn comes in."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.perf_counter()
        self.turns: dict[int, dict[str, dict[str, Any]]] = {}
        self.arguing = 0
        self.notes: list[str] = []

    def on_event(self, event: RunEvent) -> None:
        if event.node == "argue" and event.kind == "node_start":
            self.arguing += 1
        elif event.node == "argue" and event.kind in ("node_end", "node_error"):
            self.arguing = max(0, self.arguing - 1)
        if event.kind != "progress":
            return
        data = event.data
        if event.node == "argue":
            self.turns.setdefault(int(data["round"]), {})[str(data["speaker"])] = data
        elif event.node == "confidence_gate":
            self.notes.append(f"gate: {data.get('reason', '')}")
        elif event.node == "review_round" and data.get("stopped"):
            reason = STOP_REASONS.get(str(data["stopped"]), str(data["stopped"]))
            self.notes.append(f"stopped after round {data['round']}: {reason}")
        elif event.node == "judge_verdict":
            self.notes.append(f"judge: {data.get('winner')}")

    def __rich__(self) -> Panel:
        table = Table(box=None, header_style="bold")
        for column in ("round", "debater", "position", "confidence"):
            table.add_column(column)
        for number, turns in sorted(self.turns.items()):
            for speaker, turn in turns.items():
                failed = "position" not in turn
                table.add_row(
                    str(number),
                    speaker,
                    Text("failed", style="red") if failed else Text(str(turn["position"])),
                    _confidence(turn.get("confidence")),
                )
        body: list[Any] = [table]
        if self.arguing:
            body.append(Spinner("dots", text=f" {self.arguing} debater(s) arguing"))
        body += [Text(note, style="dim") for note in self.notes[-4:]]
        elapsed = time.perf_counter() - self.started
        return Panel(Group(*body), title=f"{self.title} · {elapsed:.0f}s", border_style="blue")


def progress(title: str) -> DebateProgress:
    return DebateProgress(title)


def _transcript(values: dict[str, Any]) -> Table:
    table = Table(title="transcript")
    for column in ("round", "speaker", "position", "confidence", "argument"):
        table.add_column(column)
    for turn in values.get("transcript", []):
        if turn["status"] == "failed":
            table.add_row(
                str(turn["round"]),
                turn["speaker"],
                Text("failed", style="red"),
                "-",
                Text((turn.get("error") or "")[:120], style="red"),
            )
            continue
        table.add_row(
            str(turn["round"]),
            turn["speaker"],
            str(turn["position"]),
            _confidence(turn["confidence"]),
            cut_at_word(turn["argument"], 160),
        )
    return table


def _verdict(values: dict[str, Any]) -> Panel:
    verdict = values.get("verdict") or {}
    body = [
        Text(f"{verdict.get('winner', '-')}", style="bold"),
        Text(
            f"decided by {verdict.get('decided_by', '-')}, confidence "
            f"{_confidence(verdict.get('confidence'))}"
        ),
    ]
    if verdict.get("reasoning"):
        body.append(Text(verdict["reasoning"]))
    body += [Text(f"+ {point}", style="green") for point in verdict.get("decisive_for", [])]
    body += [Text(f"- {point}", style="red") for point in verdict.get("decisive_against", [])]
    if verdict.get("tally"):
        body.append(Text("votes: " + ", ".join(f"{p} {v:g}" for p, v in verdict["tally"].items())))
    if verdict.get("note"):
        body.append(Text(verdict["note"], style="yellow"))
    return Panel(Group(*body), title="verdict", border_style="green")


def _comparison(comparison: dict[str, Any]) -> Table:
    table = Table(title="debate vs baselines" + (" (all agree)" if comparison["agree"] else ""))
    for column in ("method", "answer", "calls", "tokens", "votes"):
        table.add_column(column)
    for method in ("debate", "single_agent", "self_consistency"):
        row = comparison[method]
        votes = ""
        if "votes" in row:
            tally = ", ".join(f"{answer} {n}" for answer, n in row["votes"].items())
            votes = (
                f"{tally} ({row['distinct_answers']} distinct answers, "
                f"{row['distinct_texts']} distinct texts)"
            )
        table.add_row(method, str(row["answer"]), str(row["calls"]), str(row["tokens"]), votes)
    return table


def _totals(values: dict[str, Any]) -> Table:
    table = Table(title="usage")
    for column in ("agent", "calls", "failed", "input tokens", "output tokens", "latency"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    totals = values.get("totals", {})
    for name, row in sorted(totals.items(), key=lambda item: item[0] == "all"):
        table.add_row(
            Text(name, style="bold" if name == "all" else ""),
            str(row["calls"]),
            str(row["failed_calls"]),
            str(row["input_tokens"]),
            str(row["output_tokens"]),
            f"{row['latency_ms'] / 1000:.1f}s",
        )
    return table


def render(console: Console, values: dict[str, Any]) -> None:
    """Transcript, how the debate ended, the verdict, the baselines and the token totals."""
    if values.get("transcript"):
        console.print(_transcript(values))
    if stopped := values.get("stopped"):
        reason = STOP_REASONS.get(stopped["reason"], stopped["reason"])
        console.print(
            f"[cyan]stopped after round {stopped['round']}:[/] {reason} ({stopped['note']})"
        )
    for failure in values.get("failures", []):
        console.print(
            Text.assemble((f"{failure['agent']} failed:", "red"), f" {failure['error'][:200]}")
        )
    console.print(_verdict(values))
    if comparison := values.get("comparison"):
        console.print(_comparison(comparison))
    console.print(_totals(values))


def team_branch(tree: Tree, values: dict[str, Any]) -> None:
    """A nested debate under its worker: its verdict."""
    verdict = values.get("verdict") or {}
    tree.add(
        Text(
            f"verdict: {verdict.get('winner', '-')} ({verdict.get('decided_by', '-')}, "
            f"{verdict.get('confidence', 0):.2f}) after {values.get('round', 0)} round(s)"
        )
    )


def watch(snapshot: Any) -> DebateProgress:
    """A debate read from its checkpoints: the rounds' turns so far, debaters arguing."""
    values = snapshot.values
    shown = DebateProgress(f"debate · round {values.get('round', 0)} of {values.get('rounds')}")
    for turn in values.get("transcript", []):
        kept = turn if turn["status"] == "ok" else {"error": turn.get("error")}
        shown.turns.setdefault(turn["round"], {})[turn["speaker"]] = kept
    shown.arguing = sum(1 for task in snapshot.tasks if task.name == "argue")
    if stopped := values.get("stopped"):
        reason = STOP_REASONS.get(stopped["reason"], stopped["reason"])
        shown.notes.append(f"stopped after round {stopped['round']}: {reason}")
    if verdict := values.get("verdict"):
        shown.notes.append(f"verdict: {verdict.get('winner')} ({verdict.get('decided_by')})")
    return shown


VIEW = PatternView(render=render, progress=progress, team_branch=team_branch, watch=watch)
