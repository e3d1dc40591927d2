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
async def modern_client(url: str, key: str) -> AsyncIterator[Client]:
    """The SDK's 2026-07-28 client (no sampling, elicitation or roots callbacks: it declares none)."""
    http = httpx2.AsyncClient(headers=auth_headers(key), timeout=httpx2.Timeout(30, read=300))
    async with http, Client(streamable_http_client(url, http_client=http), mode=MODERN, cache=None) as client:
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
