"""The console's web app (Starlette, server-rendered with Jinja2): `mas ui` serves it.

Reads go through LangGraph's own saver (state, history) and the threads' registry; an
answer given in the browser is checked against the interrupt's answer model, exactly as
`mas resume --answer` checks it, then resumes the run in this process, in the
background: the page follows it from its checkpoints like any other run. What a request
carries is data: an id looked up, a form read by the answer's schema; nothing in it
names a module, a file or a prompt.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk import get_client
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mas import runner
from mas.console import data
from mas.console.access import COOKIE, Served, session_token, user_by_key, viewer, visible
from mas.console.drawing import graph_svg, scenarios_chart
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
from mas_graphs.state.pattern import PATTERNS, compiled

logger = logging.getLogger(__name__)
RESUMABLE = ("failed", "over_budget")
HERE = Path(__file__).parent
THREADS_SHOWN = 500
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)
templates.filters["status_label"] = data.status_label
Graph = CompiledStateGraph[Any, Any, Any, Any]
Endpoint = Callable[[Request], Awaitable[Response]]


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


def console_app(dsn: str | None = None, *, served: Served | None = None) -> Starlette:
    """The console on the project's PostgreSQL (`dsn`, else the settings' database);
    `served`: mounted in `mas serve`, for the server's users (see `access`)."""
    state = ConsoleState(dsn)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with open_saver(resolve_dsn(dsn)) as saver:
            state.saver = saver
            yield
            for run in state.runs:
                run.join(timeout=0.1)  # a run cut short here resumes with `mas resume`

    def page(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        body = templates.get_template(name).render(base=base, served=served, **values)
        return HTMLResponse(body, status_code=status_code)

    def to(request: Request, path: str, **query: str) -> RedirectResponse:
        """A 303 to `path` under the console's mount, with `query` (e.g. a problem)."""
        suffix = f"?{urlencode(query)}" if query else ""
        return RedirectResponse(f"{request.scope.get('root_path', '')}{path}{suffix}", 303)

    def guarded(endpoint: Endpoint) -> Endpoint:
        """`endpoint` for a known viewer only (`request.state.user`); others log in."""

        @functools.wraps(endpoint)
        async def checked(request: Request) -> Response:
            user = viewer(request, served)
            if user is None:
                if request.method == "GET" and "fragment" not in request.query_params:
                    return to(request, "/login")
                return page(request, "login.html", 401, problem="log in with your API key")
            request.state.user = user
            return await endpoint(request)

        return checked

    def shown_to(request: Request, record: ThreadRecord | None) -> ThreadRecord | None:
        """The thread, if this viewer may see it (another user's reads as unknown)."""
        if record is None or not visible(record, served, request.state.user):
            return None
        return record

    def records(request: Request) -> list[ThreadRecord]:
        with connection(state.saver) as conn:
            found = list_threads(conn, limit=THREADS_SHOWN)
        return [r for r in found if visible(r, served, request.state.user)]

    @contextmanager
    def opened(request: Request, thread_id: str) -> Iterator[tuple[ThreadRecord, Graph]]:
        with connection(state.saver) as conn:
            record = shown_to(request, get_thread(conn, thread_id))
        if record is None:
            raise LookupError(thread_id)
        yield record, get_pattern(record.pattern).build(state.saver, record.options)

    def missing(request: Request, what: str) -> HTMLResponse:
        return page(request, "missing.html", 404, thread_id=what)

    async def threads(request: Request) -> Response:
        status = request.query_params.get("status", "")
        pattern = request.query_params.get("pattern", "")
        query = request.query_params.get("q", "")[:200]
        found = await asyncio.to_thread(records, request)
        shown = [r for r in found if data.matches(r, status=status, pattern=pattern, query=query)]
        now = datetime.now(UTC)
        template = "threads_rows.html" if "fragment" in request.query_params else "threads.html"
        return page(
            request,
            template,
            threads=shown,
            ages={r.thread_id: data.age(r.updated_at, now) for r in shown},
            total=len(found),
            status=status,
            pattern=pattern,
            query=query,
            statuses=data.STATUS_LABELS,
            patterns=known_patterns(),
            user=request.state.user,
        )

    def run_values(request: Request, thread_id: str) -> dict[str, Any]:
        config: Any = {"configurable": {"thread_id": thread_id}}
        with opened(request, thread_id) as (record, graph):
            shown = data.run_page(record, graph, config)
            drawing = graph_svg(graph.get_graph(), ran=shown.ran, current=set(shown.next))
            nested = graph.get_state(config, subgraphs=True) if shown.next else None
        return {
            "teams": [team_view(team) for team in data.teams_of(shown.values, nested)],
            "chart": scenarios_chart(shown.values.get("timeline", [])),
            "run": shown,
            "record": shown.record,
            "graph": drawing,
            "view": pattern_view_html(record.pattern, shown.values),
            "cost": estimate_cost(shown.values.get("usage", []), get_settings().model_prices),
            "forms": {p.interrupt_id: form_fields(p.schema or {}) for p in shown.pending},
            "problem": request.query_params.get("problem", ""),
        }

    async def run(request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        try:
            values = await asyncio.to_thread(run_values, request, thread_id)
        except LookupError:
            return missing(request, thread_id)
        template = "run_live.html" if "fragment" in request.query_params else "run.html"
        return page(request, template, **values)

    def checkpoint_values(request: Request, thread_id: str, checkpoint_id: str) -> dict[str, Any]:
        against = request.query_params.get("against", "")
        with opened(request, thread_id) as (record, graph):
            snapshot = data.state_at(graph, thread_id, checkpoint_id)
            other = data.state_at(graph, thread_id, against) if against else None
        found = snapshot.config["configurable"].get("checkpoint_id")
        if found != checkpoint_id or not snapshot.metadata:
            raise LookupError(checkpoint_id)
        return {
            "problem": request.query_params.get("problem", ""),
            "input_fields": sorted(get_pattern(record.pattern).spec.input.model_fields),
            "record": record,
            "checkpoint_id": checkpoint_id,
            "snapshot": snapshot,
            "state": data.as_text(snapshot.values),
            "against": against,
            "changes": data.diff(other.values, snapshot.values) if other is not None else [],
        }

    async def checkpoint(request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        checkpoint_id = request.path_params["checkpoint_id"]
        try:
            values = await asyncio.to_thread(checkpoint_values, request, thread_id, checkpoint_id)
        except LookupError:
            return missing(request, f"{thread_id} checkpoint {checkpoint_id}")
        return page(request, "checkpoint.html", **values)

    def pending_questions(request: Request) -> list[data.Pending]:
        pending = []
        for record in records(request):
            if record.status == "interrupted":
                graph = get_pattern(record.pattern).build(state.saver, record.options)
                snapshot = graph.get_state({"configurable": {"thread_id": record.thread_id}})
                pending += data.pending_of(record, snapshot)
        return pending

    async def inbox(request: Request) -> Response:
        pending = await asyncio.to_thread(pending_questions, request)
        return page(
            request,
            "inbox.html",
            pending=pending,
            forms={p.interrupt_id: form_fields(p.schema or {}) for p in pending},
        )

    async def answer(request: Request) -> Response:
        """Answer the question a run waits on, checked as `mas resume --answer` checks it;
        this machine's run resumes here, a served one through the server's API."""
        thread_id = request.path_params["thread_id"]
        form = {k: str(v) for k, v in (await request.form()).items()}
        back = f"/threads/{thread_id}"
        try:
            with opened(request, thread_id) as (record, graph):
                snapshot = graph.get_state({"configurable": {"thread_id": thread_id}})
        except LookupError:
            return missing(request, thread_id)
        pending = data.pending_of(record, snapshot)
        if not pending or pending[0].interrupt_id != form.get("interrupt_id"):
            return to(request, back, problem="that question is no longer the one the run waits on")
        first = pending[0]
        try:
            given = answer_from_form(first.schema or {}, form)
            checked = get_pattern(record.pattern).answer(snapshot.interrupts[0].value, given)
            if served is None:
                state.start(
                    f"resume {thread_id}",
                    lambda: runner.resume(thread_id, answer=checked, dsn=state.dsn),
                )
            else:
                await answer_served(served, request.state.user, record, first, checked)
        except MasError as error:
            return to(request, back, problem=str(error))
        return to(request, back)

    async def resume(request: Request) -> Response:
        """Continue a failed or stopped run of this machine (as `mas resume` does)."""
        thread_id = request.path_params["thread_id"]
        with connection(state.saver) as conn:
            record = shown_to(request, get_thread(conn, thread_id))
        if record is None:
            return missing(request, thread_id)
        back = f"/threads/{thread_id}"
        if record.served_by != "mas" or record.status not in RESUMABLE:
            label = data.status_label(record.status)
            return to(request, back, problem=f"a {label} run is not resumed here")
        state.start(f"resume {thread_id}", lambda: runner.resume(thread_id, dsn=state.dsn))
        return to(request, back)

    async def fork(request: Request) -> Response:
        """A new thread from a checkpoint, an input field edited (both checked here, what
        is wrong shown on the checkpoint's page), then run in the background."""
        thread_id = request.path_params["thread_id"]
        form = {k: str(v) for k, v in (await request.form()).items()}
        checkpoint_id = form.get("checkpoint_id", "")
        back = f"/threads/{thread_id}/checkpoints/{checkpoint_id}"
        with connection(state.saver) as conn:
            record = shown_to(request, get_thread(conn, thread_id))
        if record is None:
            return missing(request, thread_id)
        try:
            if record.served_by != "mas":
                raise InputError("a served thread is forked through its server's API")
            update = edit_from_form(form)
            async with Runner(state.dsn) as forking:
                target = await forking.start_fork(thread_id, checkpoint_id, update=update)
        except MasError as error:
            return to(request, back, problem=str(error))
        state.start(f"run {target}", lambda: runner.resume(target, dsn=state.dsn))
        return to(request, f"/threads/{target}")

    async def login(request: Request) -> Response:
        """The login form; a key that is a user's sets the session cookie."""
        if served is None or not served.keys:
            return to(request, "/")
        if request.method == "GET":
            return page(request, "login.html")
        key = str((await request.form()).get("key", ""))
        user = user_by_key(served.keys, key)
        if user is None:
            return page(request, "login.html", 401, problem="unknown API key")
        response = to(request, "/")
        response.set_cookie(
            COOKIE,
            session_token(user, key),
            httponly=True,
            samesite="strict",
            path=request.scope.get("root_path", "") or "/",
        )
        return response

    async def logout(request: Request) -> Response:
        response = to(request, "/login")
        response.delete_cookie(COOKIE, path=request.scope.get("root_path", "") or "/")
        return response

    return Starlette(
        routes=[
            Route("/", guarded(threads)),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/inbox", guarded(inbox)),
            Route("/threads/{thread_id}", guarded(run)),
            Route("/threads/{thread_id}/answer", guarded(answer), methods=["POST"]),
            Route("/threads/{thread_id}/resume", guarded(resume), methods=["POST"]),
            Route("/threads/{thread_id}/fork", guarded(fork), methods=["POST"]),
            Route("/threads/{thread_id}/checkpoints/{checkpoint_id}", guarded(checkpoint)),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        lifespan=lifespan,
    )


async def answer_served(
    served: Served, user: str, record: ThreadRecord, pending: data.Pending, answer: Any
) -> None:
    """Resume a served thread through the server's own API, as its user: the server
    checks the answer again and leases the run to one of its workers."""
    key = served.keys.get(user)
    headers = {"Authorization": f"Bearer {key}"} if key else None
    client = get_client(url=served.api_url, api_key=None, headers=headers)
    try:
        await client.runs.create(
            record.thread_id,
            record.pattern,
            command={"resume": {pending.interrupt_id: answer}},
        )
    except httpx.HTTPStatusError as error:
        raise InputError(f"the server refused the answer: {error.response.text[:300]}") from None


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


def team_view(team: data.Team) -> dict[str, Any]:
    """A team for its expandable section: its pattern's graph (all done once it finished,
    its next nodes while it runs) and its own view."""
    known = team.pattern in known_patterns()
    drawing = ""
    if known:
        nodes = compiled(PATTERNS.get(team.pattern)).get_graph()
        finished = set(nodes.nodes) if team.status != "running" else set()
        drawing = graph_svg(nodes, ran=finished, current=set(team.next))
    return {
        "team": team,
        "graph": drawing,
        "view": pattern_view_html(team.pattern, team.values) if known else "",
    }


def pattern_view_html(pattern: str, values: dict[str, Any]) -> str:
    """The pattern's own terminal view (the one `mas show` prints), as HTML."""
    spec = PATTERNS.get(pattern)
    console = Console(record=True, width=110, file=io.StringIO(), color_system="truecolor")
    if spec.view is None or not values:
        return ""
    spec.view.render(console, values)
    return console.export_html(inline_styles=True, code_format='<pre class="view">{code}</pre>')
