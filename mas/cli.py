"""The `mas` command line: run, resume, inspect and administer pattern threads."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from langgraph.types import StateSnapshot
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from mas import remote, runner
from mas.database import resolve_dsn
from mas.errors import InputError, MasError, UnknownThreadError
from mas.patterns import delta_channels, get_pattern, known_patterns
from mas.runner import RunResult
from mas.secrets import redact
from mas.serve import (
    aegra_config,
    check_exposure,
    run_server,
    server_environment,
    server_python,
)
from mas.settings import HTTP_URL, get_settings
from mas.threads import get_thread, list_threads
from mas.tools import configured_servers, load_tools, registered_tools
from mas_graphs.checkpoints.admin import delete_thread, prune_thread
from mas_graphs.checkpoints.errors import CheckpointError
from mas_graphs.checkpoints.locks import thread_lock
from mas_graphs.checkpoints.savers import connection, open_saver
from mas_graphs.state.pattern import PATTERNS, PatternView, RunEvent, compiled

# A CLI speaks in one-line errors; library warnings (e.g. a pool retrying a dead
# server) would bury them.
logging.basicConfig(level=logging.ERROR, format="%(message)s")
logging.getLogger("psycopg").setLevel(logging.CRITICAL)

app = typer.Typer(
    name="mas",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="ollama:<model>, llamacpp[:<path.gguf>] (default: MAS_MODEL)"),
]
DsnOption = Annotated[
    str | None, typer.Option("--dsn", help="PostgreSQL URL (default: DATABASE_URL, else embedded)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the final state as JSON.")]


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


def with_progress(
    title: str,
    call: Callable[[Callable[[RunEvent], None]], RunResult],
    pattern: str | None = None,
    *,
    as_json: bool = False,
) -> RunResult:
    """Run `call` under a live view; with --json the view goes to stderr, keeping stdout JSON."""
    shown = pattern_view(pattern)
    view = (shown.progress(title) if shown and shown.progress else None) or ProgressView(title)
    target = errors if as_json else console
    try:
        with Live(view, console=target, refresh_per_second=8):
            return call(view.on_event)
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
    console.print(f"[dim]thread {result.thread_id} done[/]")


# --- commands --------------------------------------------------------------------------


@app.callback()
def main(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="MAS_SERVER_URL",
            help="Use a running server (mas serve, langgraph dev) instead of the database.",
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="MAS_API_KEY", help="The server's API key.")
    ] = None,
) -> None:
    """Multi-agent workflow patterns as durable LangGraph graphs."""
    with clear_errors():
        get_settings()  # a bad variable is one line naming it, whatever the command
    if server and not HTTP_URL.match(server):
        fail(f"--server (MAS_SERVER_URL) {server!r}: expected an http:// or https:// URL")
    ctx.obj = remote.Server(server.rstrip("/"), api_key) if server else None


def remote_server(ctx: typer.Context) -> remote.Server | None:
    """The server `--server` names, if the command should use one."""
    server: remote.Server | None = ctx.find_root().obj
    return server


@app.command()
def run(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help="A registered pattern (see `mas patterns`).")],
    input_json: Annotated[str | None, typer.Option("--input", help="The input as JSON.")] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input-file", help="Read the input JSON from a file.")
    ] = None,
    thread_id: Annotated[str | None, typer.Option("--thread-id")] = None,
    model: ModelOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a run of PATTERN and show its progress live."""
    with clear_errors():
        if (input_json is None) == (input_file is None):
            raise InputError("give the input with exactly one of --input JSON or --input-file PATH")
        text = input_json if input_json is not None else input_file.read_text()  # type: ignore[union-attr]
        data = parse_json(text, "--input")
        if (server := remote_server(ctx)) is not None:
            # Checked here for a quick one-line error; the server checks it again.
            state_input, options = get_pattern(pattern).parse(data)
            if given := sorted(set(options) & set(data)):
                raise InputError(f"{', '.join(given)}: build options are the server's to set")
            result = with_progress(
                pattern,
                lambda on_event: remote.run(
                    server, pattern, state_input, thread_id=thread_id, on_event=on_event
                ),
                pattern,
                as_json=as_json,
            )
            report(pattern, result, as_json)
            return
        # Validate input and models before the live view starts.
        prepared = runner.prepare_run(pattern, data, thread_id=thread_id, model=model)
        result = with_progress(
            pattern,
            lambda on_event: runner.start(prepared, dsn=dsn, on_event=on_event),
            pattern,
            as_json=as_json,
        )
        report(pattern, result, as_json)


