"""The stand-in for a per-user server the caller has not connected yet: one tool, `connect`
(`{alias}__connect` on /mcp), whose description and result give the URL where the user connects their
account. It keeps the server visible in listings instead of silently dropping it."""

from __future__ import annotations

from typing import Any

from mcp import types
from mcp.shared.exceptions import MCPError

from mcp_hub.store.models import McpServer

CONNECT_TOOL = "connect"
# Marks the hub's own stand-in, so it is never mistaken for an upstream tool of the same name.
CONNECT_META_KEY = "mcp-hub/connect-url"


def connect_tool(server: McpServer, url: str) -> types.Tool:
    return types.Tool(
        name=CONNECT_TOOL,
        title=f"Connect your {server.name} account",
        description=(
            f"You have not connected your account for {server.name!r} yet, so its tools are not available. "
            f"Open {url} in a browser to connect it, then list tools again."
        ),
        input_schema={"type": "object", "properties": {}},
        meta={CONNECT_META_KEY: url},
    )


def is_connect_tool(tool: Any) -> bool:
    meta = getattr(tool, "meta", None)
    return isinstance(meta, dict) and CONNECT_META_KEY in meta


def connect_result(server: McpServer, url: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[
            types.TextContent(
                type="text",
                text=f"To use {server.name}, connect your account at {url} (open it in a browser), then try again.",
            )
        ],
        structured_content={"connect_url": url, "server": server.name},
    )


def connect_url_of(error: MCPError) -> str | None:
    """The connect URL an MCP error carries when the caller has not connected the server."""
    data = error.error.data
    if isinstance(data, dict) and isinstance(data.get("connect_url"), str):
        return str(data["connect_url"])
    return None
