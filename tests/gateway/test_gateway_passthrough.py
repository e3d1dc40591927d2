"""What passes through the hub between a client and an upstream: progress, logging, sampling,
elicitation, roots, cancellation, list_changed and resource subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext, ClientSession, SamplingFnT
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.gateway.clients import auth_headers, sample_by_echo, shttp_session, sse_session, text_of
from tests.gateway.conftest import RunningHub
from tests.gateway.test_gateway_access import PerUserToken

MODERN = "2026-07-28"


async def _setup(hub: RunningHub, echo_http: str) -> str:
    await hub.add_server("echo", transport="http", url=echo_http)
    return await hub.add_key(await hub.add_user("uma"))


async def test_progress_and_logging_reach_the_caller(hub_server: RunningHub, echo_http: str) -> None:
    key = await _setup(hub_server, echo_http)
    reported: list[tuple[float, float | None, str | None]] = []
    logs: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total, message))

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))

    async with shttp_session(f"{hub_server.url}/mcp", key, logging_callback=on_log) as session:
        await session.set_logging_level("debug")
        result = await session.call_tool("echo__progress", {"steps": 3}, progress_callback=on_progress)
        assert text_of(result) == "done"
        assert [p[0] for p in reported] == [1, 2, 3] and reported[-1][1] == 3 and reported[0][2] == "step 1"
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


def sampling_as(name: str, seen: list[str]) -> SamplingFnT:
    """A sampling callback that records the prompts it was asked and answers `<name>: <prompt>`, a
    moment later (so that calls of other clients are in flight meanwhile)."""

    async def sample(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        prompt = params.messages[0].content
        assert isinstance(prompt, types.TextContent)
        seen.append(prompt.text)
        await anyio.sleep(0.05)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=f"{name}: {prompt.text}"), model="m"
        )

    return sample


@pytest.mark.parametrize("users", ["two-users", "one-user"])
async def test_upstream_requests_go_to_the_client_that_made_the_call(
    hub_server: RunningHub, echo_http: str, users: str
) -> None:
    """Two clients on /mcp call a tool that samples, several calls each, at once. The upstream's
    sampling request about a call reaches only the client that made it. Two users with credentials of
    their own have an upstream session each, so every call is answered by its own client. One user's two
    sessions share one upstream session, whose requests do not say which call they are about: a call
    is then answered by its own client or refused ("cannot relay"), never by the other client."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    alice = await hub_server.add_user("alice")
    if users == "two-users":
        hub_server.app.state.gateway.pool.resolver = PerUserToken()
        bob = await hub_server.add_user("bob")
    else:
        bob = alice
    alice_key, bob_key = await hub_server.add_key(alice), await hub_server.add_key(bob)
    seen: dict[str, list[str]] = {"alice": [], "bob": []}
    answers: dict[str, str] = {}
    url = f"{hub_server.url}/mcp"
    async with (
        shttp_session(url, alice_key, sampling_callback=sampling_as("alice", seen["alice"])) as alice_session,
        shttp_session(url, bob_key, sampling_callback=sampling_as("bob", seen["bob"])) as bob_session,
    ):
        sessions = {"alice": alice_session, "bob": bob_session}
        # One call each on its own: nothing else in flight, so the hub knows whom to ask.
        for name, session in sessions.items():
            assert text_of(await session.call_tool("echo__sample", {"prompt": f"{name}-alone"})) == (
                f"{name}: {name}-alone"
            )

        async def call(name: str, i: int) -> None:
            try:
                result = await sessions[name].call_tool("echo__sample", {"prompt": f"{name}-{i}"})
            except MCPError as exc:
                answers[f"{name}-{i}"] = exc.message
                return
            answers[f"{name}-{i}"] = text_of(result)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(5):
                    for name in sessions:
                        tg.start_soon(call, name, i)
    asked = {name: {f"{name}-{i}" for i in range(5)} for name in sessions}
    # Each callback was asked only about its own client's calls, each at most once.
    for name in sessions:
        assert set(seen[name]) <= asked[name] | {f"{name}-alone"}, seen
        assert len(seen[name]) == len(set(seen[name])), seen
    for prompt, answer in answers.items():
        name = prompt.split("-")[0]
        if users == "two-users" or prompt in seen[name]:
            assert answer == f"{name}: {prompt}", answers
        else:
            assert "cannot relay sampling/createMessage" in answer, answers
    if users == "two-users":
        assert all(set(seen[name]) == asked[name] | {f"{name}-alone"} for name in sessions), seen


@asynccontextmanager
async def modern_client(url: str, key: str | None) -> AsyncIterator[Client]:
    """The SDK's 2026-07-28 client, which cancels a call by closing its response."""
    http = httpx2.AsyncClient(headers=auth_headers(key), timeout=httpx2.Timeout(30, read=300))
    async with http, Client(streamable_http_client(url, http_client=http), mode=MODERN, cache=None) as client:
        yield client


