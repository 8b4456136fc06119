"""What the `mas` command line shows: one-line errors, live progress, interrupts and
results (each pattern's own view from its spec, else JSON and a node table)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import psycopg
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from mas.cli.backend import Pending
from mas.costs import estimate_cost
from mas.errors import InputError, MasError
from mas.runner import RunResult
from mas.secrets import redact
from mas.settings import get_settings
from mas_graphs.checkpoints.errors import CheckpointError
from mas_graphs.state.pattern import PATTERNS, PatternView, RunEvent

# A CLI speaks in one-line errors; library warnings (e.g. a pool retrying a dead
# server) would bury them.
logging.basicConfig(level=logging.ERROR, format="%(message)s")
logging.getLogger("psycopg").setLevel(logging.CRITICAL)

console = Console()
errors = Console(stderr=True)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn every expected failure into one red line and a non-zero exit. Messages can
    quote a connection string (psycopg does), so passwords are redacted first."""
    try:
        yield
    except (MasError, CheckpointError) as error:
        fail(str(error))
    except psycopg.OperationalError as error:
        reason = str(error).splitlines()[0]
        fail(
            f"lost the connection to PostgreSQL ({reason}); "
            "checkpoints already written are kept: `mas resume` continues once it is back"
        )
    except psycopg.ProgrammingError as error:
        # psycopg raises this for a connection string it cannot parse.
        fail(f"cannot use the PostgreSQL connection string: {str(error).splitlines()[0]}")
    except KeyboardInterrupt:
        errors.print("[yellow]stopped; the thread's checkpoints are kept (see `mas threads`)[/]")
        raise typer.Exit(130) from None


