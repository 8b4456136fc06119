"""Run and resume pattern graphs: the one place that wires settings, model,
checkpointer, lock, tracing and thread id together.

Every run streams: callers pass `on_event` to see nodes start and finish and the
graph's own progress events as they happen. Every superstep is checkpointed
before the next starts (`durability="sync"`), so a killed process loses at most
the tasks in flight, and finished tasks' writes are kept for the resume.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
import psycopg
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mas.blocking import blocking
from mas.database import resolve_dsn
from mas.errors import (
    InputError,
    ModelSpecError,
    ResumeAnswerError,
    RunFailedError,
    ServedThreadError,
    ThreadExistsError,
    ThreadFinishedError,
    UnknownThreadError,
)
from mas.patterns import Pattern, get_pattern
from mas.providers.models import make_model, model_from_input, ollama_unreachable, stored_model
from mas.providers.tools import aload_tools, load_tools
from mas.secrets import redact
from mas.server.threads import aget_thread
from mas.settings import Settings, get_settings
from mas.tracing import run_trace
from mas_graphs.checkpoints.admin import (
    ThreadRecord,
    aclaim_thread,
    afork_thread,
    arecord_run_end,
    arecord_run_start,
)
from mas_graphs.checkpoints.errors import LockLostError
from mas_graphs.checkpoints.locks import ThreadLocks
from mas_graphs.checkpoints.savers import aconnection, open_async_saver
from mas_graphs.nodes.context import AgentContext
from mas_graphs.nodes.limits import RunBudgetExceededError
from mas_graphs.state.pattern import RunEvent

T = TypeVar("T")
RunStatus = Literal["done", "interrupted", "over_budget", "failed"]
logger = logging.getLogger(__name__)
REGISTRY_TIMEOUT_S = 5.0  # don't hold up a failed run's error behind a dead database


OnEvent = Callable[[RunEvent], None]


class RunResult(dict[str, Any]):
    """The final state values, plus where the thread stands."""

    def __init__(
        self,
        values: dict[str, Any],
        *,
        thread_id: str,
        status: Literal["done", "interrupted", "over_budget"],
        interrupts: list[Any],
        stopped: str | None = None,
    ) -> None:
        super().__init__(values)
        self.thread_id = thread_id
        self.status = status
        self.interrupts = interrupts
        # why a run stopped before its end (its token budget), with what it finished kept
        self.stopped = stopped


def new_thread_id(pattern: str) -> str:
    return f"{pattern}-{uuid.uuid4().hex[:12]}"


def _model(
    model: BaseChatModel | str | None, settings: Settings
) -> tuple[BaseChatModel, str | None]:
    """The chat model and the spec to remember for resumes (None for a model object)."""
    if isinstance(model, BaseChatModel):
        return model, None
    spec = model or settings.model
    return make_model(spec, settings=settings), spec


class EventReader:
    """Turns a graph's stream (tasks and custom events, subgraphs included) into
    `RunEvent`s, naming each nested run by the worker it runs for: a worker's task
    announces its input (the worker's spec), and the nested run's namespace carries
    that task's id."""

    def __init__(self) -> None:
        self._workers: dict[str, str] = {}  # task id -> worker name

    def path(self, namespace: tuple[str, ...]) -> tuple[str, ...]:
        parts = (part.partition(":") for part in namespace)
        return tuple(self._workers.get(task_id, node) for node, _, task_id in parts)

    def events(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> list[RunEvent]:
        path = self.path(namespace)
        if mode == "custom":
            data = chunk if isinstance(chunk, dict) else {"value": chunk}
            return [RunEvent("progress", str(data.get("node", "")), data=data, path=path)]
        if mode != "tasks" or not isinstance(chunk, dict):
            return []
        name, task_id = str(chunk.get("name", "")), str(chunk.get("id", ""))
        if "input" in chunk:
            given = chunk["input"]
            worker = given.get("worker") if isinstance(given, dict) else None
            if isinstance(worker, dict) and "name" in worker:
                self._workers[task_id] = str(worker["name"])
            return [RunEvent("node_start", name, task_id, path=path)]
        if chunk.get("error"):
            error = {"error": str(chunk["error"])}
            return [RunEvent("node_error", name, task_id, error, path=path)]
        interrupted = {"interrupted": bool(chunk.get("interrupts"))}
        return [RunEvent("node_end", name, task_id, interrupted, path=path)]


def _failure(error: Exception, thread_id: str, settings: Settings) -> RunFailedError:
    """One line saying what stopped the run and how to continue it."""
    if isinstance(error, httpx.ConnectError):
        reason = str(ollama_unreachable(settings.ollama_host, error))
    elif isinstance(error, psycopg.OperationalError):
        reason = f"lost the connection to PostgreSQL ({str(error).splitlines()[0]})"
    elif isinstance(error, LockLostError):
        reason = str(error)
    else:
        reason = f"{type(error).__name__}: {' '.join(str(error).split())}"
    return RunFailedError(
        f"run failed: {reason}. Checkpoints written so far are kept; "
        f"continue with `mas resume {thread_id}`"
    )


def _picked_models(
    pattern: Pattern, values: dict[str, Any], settings: Settings
) -> dict[str, BaseChatModel]:
    """The models the input picks for its agents at every depth (a debate's judge, a
    worker's model, a team's), made up front so a bad choice fails before any work
    starts; one per distinct choice. They come from input (or, on resume, from the
    stored state), so only what `model_from_input` allows is made."""
    models: dict[str, BaseChatModel] = {}
    for pick in pattern.model_picks(values):
        if pick.choice in models:
            continue
        try:
            models[pick.choice] = model_from_input(pick.choice, settings=settings)
        except ModelSpecError as error:
            raise InputError(f"invalid {pattern.name} input: {pick.field}: {error}") from None
    return models


@dataclass(frozen=True)
class PreparedRun:
    """A new run whose input and models are validated: nothing has touched the database."""

    pattern: Pattern
    state_input: dict[str, Any]
    options: dict[str, Any]
    thread_id: str
    model: BaseChatModel
    model_spec: str | None
    picked_models: dict[str, BaseChatModel]


def prepare_run(
    pattern: str,
    input: dict[str, Any],
    *,
    thread_id: str | None = None,
    model: BaseChatModel | str | None = None,
) -> PreparedRun:
    """Validate a run's input and make its models; raises before any work starts."""
    spec = get_pattern(pattern)
    settings = get_settings()
    load_tools(settings)  # a worker's allow-list may name an MCP server's tools
    state_input, options = spec.parse(input)
    # The input's own model choices first: a bad one is the input's fault, and names it.
    picked_models = _picked_models(spec, state_input, settings)
    chat_model, model_spec = _model(model, settings)
    return PreparedRun(
        pattern=spec,
        state_input=state_input,
        options=options,
        thread_id=thread_id or new_thread_id(pattern),
        model=chat_model,
        model_spec=model_spec,
        picked_models=picked_models,
    )


async def aprepare_run(
    pattern: str,
    input: dict[str, Any],
    *,
    thread_id: str | None = None,
    model: BaseChatModel | str | None = None,
) -> PreparedRun:
    """`prepare_run` off the event loop: making a model may do I/O (an Ollama spec asks
    the server whether it has the model)."""
    return await asyncio.to_thread(prepare_run, pattern, input, thread_id=thread_id, model=model)


class Runner:
    """Runs and resumes threads on one connection pool and one lock connection.

    `mas.arun` / `mas.aresume` open one for a single call; a process that runs many
    threads (a service, a batch) keeps one open and runs them concurrently:

        async with Runner() as runner:
            results = await asyncio.gather(*(runner.run("supervisor", x) for x in inputs))

    `context` completes every run's context (e.g. `AgentContext(effect_hooks=...)`);
    what the runner sets per run (the model, the pool) wins.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool_size: int | None = None,
        context: AgentContext | None = None,
    ) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._context = context
        self._stack = AsyncExitStack()

    def _graph(
        self, pattern: Pattern, options: dict[str, Any]
    ) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The pattern's graph (compiled once per process) on this runner's saver."""
        return pattern.build(self.saver, options)

    async def __aenter__(self) -> Runner:
        settings = get_settings()
        url = resolve_dsn(self._dsn)
        self.saver = await self._stack.enter_async_context(
            open_async_saver(url, max_size=self._pool_size or settings.pool_size)
        )
        self._locks = ThreadLocks(url)
        try:
            await self._locks.open()
        except BaseException:
            await self._stack.aclose()  # the pool is open: close it, do not leak it
            raise
        self._stack.push_async_callback(self._locks.close)
        # No checkpoint is written for a thread whose lock this process lost.
        self.saver.lock_check = self._locks.holder
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def run(
        self,
        pattern: str,
        input: dict[str, Any],
        *,
        thread_id: str | None = None,
        model: BaseChatModel | str | None = None,
        on_event: OnEvent | None = None,
    ) -> RunResult:
        """Start a new run of `pattern` on `input`; returns its final state."""
        prepared = await aprepare_run(pattern, input, thread_id=thread_id, model=model)
        return await self.start(prepared, on_event=on_event)

    async def start(self, run: PreparedRun, *, on_event: OnEvent | None = None) -> RunResult:
        name, thread_id = run.pattern.name, run.thread_id
        async with self._locks.hold(thread_id):
            async with aconnection(self.saver) as conn:
                claimed = await aclaim_thread(conn, thread_id, name, run.model_spec, run.options)
                known = None if claimed else await aget_thread(conn, thread_id)
            if not claimed:
                # With the connection back in the pool: the saver takes one of its own, and
                # a pool may have only one (MAS_POOL_SIZE=1).
                await self._refuse_known(known, thread_id)
                async with aconnection(self.saver) as conn:
                    await arecord_run_start(conn, thread_id, name, run.model_spec, run.options)
            return await self._drive(
                self._graph(run.pattern, run.options),
                run.state_input,
                pattern=run.pattern,
                thread_id=thread_id,
                run_number=1,
                model=run.model,
                picked_models=run.picked_models,
                on_event=on_event,
            )

    async def _refuse_known(self, record: ThreadRecord | None, thread_id: str) -> None:
        """A new run's thread id must be new: not in the registry (`record`), the server's
        threads or the checkpoints."""
        config: Any = {"configurable": {"thread_id": thread_id}}
        if record is not None or await self.saver.aget_tuple(config) is not None:
            if record is not None and record.status == "done":
                raise ThreadFinishedError(thread_id)
            raise ThreadExistsError(thread_id)

    async def _own_thread(self, thread_id: str) -> ThreadRecord:
        """The registry's record of a thread this runner may run (not a served one)."""
        async with aconnection(self.saver) as conn:
            record = await aget_thread(conn, thread_id)
        if record is None:
            raise UnknownThreadError(thread_id)
        if record.served_by == "server":
            raise ServedThreadError(thread_id)
        return record

    async def start_fork(
        self,
        thread_id: str,
        checkpoint_id: str,
        *,
        update: dict[str, Any] | None = None,
        new_thread_id: str | None = None,
    ) -> str:
        """A new thread holding what `thread_id` had done by its checkpoint `checkpoint_id`
        (the source is left as it is), with `update` changing some of its input fields
        (checked like a run's input); returns its id. Nothing runs yet: `resume` runs it
        from that checkpoint's next step (`mas.fork` does both). The edits are stored
        with the copy (in the thread's row) and applied when it runs, before that step,
        so a fork survives a crash whole; the thread records where it came from
        (`forked_from`)."""
        record = await self._own_thread(thread_id)
        spec = get_pattern(record.pattern)
        source: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}
        }
        snapshot = await self._graph(spec, record.options).aget_state(source)
        if not snapshot.next:
            raise InputError(
                f"checkpoint {checkpoint_id} of {thread_id} has nothing left to run "
                "(unknown, or the run's end): fork from an earlier one"
            )
        edits = _checked_edits(spec, snapshot.values, update or {})
        target = new_thread_id or f"{thread_id}-fork-{uuid.uuid4().hex[:6]}"
        async with self._locks.hold(target), aconnection(self.saver) as conn:
            try:
                await afork_thread(conn, thread_id, checkpoint_id, target, edits)
            except (LookupError, FileExistsError) as error:
                raise InputError(str(error.args[0])) from None
        return target

    async def resume(
        self,
        thread_id: str,
        *,
        answer: Any = None,
        model: BaseChatModel | str | None = None,
        on_event: OnEvent | None = None,
        restart: list[str] | None = None,
    ) -> RunResult:
        """Continue a thread: after a crash or failure, or with `answer` to an interrupt;
        or, with `restart`, run those parts of a finished run again (a scenarios run's
        failed scenarios) as a new run of the thread."""
        settings = get_settings()
        await aload_tools(settings)  # the thread's workers may use an MCP server's tools
        async with self._locks.hold(thread_id):
            record = await self._own_thread(thread_id)
            spec = get_pattern(record.pattern)
            graph = self._graph(spec, record.options)
            state = await graph.aget_state({"configurable": {"thread_id": thread_id}})
            if restart:
                graph_input = _restart_input(spec, thread_id, state, restart)
            elif settled := _settled_status(state.interrupts, state.tasks, answer):
                # Killed after its last checkpoint but before the registry heard: the
                # checkpoint is the truth, so say so there before anything else.
                if record.status != settled:
                    await self._record_end(thread_id, settled, None)
                if settled == "done" and record.status != "done":
                    return RunResult(
                        state.values, thread_id=thread_id, status="done", interrupts=[]
                    )
            if not restart:
                graph_input = _resume_input(spec, thread_id, state.interrupts, state.tasks, answer)
            if record.fork_edits and not restart:
                # a fork's edits, before its next step (again, harmlessly, after a crash)
                resume = graph_input.resume if isinstance(graph_input, Command) else None
                graph_input = Command(update=record.fork_edits, resume=resume)
            # Making a model may do I/O (an Ollama spec asks the server): off the loop.
            if model is not None:
                chat_model, model_spec = await asyncio.to_thread(_model, model, settings)
            elif record.model_spec is None:
                raise ModelSpecError(
                    f"thread {thread_id} was started with a model object; pass model= to resume it"
                )
            else:
                chat_model = await asyncio.to_thread(stored_model, record.model_spec)
                model_spec = record.model_spec
            picked_models = await asyncio.to_thread(_picked_models, spec, state.values, settings)
            async with aconnection(self.saver) as conn:
                run_number = await arecord_run_start(
                    conn, thread_id, spec.name, model_spec, record.options
                )
            return await self._drive(
                graph,
                graph_input,
                pattern=spec,
                thread_id=thread_id,
                run_number=run_number,
                model=chat_model,
                picked_models=picked_models,
                on_event=on_event,
            )

    async def _drive(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        graph_input: Any,
        *,
        pattern: Pattern,
        thread_id: str,
        run_number: int,
        model: BaseChatModel,
        picked_models: dict[str, BaseChatModel],
        on_event: OnEvent | None,
    ) -> RunResult:
        settings = get_settings()
        pool = self.saver.conn if isinstance(self.saver.conn, AsyncConnectionPool) else None
        context = AgentContext(
            model=model,
            picked=picked_models,
            db=pool,
            max_workers=get_settings().max_workers,
        ).merged(self._context)
        status: RunStatus = "failed"
        error_text: str | None = "stopped before the run finished"
        with run_trace(
            settings, thread_id=thread_id, run_number=run_number, pattern=pattern.name
        ) as trace:
            config: RunnableConfig = {
                "configurable": {"thread_id": thread_id},
                "metadata": {**trace.metadata, "mas_pattern": pattern.name, "mas_run": run_number},
                "callbacks": trace.callbacks,
                "run_name": pattern.name,
            }
            reader = EventReader()
            try:
                async for namespace, mode, chunk in graph.astream(
                    graph_input,
                    config,
                    context=context,
                    stream_mode=["tasks", "custom"],
                    subgraphs=True,
                    durability="sync",
                ):
                    for event in reader.events(tuple(namespace), str(mode), chunk):
                        if on_event is not None:
                            on_event(event)
                state = await graph.aget_state(config)
                interrupts = [i.value for i in state.interrupts]
                status, error_text = ("interrupted" if interrupts else "done"), None
                return RunResult(
                    state.values, thread_id=thread_id, status=status, interrupts=interrupts
                )
            except RunBudgetExceededError as error:
                status, error_text = "over_budget", str(error)
                state = await graph.aget_state(config)
                return RunResult(
                    state.values,
                    thread_id=thread_id,
                    status=status,
                    interrupts=[],
                    stopped=error_text,
                )
            except Exception as error:
                error_text = redact(f"{type(error).__name__}: {error}")[:2_000]
                raise _failure(error, thread_id, settings) from error
            finally:
                await self._record_end(thread_id, status, error_text)

    async def _record_end(self, thread_id: str, status: RunStatus, error: str | None) -> None:
        """Best effort: with the database gone the run's own error is what matters, and a
        registry row left at 'running' with no lock holder already reads as failed."""
        try:
            async with aconnection(self.saver, wait_s=REGISTRY_TIMEOUT_S) as conn:
                await arecord_run_end(conn, thread_id, status, error)
        except (psycopg.Error, PoolTimeout) as error:
            logger.warning("could not record the end of %s's run: %s", thread_id, error)