OPENERS: dict[str, Callable[[str, str], AbstractAsyncContextManager[ClientSession | Client]]] = {
    "handshake": shttp_session,
    "sse": sse_session,
    "modern": modern_client,
}

# The terminating path: the hub's own SDK session serves the client and calls the upstream through a
# pooled session of its own, so a client's cancellation must become a cancel of the hub's upstream
# request. (Pass-through and forwarded calls: test_gateway_call_forward.py.)
CANCELLING_PATHS = [
    pytest.param("stdio", "/mcp/local", "", "handshake", id="stdio-server-endpoint"),
    pytest.param("stdio", "/mcp", "local__", "handshake", id="stdio-aggregate"),
    pytest.param("stdio", "/mcp/local", "", "modern", id="stdio-server-endpoint-modern"),
    pytest.param("stdio", "/mcp", "local__", "modern", id="stdio-aggregate-modern"),
    pytest.param("stdio", "/sse", "local__", "sse", id="stdio-sse"),
    pytest.param("http", "/sse", "local__", "sse", id="http-sse"),
]


@pytest.mark.parametrize(("transport", "path", "prefix", "client"), CANCELLING_PATHS)
async def test_cancellation_reaches_the_upstream(
    hub_server: RunningHub,
    request: pytest.FixtureRequest,
    transport: str,
    path: str,
    prefix: str,
    client: str,
) -> None:
    if transport == "stdio":
        await hub_server.add_stdio_echo("local")
    else:
        await hub_server.add_server("local", transport="http", url=request.getfixturevalue("echo_http"))
    key = await hub_server.add_key(await hub_server.add_user("uma"))
    tag = f"{transport}:{path}:{client}"
    async with OPENERS[client](f"{hub_server.url}{path}", key) as session:
        assert text_of(await session.call_tool(f"{prefix}echo", {"text": "warm"})) == "warm"
        with anyio.move_on_after(0.5) as gave_up:
            await session.call_tool(f"{prefix}wait_for_cancel", {"tag": tag})
        assert gave_up.cancelled_caught
        # The upstream's handler (which waits 60 s) was cancelled: the hub told the upstream, rather than
        # only ending its own handler and leaving the upstream's call running.
        with anyio.fail_after(5):
            while tag not in text_of(await session.call_tool(f"{prefix}cancelled", {})).split(","):
                await anyio.sleep(0.05)
        assert text_of(await session.call_tool(f"{prefix}echo", {"text": "after"})) == "after"
    # Nor does the hub hold its upstream session for the call it gave up.
    pooled = hub_server.app.state.gateway.pool.sessions()
    assert pooled and not any(upstream.in_flight for upstream in pooled)


async def arrived(received: list[types.ServerNotification], *kinds: type) -> None:
    """Waits (5 s at most) until `received` holds a notification of each of `kinds`."""
    with anyio.fail_after(5):
        while not all(any(isinstance(m, kind) for m in received) for kind in kinds):
            await anyio.sleep(0.02)


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
        await arrived(received, types.ToolListChangedNotification, types.ResourceUpdatedNotification)
        await anyio.sleep(0.5)
        # Two upstream changes in quick succession reach the client as one notification.
        assert sum(isinstance(m, types.ToolListChangedNotification) for m in received) == 1
        updates = [m for m in received if isinstance(m, types.ResourceUpdatedNotification)]
        assert [str(m.params.uri) for m in updates] == ["mcp-hub://echo/fixture://greeting"]
        await session.unsubscribe_resource("mcp-hub://echo/fixture://greeting")
        assert text_of(await session.call_tool("echo__subscriptions", {})) == ""


async def test_resource_and_prompt_list_changes_reach_clients_one_per_kind(
    hub_server: RunningHub, echo_http: str
) -> None:
    key = await _setup(hub_server, echo_http)
    received: list[types.ServerNotification] = []
    list_changes = (
        types.ToolListChangedNotification,
        types.ResourceListChangedNotification,
        types.PromptListChangedNotification,
    )

    async def on_message(message: types.ServerNotification | Exception) -> None:
        if isinstance(message, list_changes):
            received.append(message)

    async with shttp_session(f"{hub_server.url}/mcp", key, message_handler=on_message) as session:
        await session.list_tools()
        # Each call says twice in a row that its list changed.
        assert text_of(await session.call_tool("echo__touch_resources", {"times": 2})) == "notified"
        assert text_of(await session.call_tool("echo__touch_prompts", {"times": 2})) == "notified"
        await arrived(received, types.ResourceListChangedNotification, types.PromptListChangedNotification)
        await anyio.sleep(0.5)
        # Two changes in quick succession reach the client as one notification per kind, and each as
        # its own kind (a prompt change is no tool change).
        assert sorted(type(m).__name__ for m in received) == [
            "PromptListChangedNotification",
            "ResourceListChangedNotification",
        ]


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
