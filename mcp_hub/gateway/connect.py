"""The stand-in for a per-user server the caller has not connected yet: one tool, `connect`
(`{alias}__connect` on /mcp), whose description and result give the URL where the user connects their
account. It keeps the server visible in listings instead of silently dropping it."""

from __future__ import annotations

import uuid
from typing import Any

from mcp import types
from mcp.shared.exceptions import MCPError

from mcp_hub.errors import NotConnectedError
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


# --- URL-mode elicitation (MCP 2025-11-25) -------------------------------------------------------------
# A client that declares `elicitation: {url: {}}` can open a URL for the user after asking them, so the
# hub asks through it instead of only naming the URL in text. The URLElicitationRequiredError (-32042)
# exists in 2025-11-25 only: 2026-07-28 retired the code, so those sessions keep the plain error.
URL_ELICITATION_ERROR_VERSIONS = frozenset({"2025-11-25"})


def supports_url_elicitation(capabilities: types.ClientCapabilities | None) -> bool:
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and elicitation.url is not None


def connect_elicitation(
    server_name: str, url: str, message: str | None = None
) -> types.ElicitRequestURLParams:
    return types.ElicitRequestURLParams(
        message=message or f"Connect your account for {server_name!r} so its tools can act as you.",
        url=url,
        # Unique per request, as the spec asks; the hub does not track completion (it sends no
        # notifications/elicitation/complete), so the client retries when the user says they are done.
        elicitation_id=str(uuid.uuid4()),
    )


def url_elicitation_required(error: MCPError, url: str) -> MCPError:
    """The not-connected error as a URLElicitationRequiredError. `data.connect_url` stays, so a client
    that reads the hub's usual error still finds the URL."""
    elicitation = connect_elicitation("", url, error.message)
    return MCPError(
        code=types.URL_ELICITATION_REQUIRED,
        message=error.message,
        data={
            "elicitations": [elicitation.model_dump(by_alias=True, exclude_none=True, mode="json")],
            "connect_url": url,
        },
    )


def elicited_connect_result(server: McpServer, url: str, action: str) -> types.CallToolResult:
    """The `connect` tool's result after the client was asked (URL mode) to open the connect page."""
    if action == "accept":
        text = (
            f"The connect page for {server.name} was opened ({url}). Once you have finished connecting "
            "there, list tools again to use its tools."
        )
    else:
        outcome = "declined" if action == "decline" else "cancelled"
        text = f"Connecting {server.name} was {outcome}. To connect later, open {url} in a browser."
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content={"connect_url": url, "server": server.name, "elicitation": action},
    )


def not_connected_error(exc: NotConnectedError) -> MCPError:
    """The user must connect their account first: the message and `data.connect_url` say where (both
    gateway paths answer with this one error)."""
    return MCPError(code=types.INVALID_REQUEST, message=exc.message, data={"connect_url": exc.connect_url})