def _settled_status(
    interrupts: Any, tasks: tuple[Any, ...], answer: Any
) -> Literal["done", "interrupted"] | None:
    """Where a thread stands when resuming it has nothing to run: finished, or waiting
    for an answer that was not given; None when there is work to continue.

    Finished means the last checkpoint has no tasks at all. `StateSnapshot.next` is not
    enough: it leaves out tasks whose writes were saved, and a process killed after a
    superstep's writes but before the next checkpoint leaves exactly that."""
    if interrupts:
        return "interrupted" if answer is None else None
    return None if tasks else "done"


def _checked_edits(
    pattern: Pattern, values: dict[str, Any], update: dict[str, Any]
) -> dict[str, Any]:
    """A fork's edits: input fields only, valid (with the rest of the input as it was)
    by the same rules as a new run's input."""
    fields = set(pattern.spec.input.model_fields)
    if unknown := sorted(set(update) - fields):
        raise InputError(
            f"a fork edits the run's input fields ({', '.join(sorted(fields))}), "
            f"not {', '.join(unknown)}"
        )
    if not update:
        return {}
    if not values:
        raise InputError("that checkpoint comes before the run's input: fork from a later one")
    given = {k: v for k, v in values.items() if k in fields} | update
    parsed, _ = pattern.parse(given)
    return {k: parsed[k] for k in update}


