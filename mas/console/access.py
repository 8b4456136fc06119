"""Who is looking: the console on this machine (`mas ui`) shows every local thread; the
console mounted in `mas serve` shows each user the server's threads that are theirs,
behind the server's own API keys.

In a browser the key is typed once into the login form; the console then keeps a
session cookie that names the user and is signed with that user's key (HMAC), so it
is void as soon as the operator changes the key. An API client may send the key as
`Authorization: Bearer <key>` instead, as it does to the server's API.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from mas_graphs.checkpoints.admin import ThreadRecord

COOKIE = "mas_console"
SESSION_CONTEXT = b"mas-console-session"


@dataclass(frozen=True)
class Served:
    """The console inside `mas serve`: the server's API (for answers) and its keys (per
    user; none on a loopback server without keys, where every served thread shows)."""

    api_url: str
    keys: Mapping[str, str]


def session_token(user: str, key: str) -> str:
    signature = hmac.new(key.encode(), SESSION_CONTEXT + user.encode(), hashlib.sha256)
    return f"{user}.{signature.hexdigest()}"


def user_by_key(keys: Mapping[str, str], given: str) -> str | None:
    """The user whose key this is, compared with every key in constant time."""
    found = [user for user, key in keys.items() if hmac.compare_digest(key, given)]
    return found[0] if found else None


def viewer(request: Request, served: Served | None) -> str | None:
    """The user a request comes from, or None (refused, where keys are set)."""
    if served is None or not served.keys:
        return ""  # this machine's console, or a server without keys: no users
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given:
        return user_by_key(served.keys, given)
    cookie = request.cookies.get(COOKIE, "")
    user = cookie.partition(".")[0]
    key = served.keys.get(user)
    if key is None:
        return None
    return user if hmac.compare_digest(session_token(user, key), cookie) else None


def visible(record: ThreadRecord, served: Served | None, user: str) -> bool:
    """This machine's console shows every local thread; a served one, the server's
    threads of the user (all of them on a server without keys)."""
    if served is None:
        return True
    return record.served_by == "server" and (not served.keys or record.owner == user)
