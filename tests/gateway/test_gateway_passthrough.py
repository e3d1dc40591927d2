"""What passes through the hub between a client and an upstream: progress, logging, sampling,
elicitation, roots, cancellation, list_changed and resource subscriptions."""

from __future__ import annotations

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError

from tests.gateway.clients import sample_by_echo, shttp_session, sse_session, text_of
from tests.gateway.conftest import RunningHub


async def _setup(hub: RunningHub, echo_http: str) -> str:
    await hub.add_server("echo", transport="http", url=echo_http)
    return await hub.add_key(await hub.add_user("uma"))


async def test_progress_and_logging_reach_the_caller(hub_server: RunningHub, echo_http: str) -> None:
    key = await _setup(hub_server, echo_http)
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))

    async with shttp_session(f"{hub_server.url}/mcp", key, logging_callback=on_log) as session:
        await session.set_logging_level("debug")
        result = await session.call_tool("echo__progress", {"steps": 3}, progress_callback=on_progress)
        assert text_of(result) == "done"
        assert [p[0] for p in progress] == [1, 2, 3] and progress[-1][1] == 3 and progress[0][2] == "step 1"
        assert text_of(await session.call_tool("echo__log", {"message": "hello from upstream"})) == "logged"
        with anyio.fail_after(5):
            while "hello from upstream" not in logs:
                await anyio.sleep(0.02)


async def test_sampling_elicitation_and_roots_are_relayed_to_the_caller(
    hub_server: RunningHub, echo_http: str
) -> None:
    key = await _setup(hub_server, echo_http)

    async def elicitation(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"answer": "forty-two"})

    async def roots(context: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/project")])

    callbacks = {
        "sampling_callback": sample_by_echo,
        "elicitation_callback": elicitation,
        "list_roots_callback": roots,
    }
    for opener, url in ((shttp_session, f"{hub_server.url}/mcp"), (sse_session, f"{hub_server.url}/sse")):
        async with opener(url, key, **callbacks) as session:
            assert text_of(await session.call_tool("echo__sample", {"prompt": "hi"})) == "sampled: hi"
            assert (
                text_of(await session.call_tool("echo__ask", {"question": "meaning?"})) == "accept:forty-two"
            )
            assert text_of(await session.call_tool("echo__roots", {})) == "file:///work/project"


async def test_cancellation_reaches_the_upstream(hub_server: RunningHub, echo_http: str) -> None:
    key = await _setup(hub_server, echo_http)
    pool = hub_server.app.state.gateway.pool
    async with shttp_session(f"{hub_server.url}/mcp/echo", key) as session:
        assert text_of(await session.call_tool("echo", {"text": "warm"})) == "warm"
        with anyio.move_on_after(0.5):
            await session.call_tool("slow", {"seconds": 30})
        # The hub dropped the upstream call (and told the upstream) instead of waiting 30 s for it.
        with anyio.fail_after(5):
            while any(pooled.in_flight for pooled in pool.sessions()):
                await anyio.sleep(0.05)
        assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"


async def test_list_changed_and_resource_updates_reach_subscribed_clients(
    hub_server: RunningHub, echo_http: str
) -> None:
    key = await _setup(hub_server, echo_http)
    received: list[types.ServerNotification] = []

    async def on_message(message: types.ServerNotification | Exception) -> None:
        if not isinstance(message, Exception):
            received.append(message)

    async with shttp_session(f"{hub_server.url}/mcp", key, message_handler=on_message) as session:
        await session.list_tools()
        await session.subscribe_resource("mcp-hub://echo/fixture://greeting")
        assert text_of(await session.call_tool("echo__subscriptions", {})) == "fixture://greeting"
        assert text_of(await session.call_tool("echo__touch_tools", {})) == "notified"
        assert text_of(await session.call_tool("echo__touch_tools", {})) == "notified"
        assert (
            text_of(await session.call_tool("echo__touch_resource", {"uri": "fixture://greeting"}))
            == "notified"
        )
        with anyio.fail_after(5):
            while not (
                any(isinstance(m, types.ToolListChangedNotification) for m in received)
                and any(isinstance(m, types.ResourceUpdatedNotification) for m in received)
            ):
                await anyio.sleep(0.02)
        await anyio.sleep(0.5)
        # Two upstream changes in quick succession reach the client as one notification.
        assert sum(isinstance(m, types.ToolListChangedNotification) for m in received) == 1
        updates = [m for m in received if isinstance(m, types.ResourceUpdatedNotification)]
        assert [str(m.params.uri) for m in updates] == ["mcp-hub://echo/fixture://greeting"]
        await session.unsubscribe_resource("mcp-hub://echo/fixture://greeting")
        assert text_of(await session.call_tool("echo__subscriptions", {})) == ""


async def test_subscriptions_survive_an_upstream_restart(hub_server: RunningHub) -> None:
    await hub_server.add_stdio_echo("local")
    key = await hub_server.add_key(await hub_server.add_user("wes"))
    async with shttp_session(f"{hub_server.url}/mcp/local", key) as session:
        await session.subscribe_resource("fixture://greeting")
        assert text_of(await session.call_tool("subscriptions", {})) == "fixture://greeting"
        with pytest.raises(MCPError, match="closed the connection"):
            await session.call_tool("crash", {})
        # The new process was told about the subscription before serving anything.
        assert text_of(await session.call_tool("subscriptions", {})) == "fixture://greeting"
