"""Tools from MCP servers, in the tool registry under `server.tool` names.

The operator configures the servers (`MAS_MCP_SERVERS`, a JSON file; see
`McpServers`), never a run's input: input only names registered tools in a worker's
allow-list. Each server's tools are listed once per process (`load_mcp_tools`) and
join the registry; a server that does not answer leaves its tools out, and a worker
that names one is told the server is down.

A call opens a session to its server (a stdio server is started for it; an HTTP
server is connected to), so a crashed server or a killed run leaves nothing open.
Each call carries an idempotency key in the request's `_meta` (`idempotency_key`):
a tool call cut off by a crash runs again on resume, with the same key, so a server
that keeps its keys can make the effect happen once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mas_graphs.nodes.tools import TOOLS, register_tool
from mas_graphs.state.common import PART_NAME

if TYPE_CHECKING:  # the MCP SDK takes 0.4 s to import: only runs that use MCP pay it
    from mcp import ClientSession, types

logger = logging.getLogger(__name__)

# Why each configured server's tools are missing, for the errors that name them.
SERVERS_DOWN: dict[str, str] = {}


class StdioServer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transport: Literal["stdio"]
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, description="Per tool call.")


class HttpServer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transport: Literal["streamable_http"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0, description="Per tool call.")


Server = Annotated[StdioServer | HttpServer, Field(discriminator="transport")]


class McpServers(BaseModel):
    """The operator's MCP servers: `{"servers": {"<name>": {"transport": "stdio",
    "command": ..., "args": [...]} | {"transport": "streamable_http", "url": ...}}}`."""

    model_config = ConfigDict(extra="forbid")

    servers: dict[Annotated[str, StringConstraints(pattern=PART_NAME)], Server] = Field(
        default_factory=dict
    )

    @classmethod
    def from_file(cls, path: Path) -> McpServers:
        return cls.model_validate(json.loads(path.read_text()))


@asynccontextmanager
async def open_session(server: StdioServer | HttpServer) -> AsyncIterator[ClientSession]:
    """An initialised session with `server`: a stdio server is started for it (its
    stderr goes to this process's own, which Jupyter's replaced one cannot take)."""
    from langchain_mcp_adapters.sessions import create_session
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    if isinstance(server, StdioServer):
        params = StdioServerParameters(
            command=server.command, args=server.args, env=server.env, cwd=server.cwd
        )
        errlog = sys.__stderr__ or sys.stderr
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
    else:
        connection: Any = {
            "transport": "streamable_http",
            "url": server.url,
            "headers": server.headers,
        }
        async with create_session(connection) as session:
            await session.initialize()
            yield session


class McpTool(BaseTool):
    """One MCP server's tool. The idempotency key comes from the call's metadata
    (`idempotency_key`), which the ReAct loop sets per step."""

    server: str
    remote_name: str
    config: StdioServer | HttpServer

    async def _arun(
        self, run_manager: AsyncCallbackManagerForToolRun | None = None, **arguments: Any
    ) -> str:
        key = (run_manager.metadata if run_manager else {}).get("idempotency_key")
        async with open_session(self.config) as session:
            result = await session.call_tool(
                self.remote_name,
                arguments,
                read_timeout_seconds=timedelta(seconds=self.config.timeout_s),
                meta={"idempotency_key": key} if key else None,
            )
        text = result_text(result)
        if result.isError:
            raise ToolException(text or "the tool reported an error")
        return text

    def _run(self, *args: Any, **kwargs: Any) -> str:
        raise NotImplementedError("MCP tools are called asynchronously")


def result_text(result: types.CallToolResult) -> str:
    """A tool result as the text an agent reads: its text parts, else its structured
    content as JSON."""
    from mcp import types

    parts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    if parts:
        return "\n".join(parts)
    if result.structuredContent is not None:
        return json.dumps(result.structuredContent)
    return ""


async def server_tools(name: str, server: StdioServer | HttpServer) -> list[McpTool]:
    """What `server` offers, as registry tools named `name.tool`."""
    async with open_session(server) as session:
        listed = await session.list_tools()
    return [
        McpTool(
            name=f"{name}.{tool.name}",
            description=tool.description or f"the {tool.name} tool of {name}",
            args_schema=tool.inputSchema,
            server=name,
            remote_name=tool.name,
            config=server,
        )
        for tool in listed.tools
    ]


async def load_mcp_tools(servers: McpServers, *, timeout_s: float = 20.0) -> dict[str, str]:
    """List every server's tools into the registry; returns each server's status
    ("up: N tools" or why it is down)."""
    status: dict[str, str] = {}

    async def load(name: str, server: StdioServer | HttpServer) -> None:
        try:
            tools = await asyncio.wait_for(server_tools(name, server), timeout_s)
        except Exception as error:  # one server down must not take the others with it
            reason = describe(error)
            SERVERS_DOWN[name] = reason
            status[name] = f"down: {reason}"
            logger.warning("MCP server %s is down: %s", name, reason)
            return
        SERVERS_DOWN.pop(name, None)
        for tool in tools:
            register_tool(tool)
        status[name] = f"up: {len(tools)} tools"

    await asyncio.gather(*(load(n, s) for n, s in servers.servers.items()))
    return status


def describe(error: BaseException) -> str:
    """The innermost cause, for one line (MCP's task groups wrap errors in groups)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return f"{type(error).__name__}: {error}"[:300]


def unavailable(tool_name: str) -> str | None:
    """Why a tool named `server.tool` is missing, if its server is configured but down."""
    server, dot, _ = tool_name.partition(".")
    if dot and server in SERVERS_DOWN and tool_name not in TOOLS:
        return f"tool server '{server}' is down ({SERVERS_DOWN[server]})"
    return None
