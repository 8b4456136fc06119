"""Describing a failed node's error for the state, the same way before and after a crash.

A node's error handler gets `NodeError.error`. In the run where the node failed that is
the exception; but if the process dies between the failure being checkpointed and the
handler finishing, the resumed run hands the handler the error as LangGraph stored it,
its repr string (e.g. "ValueError('bad input')"). Both must read the same in the state.
"""

from __future__ import annotations

import re

from mas_graphs.state.common import CallUsage

MAX_ERROR_CHARS = 1_000
_REPR = re.compile(r"^(\w+)\((['\"])(.*)\2\)$", re.DOTALL)


def error_parts(error: BaseException | str) -> tuple[str, str]:
    """(type name, message) of an exception, or of one restored from a checkpoint."""
    if isinstance(error, BaseException):
        return type(error).__name__, str(error)
    match = _REPR.match(error)
    return (match.group(1), match.group(3)) if match else ("Error", error)


def describe_error(error: BaseException | str) -> str:
    """'Type: message', bounded."""
    name, message = error_parts(error)
    return f"{name}: {message}"[:MAX_ERROR_CHARS]


def failed_usage(error: BaseException | str) -> list[CallUsage]:
    """The usage of the calls a failed node made, when its error carries it (a structured
    output failure does); after a crash the error is only text, and that is lost."""
    usage = getattr(error, "usage", None)
    return list(usage) if isinstance(usage, list) else []
