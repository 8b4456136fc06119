"""The tools a deployment grants: built-in, from plugins, and from the operator's MCP
servers (`MAS_MCP_SERVERS`, a JSON file; see nodes/mcp.py for its shape).

MCP servers are listed once per process, before the first run is validated (a worker's
allow-list may name their tools); a server that was down is tried again before the
next run.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from pydantic import ValidationError

from mas.blocking import run_to_end
from mas.errors import ToolConfigError
from mas.settings import Settings, get_settings
from mas_graphs.nodes.mcp import McpServers, McpTool, load_mcp_tools
from mas_graphs.nodes.tools import TOOLS
from mas_graphs.state.common import validation_problems

_lock = threading.Lock()
_status: dict[str, str] = {}  # server -> "up: N tools" | "down: why"


def configured_servers(settings: Settings) -> McpServers:
    path = settings.mcp_servers
    if path is None:
        return McpServers()
    try:
        return McpServers.from_file(path)
    except OSError as error:
        raise ToolConfigError(f"MAS_MCP_SERVERS: cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        problem = validation_problems(error) if isinstance(error, ValidationError) else str(error)
        raise ToolConfigError(f"MAS_MCP_SERVERS ({path}): {problem}") from None


def load_tools(settings: Settings | None = None) -> dict[str, str]:
    """List the configured MCP servers' tools into the registry (those not yet up);
    returns every server's status. Blocks until the servers have answered."""
    servers = configured_servers(settings or get_settings())
    with _lock:
        waiting = McpServers(
            servers={
                name: server
                for name, server in servers.servers.items()
                if not _status.get(name, "").startswith("up")
            }
        )
        if waiting.servers:
            _status.update(run_to_end(load_mcp_tools(waiting)))
        return {name: _status[name] for name in servers.servers}


async def aload_tools(settings: Settings | None = None) -> dict[str, str]:
    return await asyncio.to_thread(load_tools, settings)


@dataclass(frozen=True)
class ToolInfo:
    name: str
    source: str  # "built-in or plugin" or "mcp:<server>"
    description: str


def registered_tools() -> list[ToolInfo]:
    infos = []
    for name in TOOLS.names():
        tool = TOOLS.get(name)
        source = f"mcp:{tool.server}" if isinstance(tool, McpTool) else "python"
        first_line = (tool.description or "").strip().splitlines()
        infos.append(ToolInfo(name, source, first_line[0] if first_line else ""))
    return infos
