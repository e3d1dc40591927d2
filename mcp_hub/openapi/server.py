"""An OpenAPI-backed upstream as an in-process MCP server.

One low-level `mcp.server.Server` per (server, credential identity), built from the stored spec, reached
over the SDK's in-memory streams. The upstream pool opens and keeps it like any other upstream session,
so the gateway's naming, allowlists, deadlines and auditing apply unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import httpx2
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared._stream_protocols import WriteStream
from mcp.shared.exceptions import MCPError
from mcp.shared.memory import create_client_server_memory_streams
from mcp.shared.message import SessionMessage

from mcp_hub.openapi.auth import place_credential
from mcp_hub.openapi.request import (
    CallLimits,
    CredentialRefusedError,
    ToolCallError,
    build_request,
    check_arguments,
    error_result,
    send,
)
from mcp_hub.openapi.tools import OperationTool
from mcp_hub.upstream.connectors import Streams
from mcp_hub.upstream.credentials import ResolvedCredential

Ctx = ServerRequestContext[Any, Any]


class OpenApiToolServer:
    """The handlers of one in-process server: list the spec's tools, turn a call into an HTTP request
    carrying this session's credential."""

    def __init__(
        self,
        *,
        name: str,
        tools: list[OperationTool],
        base_url: str,
        security_schemes: Mapping[str, Any],
        credential: ResolvedCredential,
        shared_headers: Mapping[str, str],
        placement_configured: bool,
        client: httpx2.AsyncClient,
        limits: CallLimits,
        on_unauthorized: Callable[[], None] | None = None,
    ) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._base_url = base_url
        self._schemes = security_schemes
        self._credential = credential
        self._shared_headers = shared_headers
        self._placement_configured = placement_configured
        self._client = client
        self._limits = limits
        # Told when the API refuses a credential that can be replaced (an OAuth token revoked or expired
        # early): the upstream pool then refreshes it and sends the call again, as for MCP upstreams.
        self._on_unauthorized = on_unauthorized
        self.server: Server[Any] = Server(
            f"openapi:{name}", on_list_tools=self._list_tools, on_call_tool=self._call_tool
        )

    async def _list_tools(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=tool.name, description=tool.description, input_schema=tool.input_schema)
                for tool in self._tools.values()
            ]
        )

    async def _call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = self._tools.get(params.name)
        if tool is None:
            return error_result(f"unknown tool {params.name!r}")
        arguments = params.arguments or {}
        try:
            check_arguments(tool, arguments)
            placement = place_credential(
                tool,
                self._schemes,
                self._credential,
                shared_headers=self._shared_headers,
                placement_configured=self._placement_configured,
            )
            request = build_request(self._client, tool, self._base_url, arguments, placement)
        except ToolCallError as exc:
            return error_result(str(exc))
        try:
            return await send(
                self._client, request, self._limits, refusable=self._on_unauthorized is not None
            )
        except CredentialRefusedError:
            assert self._on_unauthorized is not None
            self._on_unauthorized()
            raise MCPError(types.INVALID_REQUEST, "the API refused the credential (HTTP 401)") from None


@asynccontextmanager
async def serve_in_memory(server: Server[Any]) -> AsyncIterator[Streams]:
    """Runs `server` on in-memory streams for as long as the context is open; yields the client side."""
    async with create_client_server_memory_streams() as (client_streams, server_streams):
        server_read, server_write = server_streams
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: server.run(
                    server_read,
                    cast(WriteStream[SessionMessage], server_write),
                    server.create_initialization_options(),
                )
            )
            try:
                read, write = client_streams
                yield read, cast(WriteStream[SessionMessage], write)
            finally:
                tg.cancel_scope.cancel()
