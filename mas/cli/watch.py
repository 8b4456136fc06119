"""`mas watch`: follow a run that another process (a `mas run`, a server worker) is
executing, from its checkpoints in PostgreSQL, until it ends."""

from __future__ import annotations

import time

from langgraph.types import StateSnapshot
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from mas.cli.backend import local_thread
from mas.cli.display import console, pattern_view
from mas.errors import UnknownThreadError
from mas.server.threads import get_thread
from mas_graphs.checkpoints.admin import ThreadRecord
from mas_graphs.checkpoints.savers import connection


def frame(record: ThreadRecord, snapshot: StateSnapshot) -> Group:
    """The run so far: its pattern's own picture, else the nodes under way."""
    step = (snapshot.metadata or {}).get("step")
    header = Text(f"{record.thread_id} · {record.pattern} · {record.status} · step {step}")
    view = pattern_view(record.pattern)
    if view is not None and view.watch is not None:
        return Group(header, view.watch(snapshot))
    table = Table("running", box=None)
    for task in snapshot.tasks:
        table.add_row(task.name)
    return Group(header, table)


def follow(thread_id: str, *, dsn: str | None, every: float) -> tuple[ThreadRecord, StateSnapshot]:
    """Redraw the run every `every` seconds while a process runs it; returns the thread's
    record and last snapshot once it is not running (the registry tells a run whose
    process died from one that runs, by the thread's lock)."""
    with local_thread(dsn, thread_id) as thread:
        record = thread.record
        try:
            with Live(console=console, refresh_per_second=4) as live:
                while True:
                    with connection(thread.saver) as conn:
                        found = get_thread(conn, thread_id)
                    if found is None:  # it was there: only `mas delete` removes it
                        raise UnknownThreadError(thread_id)
                    record = found
                    snapshot = thread.graph.get_state(thread.config, subgraphs=True)
                    live.update(frame(record, snapshot))
                    if record.status != "running":
                        return record, snapshot
                    time.sleep(every)
        finally:
            if not console.is_terminal:  # a redirected last frame ends without a newline
                console.line()
