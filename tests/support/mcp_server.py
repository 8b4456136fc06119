"""A small real MCP server for the tests, over stdio or streamable HTTP:

    python -m tests.support.mcp_server stdio
    python -m tests.support.mcp_server http PORT

Every call is appended to `MCP_TEST_LOG` (if set) as JSON with its tool, arguments and
the idempotency key the client sent in the request's `_meta`, so tests can count calls
across processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp.server.fastmcp import Context, FastMCP

FACTS = {
    "postgres": "PostgreSQL 9.5 added SKIP LOCKED, which lets many workers take queue rows safely.",
    "kafka": "Kafka needs a cluster of brokers and, before 3.3, ZooKeeper.",
}

server = FastMCP("facts", log_level="WARNING")


def logged(ctx: Context[Any, Any, Any], tool: str, arguments: dict[str, Any]) -> None:
    path = os.environ.get("MCP_TEST_LOG")
    if not path:
        return
    meta = ctx.request_context.meta
    key = (meta.model_extra or {}).get("idempotency_key") if meta is not None else None
    with Path(path).open("a") as log:
        log.write(json.dumps({"tool": tool, "arguments": arguments, "key": key}) + "\n")
        log.flush()
        os.fsync(log.fileno())


@server.tool()
def lookup(topic: str, ctx: Context[Any, Any, Any]) -> str:
    """Look up a fact about a technology by its name."""
    logged(ctx, "lookup", {"topic": topic})
    return FACTS.get(topic.strip().lower(), f"no fact about {topic}")


@server.tool()
def add(a: int, b: int, ctx: Context[Any, Any, Any]) -> int:
    """Add two whole numbers."""
    logged(ctx, "add", {"a": a, "b": b})
    return a + b


@server.tool()
async def wait(seconds: float, ctx: Context[Any, Any, Any]) -> str:
    """Wait for a number of seconds (a tool that hangs)."""
    logged(ctx, "wait", {"seconds": seconds})
    await asyncio.sleep(seconds)
    return f"waited {seconds} s"


@server.tool()
def refuse(reason: str, ctx: Context[Any, Any, Any]) -> str:
    """Always fails, saying why."""
    logged(ctx, "refuse", {"reason": reason})
    raise ValueError(f"refused: {reason}")


if __name__ == "__main__":
    if sys.argv[1] == "http":
        server.settings.port = int(sys.argv[2])
        server.settings.host = "127.0.0.1"
        server.run("streamable-http")
    else:
        server.run("stdio")
