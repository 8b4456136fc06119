"""The `mas` CLI against a running server (`mas --server URL ...`): the same commands,
through the LangGraph SDK instead of the database. Works with any Agent Protocol
server serving these graphs: `mas serve` (Aegra) or `langgraph dev`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.errors import LangGraphError, NotFoundError

from mas.errors import InputError, MasError, UnknownThreadError
from mas.patterns import get_pattern
from mas.runner import RunResult
from mas_graphs.checkpoints.admin import ThreadRecord, ThreadStatus
from mas_graphs.state.pattern import RunEvent

# The server's thread status, in the words `mas threads` uses.
STATUSES: dict[str, ThreadStatus] = {
    "busy": "running",
    "interrupted": "interrupted",
    "error": "failed",
    "idle": "done",
}


class ServerError(MasError):
    """The server refused or failed a request; the message says which and why."""


@dataclass(frozen=True)
class Server:
    url: str
    api_key: str | None

    def client(self) -> SyncLangGraphClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        return get_sync_client(url=self.url, api_key=None, headers=headers)


def _failure(error: Exception, server: Server) -> MasError:
    if isinstance(error, httpx.ConnectError):
        return ServerError(f"no server answers at {server.url}; start one with `mas serve`")
    if isinstance(error, httpx.HTTPStatusError) and error.response.status_code in (401, 403):
        return ServerError(
            f"the server at {server.url} refused the request "
            f"({error.response.status_code}): pass --api-key (or set MAS_API_KEY)"
        )
    return ServerError(f"the server at {server.url} failed the request: {error}")


def call(server: Server, request: Callable[[SyncLangGraphClient], Any]) -> Any:
    """One SDK request, its errors turned into one-line `MasError`s."""
    try:
        return request(server.client())
    except NotFoundError as error:
        raise UnknownThreadError(str(error)) from None
    except (httpx.HTTPError, LangGraphError) as error:
        raise _failure(error, server) from None


def _result(client: SyncLangGraphClient, thread_id: str) -> RunResult:
    state = client.threads.get_state(thread_id)
    interrupts = [i["value"] for task in state["tasks"] for i in task.get("interrupts", [])]
    errors = [task["error"] for task in state["tasks"] if task.get("error")]
    if errors and not interrupts:
        raise ServerError(f"run failed on the server: {errors[0]}")
    values = state["values"] if isinstance(state["values"], dict) else {}
    return RunResult(
        values,
        thread_id=thread_id,
        status="interrupted" if interrupts else "done",
        interrupts=interrupts,
    )


def _events(chunks: Iterator[Any]) -> Iterator[RunEvent]:
    """The server's streamed updates as the runner's events (a node finished)."""
    for chunk in chunks:
        if chunk.event == "updates" and isinstance(chunk.data, dict):
            for node in chunk.data:
                if not node.startswith("__"):
                    yield RunEvent("node_start", node, node)
                    yield RunEvent("node_end", node, node)
        elif chunk.event == "custom" and isinstance(chunk.data, dict):
            yield RunEvent("progress", str(chunk.data.get("node", "")), data=chunk.data)
        elif chunk.event == "error":
            raise ServerError(f"run failed on the server: {chunk.data}")


def run(
    server: Server,
    pattern: str,
    data: dict[str, Any],
    *,
    thread_id: str | None,
    on_event: Callable[[RunEvent], None],
) -> RunResult:
    """Start `pattern` on the server and follow it live; the input is checked there."""

    def request(client: SyncLangGraphClient) -> RunResult:
        thread = client.threads.create(thread_id=thread_id, if_exists="raise")
        stream = client.runs.stream(
            thread["thread_id"], pattern, input=data, stream_mode=["updates", "custom"]
        )
        for event in _events(stream):
            on_event(event)
        return _result(client, thread["thread_id"])

    result: RunResult = call(server, request)
    return result


def _graph_of(client: SyncLangGraphClient, thread_id: str) -> str:
    """The pattern a served thread runs (its graph id)."""
    thread = client.threads.get(thread_id)
    pattern = str((thread.get("metadata") or {}).get("graph_id") or "")
    if not pattern:
        raise ServerError(f"thread {thread_id} has never run a graph")
    return pattern


def _follow(
    client: SyncLangGraphClient,
    thread_id: str,
    pattern: str,
    on_event: Callable[[RunEvent], None],
    **run: Any,
) -> tuple[str, RunResult]:
    """A new run of the thread (`run`: its input or command), followed live to its end."""
    stream = client.runs.stream(thread_id, pattern, stream_mode=["updates", "custom"], **run)
    for event in _events(stream):
        on_event(event)
    return pattern, _result(client, thread_id)


def resume(
    server: Server, thread_id: str, *, answer: Any, on_event: Callable[[RunEvent], None]
) -> tuple[str, RunResult]:
    """Continue a thread on the server: with `answer` to its interrupt, or from its last
    checkpoint. Returns its pattern too."""

    def request(client: SyncLangGraphClient) -> tuple[str, RunResult]:
        command: Any = {"resume": answer} if answer is not None else None
        return _follow(client, thread_id, _graph_of(client, thread_id), on_event, command=command)

    outcome: tuple[str, RunResult] = call(server, request)
    return outcome


def restart(
    server: Server, thread_id: str, parts: list[str], *, on_event: Callable[[RunEvent], None]
) -> tuple[str, RunResult]:
    """Run parts of a finished thread again on the server: a new run whose input the
    thread's pattern makes from the thread's values (checked here, and by the server)."""

    def request(client: SyncLangGraphClient) -> tuple[str, RunResult]:
        pattern = _graph_of(client, thread_id)
        current = client.threads.get_state(thread_id)
        values = current["values"] if isinstance(current["values"], dict) else {}
        spec = get_pattern(pattern).spec
        if spec.restart is None:
            raise InputError(f"a {pattern} run has no parts to restart")
        try:
            data = spec.restart(values, parts)
        except ValueError as error:
            raise InputError(f"cannot restart {', '.join(parts)}: {error}") from None
        return _follow(client, thread_id, pattern, on_event, input=data)

    outcome: tuple[str, RunResult] = call(server, request)
    return outcome


def threads(server: Server, *, limit: int) -> list[ThreadRecord]:
    def request(client: SyncLangGraphClient) -> list[ThreadRecord]:
        found = client.threads.search(limit=limit, sort_by="updated_at", sort_order="desc")
        return [record(dict(thread)) for thread in found]

    records: list[ThreadRecord] = call(server, request)
    return records


def record(thread: dict[str, Any]) -> ThreadRecord:
    metadata = thread.get("metadata") or {}
    updated = thread["updated_at"]
    return ThreadRecord(
        thread_id=thread["thread_id"],
        pattern=str(metadata.get("graph_id") or "-"),
        model_spec=None,
        options={},
        status=STATUSES.get(thread["status"], "running"),
        error=None,
        runs=0,
        last_step=None,
        updated_at=updated if isinstance(updated, datetime) else datetime.fromisoformat(updated),
        served_by="server",
        owner=metadata.get("owner"),
    )


def state(server: Server, thread_id: str, *, history: bool) -> dict[str, Any]:
    """A thread's state as `mas show --json` prints it."""

    def request(client: SyncLangGraphClient) -> dict[str, Any]:
        thread = client.threads.get(thread_id)
        current = client.threads.get_state(thread_id)
        steps = client.threads.get_history(thread_id, limit=1_000) if history else []
        return {
            "thread_id": thread_id,
            "pattern": (thread.get("metadata") or {}).get("graph_id"),
            "status": STATUSES.get(thread["status"], thread["status"]),
            "next": current["next"],
            "values": current["values"],
            "interrupts": [
                i["value"] for task in current["tasks"] for i in task.get("interrupts", [])
            ],
            "history": [
                {
                    "checkpoint_id": s["checkpoint"]["checkpoint_id"],
                    "step": (s.get("metadata") or {}).get("step"),
                    "source": (s.get("metadata") or {}).get("source"),
                    "next": s["next"],
                    "created_at": s["created_at"],
                }
                for s in steps
            ],
        }

    shown: dict[str, Any] = call(server, request)
    return shown
