"""Where the hub terminates MCP (/mcp, and /mcp/{server} of a stdio upstream), each client reaches the
upstream in its own protocol revision: handshake clients (2025-11-25) on a session opened with
`initialize`, 2026-07-28 clients on one opened with `server/discover`, carrying their own capabilities
per request. An upstream that only speaks the handshake serves both on one session."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.gateway.clients import auth_headers, shttp_session, text_of
from tests.gateway.conftest import RunningHub
from tests.mcp_peers.procs import NODE_EVERYTHING

MODERN = "2026-07-28"

requires_everything = pytest.mark.skipif(
    shutil.which("node") is None or not NODE_EVERYTHING.exists(), reason="needs node and server-everything"
)


@asynccontextmanager
async def modern_client(url: str, key: str, mode: str = MODERN, **options: Any) -> AsyncIterator[Client]:
    """The SDK's 2026-07-28 client (no sampling, elicitation or roots callbacks: it declares none).
    `mode="auto"` makes it ask the server with `server/discover` first."""
    http = httpx2.AsyncClient(headers=auth_headers(key), timeout=httpx2.Timeout(30, read=300))
    transport = streamable_http_client(url, http_client=http)
    async with http, Client(transport, mode=mode, cache=None, **options) as client:
        yield client


def seen_upstream(result: types.CallToolResult) -> dict[str, Any]:
    seen: dict[str, Any] = json.loads(text_of(result))
    return seen


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_each_client_reaches_the_upstream_in_its_own_revision(
    hub_server: RunningHub, echo_http: str, transport: str
) -> None:
    if transport == "http":
        await hub_server.add_server("echo", transport="http", url=echo_http)
    else:
        await hub_server.add_server(
            "echo",
            transport="stdio",
            command=sys.executable,
            args=["-m", "tests.mcp_peers.echo_server", "stdio"],
        )
    key = await hub_server.add_key(await hub_server.add_user("eve"))
    # /mcp for both transports; /mcp/echo too where the hub terminates (a stdio upstream).
    paths = ["/mcp"] if transport == "http" else ["/mcp", "/mcp/echo"]
    for path in paths:
        tool = "echo__protocol" if path == "/mcp" else "protocol"
        async with shttp_session(f"{hub_server.url}{path}", key) as legacy:
            handshake = seen_upstream(await legacy.call_tool(tool, {}))
        async with modern_client(f"{hub_server.url}{path}", key) as client:
            modern = seen_upstream(await client.call_tool(tool, {}))
        assert handshake["version"] == "2025-11-25"
        # The handshake session declares what the hub can relay to such clients.
        assert {"sampling", "elicitation", "roots"} <= set(handshake["capabilities"])
        assert modern["version"] == MODERN
        # This client declared nothing, and the upstream is told exactly that, not the hub's own.
        assert modern["capabilities"] == {}
    pool = hub_server.app.state.gateway.pool
    eras = sorted(pooled.key.era for pooled in pool.sessions() if pooled.session is not None)
    assert eras == ["handshake", "modern"]


async def test_a_modern_upstream_tells_the_hub_when_its_tools_change(
    hub_server: RunningHub, echo_http: str
) -> None:
    """A 2026-07-28 upstream announces changes only on a subscriptions/listen stream; the hub keeps one
    open per upstream session, so its listing cache (minutes long) drops a changed list at once."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("lin"))
    name = "grown"
    async with modern_client(f"{hub_server.url}/mcp", key) as client:
        before = {tool.name for tool in (await client.list_tools()).tools}
        assert "echo__protocol" in before and f"echo__{name}" not in before
        assert text_of(await client.call_tool("echo__grow", {"name": name})) == "added grown"
        with anyio.fail_after(5):
            while f"echo__{name}" not in {tool.name for tool in (await client.list_tools()).tools}:
                await anyio.sleep(0.05)