def _restart_input(pattern: Pattern, thread_id: str, state: Any, parts: list[str]) -> Any:
    """A new run's input that runs `parts` of a finished run again, checked before
    anything is written: the thread is left as it is when they cannot be."""
    if pattern.spec.restart is None:
        raise InputError(f"a {pattern.name} run has no parts to restart")
    if state.next:
        raise InputError(
            f"thread {thread_id} has not finished: `mas resume {thread_id}` first, then restart"
        )
    try:
        return pattern.spec.restart(state.values, parts)
    except ValueError as error:
        raise InputError(f"cannot restart {', '.join(parts)}: {error}") from None


def _resume_input(
    pattern: Pattern, thread_id: str, interrupts: Any, tasks: tuple[Any, ...], answer: Any
) -> Any:
    """What to feed the graph on resume: the validated answer to a pending interrupt,
    or nothing (continue from the last checkpoint)."""
    if interrupts:
        if answer is None:
            kind = interrupts[0].value.get("kind", "an interrupt")
            raise ResumeAnswerError(
                f"thread {thread_id} is waiting for an answer to {kind}; "
                "pass one with --answer JSON"
            )
        # Answered by id: with several pending (teams waiting in parallel), this answers
        # the first, and the run stops again at the next.
        return Command(resume={interrupts[0].id: pattern.answer(interrupts[0].value, answer)})
    if not tasks:
        raise ThreadFinishedError(thread_id)
    if answer is not None:
        raise ResumeAnswerError(f"thread {thread_id} is not waiting for an answer")
    return None


