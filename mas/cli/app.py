"""The `mas` command line: run, resume, inspect and administer pattern threads, on this
machine's database or a running server (`--server`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from mas import runner
from mas.cli import remote
from mas.cli.backend import Backend, LocalBackend, Pending, RemoteBackend
from mas.cli.display import (
    clear_errors,
    console,
    fail,
    follow_live,
    parse_json,
    print_nested,
    render_result,
    report,
    show_interrupt,
)
from mas.cli.watch import follow as watch_thread
from mas.costs import estimate_cost
from mas.database import resolve_dsn
from mas.errors import InputError, RunFailedError, UnknownThreadError
from mas.patterns import delta_channels, get_pattern, known_patterns
from mas.providers.tools import configured_servers, load_tools, registered_tools
from mas.server.launch import (
    CONSOLE_PATH,
    aegra_config,
    check_exposure,
    run_server,
    server_environment,
    server_python,
)
from mas.server.threads import get_thread
from mas.settings import HTTP_URL, get_settings
from mas_graphs.checkpoints.admin import delete_thread, prune_thread
from mas_graphs.checkpoints.locks import thread_lock
from mas_graphs.checkpoints.savers import connection, open_saver
from mas_graphs.state.pattern import PATTERNS, compiled

app = typer.Typer(
    name="mas",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="ollama:<model>, llamacpp[:<path.gguf>] (default: MAS_MODEL)"),
]
DsnOption = Annotated[
    str | None, typer.Option("--dsn", help="PostgreSQL URL (default: DATABASE_URL, else embedded)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the final state as JSON.")]


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


def backend(ctx: typer.Context, dsn: str | None) -> Backend:
    """The server `--server` names, else this machine's database."""
    server: remote.Server | None = ctx.find_root().obj
    return RemoteBackend(server) if server is not None else LocalBackend(dsn)


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
        # Input and models are checked before the live view starts.
        run = backend(ctx, dsn).start(pattern, data, thread_id=thread_id, model=model)
        shown, result = follow_live(pattern, run, as_json=as_json)
        report(shown, result, as_json)