@requires_everything
async def test_a_handshake_only_upstream_serves_both_eras_on_one_session(hub_server: RunningHub) -> None:
    await hub_server.add_server(
        "everything", transport="stdio", command="node", args=[str(NODE_EVERYTHING), "stdio"]
    )
    key = await hub_server.add_key(await hub_server.add_user("ola"))
    async with modern_client(f"{hub_server.url}/mcp/everything", key) as client:
        result = await client.call_tool("echo", {"message": "from 2026"})
        assert "from 2026" in text_of(result)
    async with shttp_session(f"{hub_server.url}/mcp/everything", key) as legacy:
        assert "from 2025" in text_of(await legacy.call_tool("echo", {"message": "from 2025"}))
    async with modern_client(f"{hub_server.url}/mcp/everything", key) as client:
        assert "again" in text_of(await client.call_tool("echo", {"message": "again"}))
    pool = hub_server.app.state.gateway.pool
    sessions = [pooled for pooled in pool.sessions() if pooled.target.name == "everything"]
    assert len(sessions) == 1
    assert sessions[0].session is not None and sessions[0].session.protocol_version == "2025-11-25"


async def test_modern_clients_listen_on_the_hub_for_list_changes(
    hub_server: RunningHub, echo_http: str
) -> None:
    """2026-07-28 clients hear of changed lists through subscriptions/listen on the hub, and only of
    servers their key may use."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    # Another upstream process: `grow` on `echo` changes nothing there.
    await hub_server.add_server(
        "other",
        transport="stdio",
        command=sys.executable,
        args=["-m", "tests.mcp_peers.echo_server", "stdio"],
    )
    user = await hub_server.add_user("lea")
    key = await hub_server.add_key(user)
    other_only = await hub_server.add_key(user, allowed_servers=["other"])
    async with (
        modern_client(f"{hub_server.url}/mcp", key, mode="auto") as client,
        modern_client(f"{hub_server.url}/mcp", other_only) as outsider,
    ):
        assert client.protocol_version == MODERN
        capabilities = client.server_capabilities
        assert capabilities is not None and capabilities.tools is not None and capabilities.tools.list_changed
        # Resource subscriptions are not offered on this revision, and the hub does not claim them.
        assert capabilities.resources is not None and not capabilities.resources.subscribe
        async with (
            client.listen(tools_list_changed=True, resource_subscriptions=["mcp-hub://echo/x"]) as sub,
            outsider.listen(tools_list_changed=True) as outsider_sub,
        ):
            assert sub.honored.tools_list_changed and not sub.honored.resource_subscriptions
            assert text_of(await client.call_tool("echo__grow", {"name": "listened"})) == "added listened"
            with anyio.fail_after(5):
                event = await sub.__anext__()
            assert type(event).__name__ == "ToolsListChanged"
            assert "echo__listened" in {tool.name for tool in (await client.list_tools()).tools}
            with anyio.move_on_after(0.5) as quiet:
                await outsider_sub.__anext__()
            assert quiet.cancelled_caught, "a key without access to `echo` heard of its change"


async def test_modern_clients_get_log_messages_only_at_the_level_they_ask_for(
    hub_server: RunningHub, echo_http: str
) -> None:
    """On 2026-07-28, log messages are opt-in per request: the hub passes each request's level on to
    the upstream, which sends at that level and above, and nothing without it."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("lou"))
    for level, expected in (("info", ["said at info"]), ("warning", []), (None, [])):
        received: list[str] = []

        async def on_log(params: types.LoggingMessageNotificationParams, into: list[str] = received) -> None:
            into.append(str(params.data))

        async with modern_client(
            f"{hub_server.url}/mcp", key, log_level=level, logging_callback=on_log
        ) as client:
            assert text_of(await client.call_tool("echo__log", {"message": "said at info"})) == "logged"
            # Notifications are handled in tasks of their own: give them a moment either way.
            with anyio.move_on_after(2 if expected else 0.3):
                while len(received) <= len(expected):
                    await anyio.sleep(0.02)
        assert received == expected, level