@app.command()
def resume(
    ctx: typer.Context,
    thread_id: str,
    answer: Annotated[
        str | None, typer.Option("--answer", help="JSON answer to a pending interrupt.")
    ] = None,
    model: ModelOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Continue THREAD_ID after a crash, a failure, or with an answer to its interrupt."""
    with clear_errors():
        data = parse_json(answer, "--answer") if answer is not None else None
        if (server := remote_server(ctx)) is not None:
            outcome: list[str] = []

            def follow(on_event: Callable[[RunEvent], None]) -> RunResult:
                pattern, result = remote.resume(server, thread_id, answer=data, on_event=on_event)
                outcome.append(pattern)
                return result

            result = with_progress(thread_id, follow, as_json=as_json)
            report(outcome[0], result, as_json)
            return
        with open_saver(resolve_dsn(dsn)) as saver, connection(saver) as conn:
            record = get_thread(conn, thread_id)
        if record is None:
            raise UnknownThreadError(thread_id)
        result = with_progress(
            thread_id,
            lambda on_event: runner.resume(
                thread_id, answer=data, model=model, dsn=dsn, on_event=on_event
            ),
            record.pattern,
            as_json=as_json,
        )
        report(record.pattern, result, as_json)


@app.command()
def threads(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
    dsn: DsnOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the threads as JSON.")] = False,
) -> None:
    """List threads, newest first: the runner's and the server's."""
    with clear_errors():
        if (server := remote_server(ctx)) is not None:
            records = remote.threads(server, limit=limit)
        else:
            with open_saver(resolve_dsn(dsn)) as saver, connection(saver) as conn:
                records = list_threads(conn, limit=limit)
    if as_json:
        rows = [{**dataclasses.asdict(r), "updated_at": r.updated_at.isoformat()} for r in records]
        typer.echo(json.dumps(rows, default=str, ensure_ascii=False))
        return
    table = Table(title=f"{len(records)} threads")
    # An id is never cut short: it is what `mas resume` and `mas show` take.
    width = max((len(r.thread_id) for r in records), default=9)
    table.add_column("thread id", no_wrap=True, min_width=width)
    for column in ("pattern", "status", "last step", "runs", "run by", "updated at"):
        table.add_column(column, no_wrap=True)
    table.add_column("note", overflow="fold")
    styles = {"done": "green", "running": "blue", "interrupted": "yellow", "failed": "red"}
    for r in records:
        by = "server" + (f" ({r.owner})" if r.owner else "") if r.served_by == "server" else "mas"
        table.add_row(
            r.thread_id,
            r.pattern,
            Text(r.status, style=styles[r.status]),
            "-" if r.last_step is None else str(r.last_step),
            str(r.runs),
            by,
            r.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            (r.error or "")[:60],
        )
    console.print(table)


def local_state(thread_id: str, *, history: bool, dsn: str | None) -> dict[str, Any]:
    """A thread's state from the database, as `mas show --json` prints it."""
    with open_saver(resolve_dsn(dsn)) as saver:
        with connection(saver) as conn:
            record = get_thread(conn, thread_id)
        if record is None:
            raise UnknownThreadError(thread_id)
        graph = get_pattern(record.pattern).build(saver, record.options)
        config: Any = {"configurable": {"thread_id": thread_id}}
        state = graph.get_state(config, subgraphs=True)
        steps = list(graph.get_state_history(config)) if history else []
    return {
        "thread_id": thread_id,
        "pattern": record.pattern,
        "status": record.status,
        "runs": record.runs,
        "error": record.error,
        "next": list(state.next),
        "values": state.values,
        "interrupts": [i.value for i in state.interrupts],
        "nested": nested_runs(state),
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


def print_nested(runs: list[dict[str, Any]], depth: int = 1) -> None:
    for run in runs:
        console.print(
            f"{'  ' * depth}nested run {run['namespace']} · step {run['step']}"
            + (f" · next: {', '.join(run['next'])}" if run["next"] else "")
        )
        print_nested(run["nested"], depth + 1)


@app.command()
def show(
    ctx: typer.Context,
    thread_id: str,
    history: Annotated[bool, typer.Option("--history", help="Also list every checkpoint.")] = False,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a thread's current state (and, with --history, its checkpoints)."""
    with clear_errors():
        if (server := remote_server(ctx)) is not None:
            shown = remote.state(server, thread_id, history=history)
        else:
            shown = local_state(thread_id, history=history, dsn=dsn)
    if as_json:
        typer.echo(json.dumps(shown, default=str, ensure_ascii=False))
        return
    runs = f" · runs {shown['runs']}" if shown.get("runs") else ""
    console.print(
        f"[bold]{thread_id}[/] {shown['pattern']} · {shown['status']}{runs}"
        + (f" · next: {', '.join(shown['next'])}" if shown["next"] else "")
    )
    if shown.get("error"):
        console.print(Text(str(shown["error"]), style="red"))
    print_nested(shown.get("nested", []))
    if shown["status"] == "done":
        render_result(shown["pattern"], shown["values"])
    else:
        console.print_json(data=shown["values"], default=str)
    if history:
        table = Table(title="history (newest first)")
        for column in ("step", "source", "next", "checkpoint id", "created at"):
            table.add_column(column)
        for step in shown["history"]:
            table.add_row(
                str(step["step"]),
                str(step["source"]),
                ", ".join(step["next"]),
                step["checkpoint_id"],
                str(step["created_at"]),
            )
        console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 2026,
    workers: Annotated[int, typer.Option(help="Server processes on this machine.", min=1)] = 1,
    dsn: DsnOption = None,
) -> None:
    """Serve every pattern over HTTP (Agent Protocol: LangGraph SDK, Studio) with Aegra."""
    with clear_errors():
        settings = get_settings()
        check_exposure(host, settings)
        url = resolve_dsn(dsn)
        python = server_python(settings, say=console.print)
        config = aegra_config(settings.data_dir / "server", with_auth=bool(settings.api_keys))
        env = server_environment(settings, dsn=url, host=host, port=port, config=config)
    access = "bearer API keys (MAS_API_KEYS)" if settings.api_keys else "no keys: this machine only"
    scale = "Redis: runs shared by every server" if settings.redis_url else "one machine, no Redis"
    console.print(
        f"serving supervisor, debate, scenarios, saga at http://{host}:{port} "
        f"({access}; {scale}; {workers} process{'es' if workers > 1 else ''})"
    )
    raise typer.Exit(run_server(python, env, workers=workers))


@app.command()
def graph(pattern: str) -> None:
    """Print PATTERN's graph as Mermaid."""
    with clear_errors():
        spec = get_pattern(pattern).spec
    typer.echo(compiled(spec).get_graph().draw_mermaid())


@app.command()
def patterns() -> None:
    """List the registered patterns: built in, and plugged in."""
    table = Table("pattern", "team worker", "description")
    for name in known_patterns():
        spec = PATTERNS.get(name)
        table.add_row(name, "yes" if spec.team else "no", spec.description)
    console.print(table)


@app.command()
def tools() -> None:
    """The tools workers may be allowed, built-in and from MCP servers, and each
    configured server's state."""
    with clear_errors():
        settings = get_settings()
        servers = configured_servers(settings)
        with console.status("asking the MCP servers for their tools"):
            status = load_tools(settings)
        table = Table("tool", "from", "what it does", title="tools")
        for info in registered_tools():
            table.add_row(info.name, info.source, info.description)
        console.print(table)
        if servers.servers:
            listing = Table("server", "transport", "state", title="MCP servers")
            for name, server in servers.servers.items():
                state = status[name]
                style = "green" if state.startswith("up") else "red"
                listing.add_row(name, server.transport, Text(state, style=style))
            console.print(listing)


@app.command()
def delete(thread_id: str, dsn: DsnOption = None) -> None:
    """Delete a thread and all its checkpoints."""
    with clear_errors(), open_saver(url := resolve_dsn(dsn)) as saver:
        with connection(saver) as conn:
            if get_thread(conn, thread_id) is None:
                raise UnknownThreadError(thread_id)
        with thread_lock(url, thread_id), connection(saver) as conn:
            delete_thread(conn, thread_id)
    console.print(f"deleted {thread_id}")


@app.command()
def prune(
    thread_id: str,
    keep: Annotated[int, typer.Option(help="How many newest checkpoints to keep.", min=1)] = 10,
    dsn: DsnOption = None,
) -> None:
    """Delete all but the newest KEEP checkpoints of a thread."""
    with clear_errors(), open_saver(url := resolve_dsn(dsn)) as saver:
        with connection(saver) as conn:
            if get_thread(conn, thread_id) is None:
                raise UnknownThreadError(thread_id)
        with thread_lock(url, thread_id), connection(saver) as conn:
            removed = prune_thread(conn, thread_id, keep=keep, delta_channels=delta_channels())
    console.print(f"pruned {removed} checkpoints of {thread_id}, kept the newest {keep}")
