"""The console's web app (Starlette, server-rendered with Jinja2): `mas ui` serves it.

Reads go through LangGraph's own saver (state, history) and the threads' registry; an
answer given in the browser is checked against the interrupt's answer model, exactly as
`mas resume --answer` checks it, then resumes the run in this process, in the
background: the page follows it from its checkpoints like any other run. What a request
carries is data: an id looked up, a form read by the answer's schema; nothing in it
names a module, a file or a prompt.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from langgraph.graph.state import CompiledStateGraph
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mas import runner
from mas.console import data
from mas.console.drawing import graph_svg
from mas.console.forms import answer_from_form, form_fields
from mas.costs import estimate_cost
from mas.database import resolve_dsn
from mas.errors import InputError, MasError
from mas.patterns import get_pattern, known_patterns
from mas.runner import Runner
from mas.server.threads import get_thread, list_threads
from mas.settings import get_settings
from mas_graphs.checkpoints.admin import ThreadRecord
from mas_graphs.checkpoints.savers import connection, open_saver
from mas_graphs.state.pattern import PATTERNS

logger = logging.getLogger(__name__)
RESUMABLE = ("failed", "over_budget")
HERE = Path(__file__).parent
THREADS_SHOWN = 500
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)
templates.filters["status_label"] = data.status_label


class ConsoleState:
    """The app's open saver and the runs it started (resumes, forks), each in a thread
    of its own: a run outlives the request that started it."""

    def __init__(self, dsn: str | None) -> None:
        self.dsn = dsn
        self.saver: Any = None
        self.runs: list[BackgroundRun] = []

    def start(self, name: str, work: Callable[[], Any]) -> None:
        run = BackgroundRun(name, work)
        self.runs.append(run)
        run.start()


class BackgroundRun(threading.Thread):
    """A run the console started; its thread's row records how it ended."""

    def __init__(self, name: str, work: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self.work = work

    def run(self) -> None:
        try:
            self.work()
        except MasError as error:  # the thread records a run's own failure; the page shows it
            logger.warning("%s stopped: %s", self.name, error)


def console_app(dsn: str | None = None) -> Starlette:
    """The console on the project's PostgreSQL (`dsn`, else the settings' database)."""
    state = ConsoleState(dsn)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with open_saver(resolve_dsn(dsn)) as saver:
            state.saver = saver
            yield
            for run in state.runs:
                run.join(timeout=0.1)  # a run cut short here resumes with `mas resume`

    def page(name: str, **values: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**values))

    def threads(request: Request) -> HTMLResponse:
        status = request.query_params.get("status", "")
        pattern = request.query_params.get("pattern", "")
        query = request.query_params.get("q", "")[:200]
        with connection(state.saver) as conn:
            records = list_threads(conn, limit=THREADS_SHOWN)
        shown = [r for r in records if data.matches(r, status=status, pattern=pattern, query=query)]
        now = datetime.now(UTC)
        template = "threads_rows.html" if "fragment" in request.query_params else "threads.html"
        return page(
            template,
            threads=shown,
            ages={r.thread_id: data.age(r.updated_at, now) for r in shown},
            total=len(records),
            status=status,
            pattern=pattern,
            query=query,
            statuses=data.STATUS_LABELS,
            patterns=known_patterns(),
        )

    @contextmanager
    def opened(
        thread_id: str,
    ) -> Iterator[tuple[ThreadRecord, CompiledStateGraph[Any, Any, Any, Any]]]:
        with connection(state.saver) as conn:
            record = get_thread(conn, thread_id)
        if record is None:
            raise LookupError(thread_id)
        graph = get_pattern(record.pattern).build(state.saver, record.options)
        yield record, graph

    def run(request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        try:
            with opened(thread_id) as (record, graph):
                shown = data.run_page(record, graph, {"configurable": {"thread_id": thread_id}})
                drawing = graph_svg(graph.get_graph(), ran=shown.ran, current=set(shown.next))
        except LookupError:
            return page("missing.html", thread_id=thread_id)
        cost = estimate_cost(shown.values.get("usage", []), get_settings().model_prices)
        template = "run_live.html" if "fragment" in request.query_params else "run.html"
        return page(
            template,
            run=shown,
            record=shown.record,
            graph=drawing,
            view=pattern_view_html(record.pattern, shown.values),
            cost=cost,
            forms={p.interrupt_id: form_fields(p.schema or {}) for p in shown.pending},
            problem=request.query_params.get("problem", ""),
        )

    def checkpoint(request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        checkpoint_id = request.path_params["checkpoint_id"]
        against = request.query_params.get("against", "")
        try:
            with opened(thread_id) as (record, graph):
                snapshot = data.state_at(graph, thread_id, checkpoint_id)
                other = data.state_at(graph, thread_id, against) if against else None
        except LookupError:
            return page("missing.html", thread_id=thread_id)
        if (
            snapshot.config["configurable"].get("checkpoint_id") != checkpoint_id
            or not snapshot.metadata
        ):
            return page("missing.html", thread_id=f"{thread_id} checkpoint {checkpoint_id}")
        changes = data.diff(other.values, snapshot.values) if other is not None else []
        return page(
            "checkpoint.html",
            problem=request.query_params.get("problem", ""),
            input_fields=sorted(get_pattern(record.pattern).spec.input.model_fields),
            record=record,
            checkpoint_id=checkpoint_id,
            snapshot=snapshot,
            state=data.as_text(snapshot.values),
            against=against,
            changes=changes,
        )

    def inbox(request: Request) -> HTMLResponse:
        with connection(state.saver) as conn:
            waiting = [
                r for r in list_threads(conn, limit=THREADS_SHOWN) if r.status == "interrupted"
            ]
        pending = []
        for record in waiting:
            graph = get_pattern(record.pattern).build(state.saver, record.options)
            snapshot = graph.get_state({"configurable": {"thread_id": record.thread_id}})
            pending += data.pending_of(record, snapshot)
        return page(
            "inbox.html",
            pending=pending,
            forms={p.interrupt_id: form_fields(p.schema or {}) for p in pending},
        )

    async def answer(request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        form = {k: str(v) for k, v in (await request.form()).items()}
        back = f"/threads/{thread_id}"
        try:
            with opened(thread_id) as (record, graph):
                snapshot = graph.get_state({"configurable": {"thread_id": thread_id}})
        except LookupError:
            return page("missing.html", thread_id=thread_id)
        if record.served_by != "mas":
            return redirect(back, problem="a served thread is answered through its server")
        pending = data.pending_of(record, snapshot)
        if not pending or pending[0].interrupt_id != form.get("interrupt_id"):
            return redirect(back, problem="that question is no longer the one the run waits on")
        first = pending[0]
        try:
            given = answer_from_form(first.schema or {}, form)
            checked = get_pattern(record.pattern).answer(snapshot.interrupts[0].value, given)
        except MasError as error:
            return redirect(back, problem=str(error))
        state.start(
            f"resume {thread_id}",
            lambda: runner.resume(thread_id, answer=checked, dsn=state.dsn),
        )
        return RedirectResponse(back, status_code=303)

    async def resume(request: Request) -> Response:
        """Continue a failed or stopped run (as `mas resume` does)."""
        thread_id = request.path_params["thread_id"]
        with connection(state.saver) as conn:
            record = get_thread(conn, thread_id)
        if record is None:
            return page("missing.html", thread_id=thread_id)
        back = f"/threads/{thread_id}"
        if record.served_by != "mas" or record.status not in RESUMABLE:
            return redirect(
                back, problem=f"a {data.status_label(record.status)} run is not resumed here"
            )
        state.start(f"resume {thread_id}", lambda: runner.resume(thread_id, dsn=state.dsn))
        return RedirectResponse(back, status_code=303)

    async def fork(request: Request) -> Response:
        """A new thread from a checkpoint, an input field edited (both checked here, what
        is wrong shown on the checkpoint's page), then run in the background."""
        thread_id = request.path_params["thread_id"]
        form = {k: str(v) for k, v in (await request.form()).items()}
        checkpoint_id = form.get("checkpoint_id", "")
        back = f"/threads/{thread_id}/checkpoints/{checkpoint_id}"
        try:
            update = edit_from_form(form)
            async with Runner(state.dsn) as forking:
                target = await forking.start_fork(thread_id, checkpoint_id, update=update)
        except MasError as error:
            return redirect(back, problem=str(error))
        state.start(f"run {target}", lambda: runner.resume(target, dsn=state.dsn))
        return RedirectResponse(f"/threads/{target}", status_code=303)

    return Starlette(
        routes=[
            Route("/", threads),
            Route("/inbox", inbox),
            Route("/threads/{thread_id}", run),
            Route("/threads/{thread_id}/answer", answer, methods=["POST"]),
            Route("/threads/{thread_id}/resume", resume, methods=["POST"]),
            Route("/threads/{thread_id}/fork", fork, methods=["POST"]),
            Route("/threads/{thread_id}/checkpoints/{checkpoint_id}", checkpoint),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        lifespan=lifespan,
    )


def edit_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The fork form's one edit: an input field and its new value as JSON (none: a plain
    fork). Which fields may change, and to what, the runner checks."""
    field, value = form.get("field", "").strip(), form.get("value", "").strip()
    if not field:
        return {}
    try:
        return {field: json.loads(value)}
    except json.JSONDecodeError as error:
        raise InputError(f"{field}: the new value is not JSON ({error.msg})") from None


def redirect(to: str, *, problem: str) -> RedirectResponse:
    return RedirectResponse(f"{to}?{urlencode({'problem': problem})}", status_code=303)


def pattern_view_html(pattern: str, values: dict[str, Any]) -> str:
    """The pattern's own terminal view (the one `mas show` prints), as HTML."""
    spec = PATTERNS.get(pattern)
    console = Console(record=True, width=110, file=io.StringIO(), color_system="truecolor")
    if spec.view is None or not values:
        return ""
    spec.view.render(console, values)
    return console.export_html(inline_styles=True, code_format='<pre class="view">{code}</pre>')