@app.command()
def resume(
    ctx: typer.Context,
    thread_id: str,
    answer: Annotated[
        str | None, typer.Option("--answer", help="JSON answer to a pending interrupt.")
    ] = None,
    restart: Annotated[
        list[str] | None,
        typer.Option(
            "--restart",
            help="On a finished run: run this part again (a failed or timed-out scenario); "
            "repeat for more.",
        ),
    ] = None,
    model: ModelOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Continue THREAD_ID after a crash, a failure, or with an answer to its interrupt;
    or run failed parts of a finished run again (--restart)."""
    with clear_errors():
        if restart and answer is not None:
            raise InputError("--restart starts a new run of a finished thread: give no --answer")
        data = parse_json(answer, "--answer") if answer is not None else None
        run = backend(ctx, dsn).resume(thread_id, answer=data, model=model, restart=restart or [])
        shown, result = follow_live(thread_id, run, as_json=as_json)
        report(shown, result, as_json)


@app.command()
def fork(
    ctx: typer.Context,
    thread_id: str,
    checkpoint_id: Annotated[str, typer.Argument(help="From `mas show THREAD_ID --history`.")],
    edits: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="FIELD=JSON: change one of the run's input fields in the fork "
            "(e.g. --set 'max_tokens_total=8000'); repeat for more.",
        ),
    ] = None,
    new_thread_id: Annotated[str | None, typer.Option("--thread-id")] = None,
    model: ModelOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a new thread from one of THREAD_ID's checkpoints: what it had done by then,
    with --set changing input fields; THREAD_ID is left as it is."""
    with clear_errors():
        if ctx.find_root().obj is not None:
            raise InputError("mas fork works on this machine's threads, not a server's")
        update = dict(parse_edit(edit) for edit in edits or [])
        with open_saver(resolve_dsn(dsn)) as saver, connection(saver) as conn:
            source = get_thread(conn, thread_id)
        if source is None:
            raise UnknownThreadError(thread_id)
        prepared = Pending(
            source.pattern,  # a fork is a run of its source's pattern: its live view
            lambda on_event: (
                source.pattern,
                runner.fork(
                    thread_id,
                    checkpoint_id,
                    update=update,
                    new_thread_id=new_thread_id,
                    model=model,
                    dsn=dsn,
                    on_event=on_event,
                ),
            ),
        )
        shown, result = follow_live(f"fork of {thread_id}", prepared, as_json=as_json)
        report(shown, result, as_json)


def parse_edit(edit: str) -> tuple[str, Any]:
    field, equals, value = edit.partition("=")
    if not equals or not field.strip():
        raise InputError(f"--set takes FIELD=JSON, not {edit[:60]!r}")
    return field.strip(), parse_json(value, f"--set {field.strip()}")


@app.command()
def threads(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
    dsn: DsnOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the threads as JSON.")] = False,
) -> None:
    """List threads, newest first: the runner's and the server's."""
    with clear_errors():
        records = backend(ctx, dsn).threads(limit=limit)
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
    styles = {
        "done": "green",
        "running": "blue",
        "interrupted": "yellow",
        "over_budget": "magenta",
        "failed": "red",
    }
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
        shown = backend(ctx, dsn).state(thread_id, history=history)
    if as_json:
        cost = estimate_cost(shown["values"].get("usage", []), get_settings().model_prices)
        typer.echo(json.dumps({**shown, "cost": cost.summary()}, default=str, ensure_ascii=False))
        return
    runs = f" · runs {shown['runs']}" if shown.get("runs") else ""
    console.print(
        f"[bold]{thread_id}[/] {shown['pattern']} · {shown['status']}{runs}"
        + (f" · next: {', '.join(shown['next'])}" if shown["next"] else "")
    )
    if shown.get("error"):
        console.print(Text(str(shown["error"]), style="red"))
    print_nested(shown.get("nested", []))
    if shown["status"] in ("done", "over_budget"):  # over budget: what it finished
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
def ui(
    port: Annotated[int, typer.Option(help="The port on 127.0.0.1.", min=1, max=65535)] = 8765,
    dsn: DsnOption = None,
) -> None:
    """Open the run console in a browser: every thread, each run's graph, timeline and
    view, the inbox of questions for a person. Local only: it binds 127.0.0.1."""
    import uvicorn

    from mas.console import console_app

    with clear_errors():
        app_ = console_app(dsn)
        console.print(f"mas console on [bold]http://127.0.0.1:{port}[/] (Ctrl+C stops it)")
        uvicorn.run(app_, host="127.0.0.1", port=port, log_level="warning")


@app.command()
def watch(
    thread_id: str,
    every: Annotated[float, typer.Option(help="Seconds between looks.", min=0.05)] = 0.5,
    dsn: DsnOption = None,
) -> None:
    """Follow THREAD_ID while another process runs it (a `mas run`, a server worker),
    from its checkpoints; ends when the run ends."""
    with clear_errors():
        record, snapshot = watch_thread(thread_id, dsn=dsn, every=every)
        if record.status == "failed":
            hint = "" if "mas resume" in (record.error or "") else "; `mas resume` continues it"
            raise RunFailedError(f"thread {thread_id} failed: {record.error}{hint}")
    if snapshot.interrupts:
        for pending in snapshot.interrupts:
            show_interrupt(pending.value)
        console.print(f"resume with: mas resume {thread_id} --answer '<JSON>'")
    else:
        render_result(record.pattern, snapshot.values)


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
        f"serving {', '.join(known_patterns())} at http://{host}:{port} "
        f"({access}; {scale}; {workers} process{'es' if workers > 1 else ''}); "
        f"run console at http://{host}:{port}{CONSOLE_PATH}/"
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
