"""Who may use a served graph, and which threads are theirs.

A LangGraph SDK `Auth` object, which Aegra (and `langgraph dev`) load from the server
config. Callers present a bearer API key (`Authorization: Bearer <key>`); keys are
configured per user in `MAS_API_KEYS` (`{"alice": "<key>", ...}`). A thread belongs to
the user who created it: every thread and run is stamped with its owner, and every
read, search, update, resume or delete is filtered to the caller's own. Graphs
(assistants) are the operator's: anyone with a key may read and run them, nobody may
create, change or delete them over HTTP.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from langgraph_sdk import Auth

from mas.settings import get_settings

auth = Auth()


def _unauthorized(detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=401, detail=detail)


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


@auth.on.threads
async def own_threads(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Threads are stamped with their creator and filtered to the caller's own."""
    return _stamp_owner(ctx, value)


@auth.on.threads.create_run
async def own_runs(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    return _stamp_owner(ctx, value)


@auth.on.crons
async def own_crons(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    return _stamp_owner(ctx, value)


async def operator_assistants(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """The served graphs are configured by the operator, not changed over HTTP."""
    raise Auth.exceptions.HTTPException(
        status_code=403, detail="graphs are configured by the server's operator"
    )


for action in (auth.on.assistants.create, auth.on.assistants.update, auth.on.assistants.delete):
    action(operator_assistants)


def _stamp_owner(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    owner = {"owner": ctx.user.identity}
    if isinstance(value, dict):
        # A create request may carry `metadata: None`.
        value["metadata"] = {**(value.get("metadata") or {}), **owner}
    return owner
