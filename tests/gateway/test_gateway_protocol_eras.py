"""Where the hub terminates MCP (/mcp, and /mcp/{server} of a stdio upstream), each client reaches the
upstream in its own protocol revision: handshake clients (2025-11-25) on a session opened with
`initialize`, 2026-07-28 clients on one opened with `server/discover`, carrying their own capabilities
per request. An upstream that only speaks the handshake serves both on one session."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ResourceUpdated
from mcp.shared.exceptions import MCPError

from mcp_hub.gateway import listen as listen_module
from mcp_hub.upstream import pool as pool_module
from mcp_hub.upstream.pool import PooledSession
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
        await hub_server.add_stdio_echo("echo")
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
    await hub_server.add_stdio_echo("other")
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
        assert capabilities.resources is not None and capabilities.resources.subscribe
        async with (
            client.listen(tools_list_changed=True) as sub,
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


async def test_modern_clients_subscribe_to_resources_on_their_listen_stream(
    hub_server: RunningHub, echo_http: str
) -> None:
    """A 2026-07-28 client names resources in its listen request: the hub subscribes them upstream
    while the stream lasts, relays their updates under the names the client used, leaves out URIs the
    caller cannot reach, and unsubscribes upstream when the stream ends."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("uma"))
    greeting = "mcp-hub://echo/fixture://greeting"
    async with (
        modern_client(f"{hub_server.url}/mcp", key) as client,
        shttp_session(f"{hub_server.url}/mcp", key) as legacy,
    ):
        async with client.listen(resource_subscriptions=[greeting, "mcp-hub://nowhere/x"]) as sub:
            assert sub.honored.resource_subscriptions == [greeting]
            assert text_of(await legacy.call_tool("echo__subscriptions", {})) == "fixture://greeting"
            touched = await legacy.call_tool("echo__touch_resource", {"uri": "fixture://greeting"})
            assert text_of(touched) == "notified"
            with anyio.fail_after(5):
                event = await sub.__anext__()
            assert isinstance(event, ResourceUpdated) and event.uri == greeting
        with anyio.fail_after(5):
            while text_of(await legacy.call_tool("echo__subscriptions", {})) != "":
                await anyio.sleep(0.05)
        runtime = hub_server.app.state.gateway
        assert runtime.gateway._upstream_subscribers == {} and runtime.pool._pins == {}


async def test_a_listen_stream_given_up_while_subscribing_holds_nothing(
    hub_server: RunningHub, echo_http: str
) -> None:
    """A client that stops waiting for its acknowledgment (one upstream never answers the subscription)
    leaves no subscription held: not on the upstream that answered, not in the hub's books."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("una"))
    runtime = hub_server.app.state.gateway

    async def swallow(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            async for _ in stream:
                pass  # takes the request, never answers

    silent = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = silent.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(silent.serve, swallow)
        await hub_server.add_server("silent", transport="http", url=f"http://127.0.0.1:{port}/mcp")
        async with (
            modern_client(f"{hub_server.url}/mcp", key) as client,
            shttp_session(f"{hub_server.url}/mcp/echo", key) as direct,
        ):
            wanted = ["mcp-hub://echo/fixture://greeting", "mcp-hub://silent/x"]
            with anyio.move_on_after(2) as gave_up:
                async with client.listen(resource_subscriptions=wanted):
                    pass
            assert gave_up.cancelled_caught
            with anyio.fail_after(5):
                while runtime.gateway._upstream_subscribers or runtime.pool._pins:
                    await anyio.sleep(0.05)
            assert text_of(await direct.call_tool("subscriptions", {})) == ""
        tg.cancel_scope.cancel()


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


async def test_modern_clients_call_tools_whose_arguments_travel_in_headers(
    hub_server: RunningHub, echo_http: str
) -> None:
    """A 2026-07-28 upstream requires an Mcp-Param-* header for each argument a tool marks with
    `x-mcp-header`; the hub's client sends them because it lists tools through the SDK's `list_tools`."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("rae"))
    async with shttp_session(f"{hub_server.url}/mcp", key) as legacy:
        assert text_of(await legacy.call_tool("echo__regional", {"region": "eu"})) == "eu"
    async with modern_client(f"{hub_server.url}/mcp", key) as client:
        assert "echo__regional" in {tool.name for tool in (await client.list_tools()).tools}
        assert text_of(await client.call_tool("echo__regional", {"region": "eu"})) == "eu"