def fail(message: str) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(redact(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(1) from None


def parse_json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{option} is not valid JSON: {error.msg} at char {error.pos}") from None


# --- live progress ---------------------------------------------------------------------


class ProgressView:
    """A live table of the graph's nodes: running ones spin, finished ones tick."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []

    def on_event(self, event: RunEvent) -> None:
        now = time.perf_counter()
        if event.kind == "node_start":
            self.rows[event.task_id] = {
                # a nested run's nodes under the workers they run for, indented by depth
                "node": "  " * len(event.path) + " › ".join((*event.path, event.node)),
                "start": now,
                "end": None,
                "state": "running",
            }
        elif event.kind in ("node_end", "node_error") and event.task_id in self.rows:
            row = self.rows[event.task_id]
            row["end"] = now
            row["state"] = (
                "error"
                if event.kind == "node_error"
                else ("waiting" if event.data.get("interrupted") else "done")
            )
            if event.kind == "node_error":
                row["error"] = event.data.get("error", "")
        elif event.kind == "progress":
            where = f"{' › '.join(event.path)}: " if event.path else ""
            self.notes.append(where + ", ".join(f"{k}={v}" for k, v in event.data.items()))

    def __rich__(self) -> Panel:
        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("")
        table.add_column("node")
        table.add_column("time", justify="right")
        table.add_column("")
        now = time.perf_counter()
        for row in list(self.rows.values())[-20:]:
            icon: Any = {
                "running": Spinner("dots"),
                "done": Text("✓", style="green"),
                "waiting": Text("⏸", style="yellow"),
                "error": Text("✗", style="red"),
            }[row["state"]]
            elapsed = (row["end"] or now) - row["start"]
            table.add_row(
                icon, row["node"], f"{elapsed:.1f}s", Text(row.get("error", "")[:80], style="red")
            )
        notes = [Text(note, style="dim") for note in self.notes[-5:]]
        return Panel(Group(table, *notes), title=self.title, border_style="blue")


def pattern_view(pattern: str | None) -> PatternView | None:
    """How the pattern shows itself, if it is registered (a thread's may be a plugin's
    no longer installed) and says."""
    return PATTERNS.get(pattern).view if pattern and pattern in PATTERNS else None


def render_result(pattern: str, values: dict[str, Any]) -> None:
    view = pattern_view(pattern)
    if view is None:
        console.print_json(data=values, default=str)
    else:
        view.render(console, values)
    if values.get("usage"):
        console.print(cost_table(values))


def cost_table(values: dict[str, Any]) -> Table:
    """Tokens and estimated cost per model (prices from MAS_MODEL_PRICES), and the run's
    token budget where its input set one."""
    estimate = estimate_cost(values["usage"], get_settings().model_prices)
    budget = values.get("max_tokens_total")
    table = Table(
        title="tokens and estimated cost",
        caption=f"{estimate.tokens:,} tokens" + (f" of a {budget:,} budget" if budget else ""),
    )
    for column in ("model", "calls", "input tokens", "output tokens", "est. cost"):
        table.add_column(column, justify="left" if column == "model" else "right")
    table.columns[0].overflow = "fold"

    def money(cost: float | None) -> str:
        return "no price set" if cost is None else f"{cost:,.4f}"

    for row in estimate.rows:
        table.add_row(
            row.model,
            str(row.calls),
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            money(row.cost),
        )
    if len(estimate.rows) > 1:
        table.add_row(
            Text("all", style="bold"),
            str(sum(row.calls for row in estimate.rows)),
            f"{sum(row.input_tokens for row in estimate.rows):,}",
            f"{sum(row.output_tokens for row in estimate.rows):,}",
            money(estimate.cost),
        )
    return table


def follow_live(title: str, run: Pending, *, as_json: bool = False) -> tuple[str, RunResult]:
    """Run `run` under a live view (its pattern's own, else the node table); with --json
    the view goes to stderr, keeping stdout JSON."""
    shown = pattern_view(run.pattern)
    view = (shown.progress(title) if shown and shown.progress else None) or ProgressView(title)
    target = errors if as_json else console
    try:
        with Live(view, console=target, refresh_per_second=8):
            return run.follow(view.on_event)
    finally:
        if not target.is_terminal:  # a redirected view's last frame ends without a newline
            target.line()


# --- results -----------------------------------------------------------------------


def answer_shape(node: dict[str, Any], defs: dict[str, Any]) -> Any:
    """An example of an interrupt's answer for a person to fill in: `<placeholders>` are
    right for people (agents get their schemas described in words instead)."""
    if "$ref" in node:
        return answer_shape(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in node:
        return " | ".join(str(v) for v in node["enum"])
    if "anyOf" in node:
        return answer_shape(next(o for o in node["anyOf"] if o.get("type") != "null"), defs)
    kind = node.get("type")
    if kind == "object":
        return {name: answer_shape(sub, defs) for name, sub in node.get("properties", {}).items()}
    if kind == "array":
        return [answer_shape(node.get("items", {}), defs)]
    if kind == "boolean":
        return "<true | false>"
    return f"<{node.get('description') or kind or 'value'}>"


def show_interrupt(pending: Any) -> None:
    """What the run is waiting for, and the shape of the answer it takes."""
    payload = dict(pending) if isinstance(pending, dict) else {"value": pending}
    schema = payload.pop("answer", None)
    body = [Text(json.dumps(payload, indent=2, default=str)[:3_000])]
    if isinstance(schema, dict):
        shape = answer_shape(schema, schema.get("$defs", {}))
        body.append(Text(f"answer shape: {json.dumps(shape)}", style="bold"))
    console.print(Panel(Group(*body), title="waiting for an answer", border_style="yellow"))


def report(pattern: str, result: RunResult, as_json: bool) -> None:
    if as_json:
        payload = {
            "thread_id": result.thread_id,
            "status": result.status,
            "stopped": result.stopped,
            "interrupts": result.interrupts,
            "values": dict(result),
        }
        typer.echo(json.dumps(payload, default=str, ensure_ascii=False))
        return
    if result.status == "interrupted":
        for pending in result.interrupts:
            show_interrupt(pending)
        console.print(f"resume with: mas resume {result.thread_id} --answer '<JSON>'")
        return
    render_result(pattern, dict(result))
    if result.status == "over_budget":
        console.print(f"[red]stopped over budget:[/] {result.stopped}")
        console.print(f"[dim]thread {result.thread_id}: the results above are what it finished[/]")
        return
    console.print(f"[dim]thread {result.thread_id} done[/]")


def print_nested(runs: list[dict[str, Any]], depth: int = 1) -> None:
    for run in runs:
        console.print(
            f"{'  ' * depth}nested run {run['namespace']} · step {run['step']}"
            + (f" · next: {', '.join(run['next'])}" if run["next"] else "")
        )
        print_nested(run["nested"], depth + 1)
