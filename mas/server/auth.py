"""Who may use a served graph, which threads are theirs, and what a client may send.

A LangGraph SDK `Auth` object, which Aegra (and `langgraph dev`) load from the server
config. Callers present a bearer API key (`Authorization: Bearer <key>`); keys are
configured per user in `MAS_API_KEYS` (`{"alice": "<key>", ...}`).

The trust boundary: everything a client sends is data, inside the operator's limits.

- Threads belong to the user who created them: every thread and run is stamped with
  its owner, and every read, search, update, resume or delete is filtered to the
  caller's own.
- A run request carries input (checked by the graph's first node), interrupt answers
  (checked by the node that asked) and metadata. The operator's settings (models, the
  database, limits such as `MAS_MAX_WORKERS`, tool servers) are fixed by the server's
  graph factories: a request that sets `context`, `config` beyond tags and a run name,
  breakpoints, a `Command` other than `resume`, or a durability that skips checkpoints
  is refused (403), naming the field.
- State is written by the graphs: a client may fork from a checkpoint, but not write
  values into one, nor seed a new thread's state.
- Graphs (assistants) are the operator's: anyone with a key may read and run them,
  nobody may create, change or delete them over HTTP. Crons and the store are not
  served: this project does not use them.
- Every other resource and action is refused: Aegra maps each of its routes to a
  (resource, action) event, and an event without a rule here meets the default rule.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from langgraph_sdk import Auth

from mas.settings import get_settings

auth = Auth()

# What a run request may carry besides its input: the rest is the operator's.
CLIENT_CONFIG_KEYS = frozenset({"tags", "run_name"})
CLIENT_COMMAND_KEYS = frozenset({"resume"})
CHECKPOINTING_DURABILITY = (None, "sync", "async")  # "exit" writes none until the end
FORK = "__copy__"  # Studio's "re-run from here": a new checkpoint, no values written


def _unauthorized(detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=401, detail=detail)


def _refused(detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=403, detail=detail)


def header(headers: Mapping[Any, Any], name: str) -> str | None:
    """A request header, whether the server hands them over as str or as bytes."""
    for key, value in headers.items():
        text = key.decode() if isinstance(key, bytes) else str(key)
        if text.lower() == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


@auth.authenticate
async def authenticate(headers: Mapping[Any, Any]) -> Auth.types.MinimalUserDict:
    """The caller's identity from its bearer key. (`headers` is the one argument both
    Aegra, which passes it positionally, and LangGraph's server, by name, provide.)"""
    keys = get_settings().api_keys
    authorization = header(headers, "authorization")
    if not authorization:
        raise _unauthorized("missing API key: send Authorization: Bearer <key>")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise _unauthorized("send the API key as Authorization: Bearer <key>")
    # Compare with every key, in constant time, so timing reveals nothing.
    matches = [user for user, secret in keys.items() if hmac.compare_digest(secret, key)]
    if not matches:
        raise _unauthorized("unknown API key")
    return {"identity": matches[0]}


@auth.on
async def not_served(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """The default rule: what this file does not allow is refused."""
    raise _refused(f"{ctx.resource}.{ctx.action} is not served by this server")


@auth.on.threads.create
async def create_thread(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    if isinstance(value, dict) and value.get("initial_state"):
        raise _refused(
            "initial_state is not the client's to set: a thread's state is written by its "
            "graph; start a run with input instead"
        )
    return _stamp_owner(ctx, value)


async def own_threads(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Reading, searching and deleting see the caller's own threads (and their runs)."""
    return _stamp_owner(ctx, value)


for thread_action in (auth.on.threads.read, auth.on.threads.search, auth.on.threads.delete):
    thread_action(own_threads)


@auth.on.threads.update
async def update_own_thread(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Metadata, cancelling a run, forking from a checkpoint: yes. Writing state: no."""
    if isinstance(value, dict):
        if value.get("values") is not None:
            raise _refused(
                "values is not the client's to set: a thread's state is written by its "
                "graph; answer an interrupt with a run whose command is {'resume': ...}"
            )
        if value.get("as_node") not in (None, FORK):
            raise _refused(f"as_node may only be {FORK!r} (a fork from a checkpoint)")
    return _stamp_owner(ctx, value)


@auth.on.threads.create_run
async def create_own_run(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    if isinstance(value, dict):
        # Agent Protocol v2 commands carry the run's fields in `params`.
        params = value.get("params")
        if problem := operator_field(params if isinstance(params, dict) else value):
            raise _refused(problem)
    return _stamp_owner(ctx, value)


async def read_graphs(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """Anyone with a key may see and run the served graphs."""
    return True


for read_action in (auth.on.assistants.read, auth.on.assistants.search):
    read_action(read_graphs)


async def operator_assistants(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """The served graphs are configured by the operator, not changed over HTTP."""
    raise _refused("graphs are configured by the server's operator")


for action in (auth.on.assistants.create, auth.on.assistants.update, auth.on.assistants.delete):
    action(operator_assistants)


def operator_field(request: Mapping[str, Any]) -> str | None:
    """What a run request sets that is not the client's to set, said in one line."""
    context = request.get("context") or {}
    if context:
        return (
            f"context.{sorted(context)[0]} is not the client's to set: the server's "
            "operator sets models, the database and limits (MAS_MAX_WORKERS, ...)"
        )
    config = request.get("config") or {}
    for key in sorted(config):
        if key == "configurable" and config[key]:
            field = sorted(config["configurable"])[0]
            return f"config.configurable.{field} is not the client's to set"
        if key not in CLIENT_CONFIG_KEYS | {"configurable"}:
            return f"config.{key} is not the client's to set (tags and run_name are)"
    command = request.get("command") or {}
    for key in sorted(command):
        if key not in CLIENT_COMMAND_KEYS and command[key] is not None:
            return f"command.{key} is not the client's to set: answer with {{'resume': ...}}"
    for breakpoint in ("interrupt_before", "interrupt_after"):
        if request.get(breakpoint):
            return f"{breakpoint} is not the client's to set: graphs pause where they ask"
    if request.get("durability") not in CHECKPOINTING_DURABILITY:
        return "durability 'exit' is not the client's to set: every step is checkpointed"
    if request.get("checkpoint_during") is False:
        return "checkpoint_during false is not the client's to set: every step is checkpointed"
    return None


def _stamp_owner(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Threads (and runs) are stamped with their creator and filtered to the caller's own."""
    owner = {"owner": ctx.user.identity}
    if isinstance(value, dict):
        # A create request may carry `metadata: None`; an owner set by a client is replaced.
        value["metadata"] = {**(value.get("metadata") or {}), **owner}
    return owner