@pytest.mark.parametrize("path", ["/mcp", "/mcp/local"])
async def test_mcp_param_headers_that_disagree_with_the_arguments_are_refused(
    hub_server: RunningHub, path: str
) -> None:
    """The hub, as the 2026-07-28 server its clients talk to, checks their `Mcp-Param-*` headers against
    the arguments (the upstream only ever sees the hub's own headers): a mismatch or a missing header is
    HTTP 400 with HEADER_MISMATCH and never reaches the upstream; agreeing headers pass."""
    await hub_server.add_stdio_echo("local")
    key = await hub_server.add_key(await hub_server.add_user("rae"))
    tool = "local__regional" if path == "/mcp" else "regional"
    headers = {
        **auth_headers(key),
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"region": "eu"}, "_meta": meta},
    }
    async with httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http:
        for region in ("us", None):
            sent = {**headers, "Mcp-Param-Region": region} if region else headers
            refused = await http.post(path, json=body, headers=sent)
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["code"] == types.HEADER_MISMATCH
        agreed = await http.post(path, json=body, headers={**headers, "Mcp-Param-Region": "eu"})
        assert agreed.status_code == 200, agreed.text
        assert agreed.json()["result"]["content"][0]["text"] == "eu"


async def test_a_listen_stream_that_ends_at_once_is_retried_with_backoff(
    hub_server: RunningHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upstream (or a proxy before it) that acknowledges subscriptions/listen and ends the stream at
    once is not listened to again at the initial rate for ever: each new stream announces every list
    as changed (caches dropped, every client told)."""
    monkeypatch.setattr(pool_module, "LISTEN_RETRY_INITIAL_SECONDS", 0.05)
    await hub_server.add_server(
        "qc",
        transport="stdio",
        command=sys.executable,
        args=["-m", "tests.mcp_peers.quick_close_listen_server"],
    )
    key = await hub_server.add_key(await hub_server.add_user("zed"))
    pool = hub_server.app.state.gateway.pool
    seen: Counter[str] = Counter()
    inner = pool.sink

    async def counting(server_id: str, notification: types.ServerNotification) -> None:
        seen[type(notification).__name__] += 1
        await inner(server_id, notification)

    pool.sink = counting
    async with modern_client(f"{hub_server.url}/mcp", key) as client:
        await client.list_tools()
        await anyio.sleep(2)
    # Doubling from 0.05 s: about five new streams in two seconds, not forty.
    assert 1 <= seen["ToolListChangedNotification"] <= 8, dict(seen)


@requires_everything
async def test_a_session_that_falls_back_restores_the_handshake_subscriptions(hub_server: RunningHub) -> None:
    """A session opened for 2026-07-28 clients that falls back to the handshake becomes the handshake
    session, so it must carry the resource subscriptions handshake clients hold on that key."""
    await hub_server.add_server(
        "everything", transport="stdio", command="node", args=[str(NODE_EVERYTHING), "stdio"]
    )
    key = await hub_server.add_key(await hub_server.add_user("ivy"))
    pool = hub_server.app.state.gateway.pool
    restored_under: list[str] = []
    inner = pool.on_open

    async def recording(pooled: PooledSession, session: ClientSession) -> None:
        restored_under.append(pooled.key.era)
        await inner(pooled, session)

    pool.on_open = recording
    async with shttp_session(f"{hub_server.url}/mcp/everything", key) as legacy:
        uri = str((await legacy.list_resources()).resources[0].uri)
        await legacy.subscribe_resource(uri)
        (handshake,) = [p for p in pool.sessions() if p.target.name == "everything"]
        assert handshake.key.era == "handshake" and restored_under == ["handshake"]
        # The upstream process dies; the dead entry is swept before any handshake client comes back.
        handshake._on_stream_end()
        with anyio.fail_after(10):
            await handshake.done.wait()
        pool.reap_idle_now()
        await anyio.sleep(1.0)  # past the restart backoff
        async with modern_client(f"{hub_server.url}/mcp/everything", key) as client:
            await client.call_tool("echo", {"message": "hi"})
        (fallback,) = [p for p in pool.sessions() if p.target.name == "everything" and not p.dead]
        assert fallback.key == handshake.key
        assert restored_under[-1] == "handshake", restored_under


@requires_everything
async def test_a_second_session_to_a_handshake_only_upstream_is_closed_soon(
    hub_server: RunningHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "SUPERSEDED_GRACE_SECONDS", 0.2)
    await hub_server.add_server(
        "everything", transport="stdio", command="node", args=[str(NODE_EVERYTHING), "stdio"]
    )
    key = await hub_server.add_key(await hub_server.add_user("max"))
    pool = hub_server.app.state.gateway.pool
    async with shttp_session(f"{hub_server.url}/mcp/everything", key) as legacy:
        assert "first" in text_of(await legacy.call_tool("echo", {"message": "first"}))
        # A 2026-07-28 client while the handshake session is up: its own session falls back, serves
        # it, and is not kept for minutes as a second process.
        async with modern_client(f"{hub_server.url}/mcp/everything", key) as client:
            assert "second" in text_of(await client.call_tool("echo", {"message": "second"}))
        await anyio.sleep(0.3)
        pool.reap_idle_now()
        live = [p for p in pool.sessions() if p.target.name == "everything" and not p.dead]
        assert [p.key.era for p in live] == ["handshake"]
        assert "third" in text_of(await legacy.call_tool("echo", {"message": "third"}))


async def test_listen_streams_are_capped_per_caller_and_end_when_access_changes(
    hub_server: RunningHub, echo_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listen_module, "MAX_LISTENERS_PER_CALLER", 2)
    await hub_server.add_server("echo", transport="http", url=echo_http)
    user = await hub_server.add_user("kim")
    key, other = await hub_server.add_key(user), await hub_server.add_key(user)
    async with (
        modern_client(f"{hub_server.url}/mcp", key) as client,
        modern_client(f"{hub_server.url}/mcp", other) as neighbour,
        client.listen(tools_list_changed=True) as sub,
        client.listen(prompts_list_changed=True),
    ):
        with pytest.raises(MCPError, match="already holds 2 listen streams"):
            async with client.listen(tools_list_changed=True):
                pass
        async with neighbour.listen(tools_list_changed=True):
            pass  # another credential is not held back by this one
        # An admin change in this process: what the stream was opened under may no longer hold, so at
        # the next change it ends (gracefully; listening again authenticates again).
        await hub_server.add_user("someone-new")
        assert text_of(await client.call_tool("echo__grow", {"name": "after_change"})) == "added after_change"
        with anyio.fail_after(5):
            events = [event async for event in sub]
        assert events == []


@pytest.mark.parametrize(
    ("transport", "path", "prefix"),
    [
        ("http", "/mcp", "echo__"),
        ("http", "/mcp/echo", ""),
        ("stdio", "/mcp", "echo__"),
        ("stdio", "/mcp/echo", ""),
    ],
)
async def test_handshake_clients_get_log_messages_at_the_level_they_set(
    hub_server: RunningHub, echo_http: str, transport: str, path: str, prefix: str
) -> None:
    """Before 2026-07-28 a session sets its level with `logging/setLevel`: the hub passes it on to the
    upstream session its calls use, which then sends at that level and above."""
    if transport == "http":
        await hub_server.add_server("echo", transport="http", url=echo_http)
    else:
        await hub_server.add_stdio_echo("echo")
    key = await hub_server.add_key(await hub_server.add_user("lin"))
    received: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        received.append(str(params.data))

    async with shttp_session(f"{hub_server.url}{path}", key, logging_callback=on_log) as session:
        await session.set_logging_level("warning")
        assert text_of(await session.call_tool(f"{prefix}log", {"message": "below the level"})) == "logged"
        await anyio.sleep(0.3)  # notifications are handled in tasks of their own
        assert received == []
        await session.set_logging_level("info")
        assert text_of(await session.call_tool(f"{prefix}log", {"message": "at the level"})) == "logged"
        with anyio.fail_after(2):
            while not received:
                await anyio.sleep(0.02)
        assert received == ["at the level"]