async def arun(
    pattern: str,
    input: dict[str, Any],
    *,
    thread_id: str | None = None,
    model: BaseChatModel | str | None = None,
    dsn: str | None = None,
    on_event: OnEvent | None = None,
) -> RunResult:
    """Start a new run of `pattern` on `input`; returns its final state.

    Input and models are validated before anything touches the database.
    """
    return await astart(
        await aprepare_run(pattern, input, thread_id=thread_id, model=model),
        dsn=dsn,
        on_event=on_event,
    )


async def astart(
    prepared: PreparedRun, *, dsn: str | None = None, on_event: OnEvent | None = None
) -> RunResult:
    """Start a run that `prepare_run` validated."""
    async with Runner(dsn) as runner:
        return await runner.start(prepared, on_event=on_event)


async def afork(
    thread_id: str,
    checkpoint_id: str,
    *,
    update: dict[str, Any] | None = None,
    new_thread_id: str | None = None,
    model: BaseChatModel | str | None = None,
    dsn: str | None = None,
    on_event: OnEvent | None = None,
) -> RunResult:
    """Run a new thread from one of `thread_id`'s checkpoints (see `Runner.start_fork`) to
    its end or next interrupt."""
    async with Runner(dsn) as runner:
        target = await runner.start_fork(
            thread_id, checkpoint_id, update=update, new_thread_id=new_thread_id
        )
        return await runner.resume(target, model=model, on_event=on_event)


async def aresume(
    thread_id: str,
    *,
    answer: Any = None,
    model: BaseChatModel | str | None = None,
    dsn: str | None = None,
    on_event: OnEvent | None = None,
    restart: list[str] | None = None,
) -> RunResult:
    """Continue a thread: after a crash or failure, or with `answer` to a pending interrupt;
    with `restart`, run those parts of a finished run again (see `Runner.resume`)."""
    async with Runner(dsn) as runner:
        return await runner.resume(
            thread_id, answer=answer, model=model, on_event=on_event, restart=restart
        )


# The blocking twins, for scripts and notebooks: the same parameters as the async ones.
run = blocking(arun)
start = blocking(astart)
resume = blocking(aresume)
fork = blocking(afork)
