"""A `tools/call` on `/mcp` to a streamable-HTTP upstream is forwarded as plain HTTP
(mcp_hub/gateway/call_forward.py): a 2026-07-28 call on its own, a 2025-11-25 call into the hub's
upstream session of its era; everything it cannot forward, or that fails a check, is served by the
terminating path as before.

How the tests tell the paths apart: the forwarded request carries the client's own headers (an
`x-trace` header here), which the terminating path never sends upstream, and the forwarder counts
what it sends."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_hub.gateway import call_forward
from mcp_hub.gateway.call_forward import _ResultEvents
from mcp_hub.settings import Settings
from tests.conformance.runner import fixture_http_server
from tests.gateway.clients import auth_headers, text_of
from tests.gateway.conftest import RunningHub, serve_hub
from tests.mcp_peers.procs import echo_upstream

MODERN = "2026-07-28"
TRACE = {"x-trace": "from-the-client"}


@asynccontextmanager
async def traced_client(url: str, key: str) -> AsyncIterator[Client]:
    """The SDK's 2026-07-28 client, sending one header of its own with every request."""
    http = httpx2.AsyncClient(headers={**auth_headers(key), **TRACE}, timeout=httpx2.Timeout(30, read=300))
    async with http, Client(streamable_http_client(url, http_client=http), mode=MODERN, cache=None) as client:
        yield client


async def seen_headers(client: Client | Any, tool: str = "echo__whoami") -> dict[str, str]:
    headers: dict[str, str] = json.loads(text_of(await client.call_tool(tool, {})))
    return headers


@asynccontextmanager
async def traced_session(url: str, key: str, **callbacks: Any) -> AsyncIterator[ClientSession]:
    """The SDK's 2025-11-25 client session, sending one header of its own with every request."""
    http = httpx2.AsyncClient(headers={**auth_headers(key), **TRACE}, timeout=httpx2.Timeout(30, read=300))
    async with (
        http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, **callbacks) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def forwarded(hub: RunningHub, calls: int = 1) -> AsyncIterator[None]:
    """Asserts that the block sent `calls` requests upstream through the forwarder."""
    forwarder = hub.app.state.gateway.forwarder
    before = forwarder.sent
    yield
    assert forwarder.sent - before == calls


async def cancelled_tags(client: Client | ClientSession | httpx2.AsyncClient, tool: str) -> list[str]:
    """The tags of the echo upstream's calls whose handlers were cancelled (its `cancelled` tool), asked
    through an SDK client or, on a raw session (`raw_session`), by a plain POST."""
    if isinstance(client, httpx2.AsyncClient):
        answer = events_of(await client.post("/mcp", json=call("tags", tool, {})))[-1]
        text: str = answer["result"]["content"][0]["text"]
        return text.split(",")
    return text_of(await client.call_tool(tool, {})).split(",")


async def upstream_cancelled(
    client: Client | ClientSession | httpx2.AsyncClient, tool: str, tag: str
) -> None:
    """Waits (5 s at most) until the echo upstream's handler for the call tagged `tag` was cancelled."""
    with anyio.fail_after(5):
        while tag not in await cancelled_tags(client, tool):
            await anyio.sleep(0.05)


@asynccontextmanager
async def user_session(
    hub: RunningHub, upstream_url: str, user: str, **server: Any
) -> AsyncIterator[ClientSession]:
    """A 2025-11-25 session on `/mcp` for a new user of the upstream `echo` at `upstream_url` (with
    `server`'s settings), with its tools listed (the hub knows the session and where its calls go)."""
    await hub.add_server("echo", transport="http", url=upstream_url, **server)
    key = await hub.add_key(await hub.add_user(user))
    async with traced_session(f"{hub.url}/mcp", key) as session:
        await session.list_tools()
        yield session


@asynccontextmanager
async def raw_session(
    hub: RunningHub, key: str, version: str = "2025-11-25"
) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client holding a session of revision `version` on `/mcp` (initialized, tools listed), to
    post JSON-RPC and read answers byte for byte."""
    headers = {
        **auth_headers(key),
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": version,
    }
    init = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    async with httpx2.AsyncClient(base_url=hub.url, headers=headers, timeout=30) as http:
        opened = await http.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}
        )
        http.headers["mcp-session-id"] = opened.headers["mcp-session-id"]
        await http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        await http.post("/mcp", json={"jsonrpc": "2.0", "id": "list", "method": "tools/list"})
        yield http


def call(request_id: Any, name: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, **params},
    }


def events_of(answer: Any) -> list[Any]:
    """The JSON-RPC messages of an answer, in order: those of an SSE stream, or its one JSON body."""
    if answer.headers["content-type"].startswith("application/json"):
        return [answer.json()]
    return [json.loads(line[5:]) for line in answer.text.splitlines() if line.startswith("data:")]


async def test_modern_calls_on_mcp_go_straight_to_the_upstream(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("fay"))
    async with traced_client(f"{hub_server.url}/mcp", key) as client:
        await client.list_tools()  # lists (cached) and opens the 2026-07-28 upstream session
        async with forwarded(hub_server):
            seen = await seen_headers(client)
        assert seen["x-trace"] == "from-the-client"
        # Named as the upstream knows the tool, in the body and in the routing header.
        assert seen["mcp-name"] == "whoami"
        assert seen["mcp-protocol-version"] == MODERN
        # The hub key stays in the hub.
        assert key not in json.dumps(seen)
        async with forwarded(hub_server, 2):
            assert text_of(await client.call_tool("echo__echo", {"text": "straight"})) == "straight"
            # Its argument travels in an Mcp-Param-Region header too, checked before forwarding.
            assert text_of(await client.call_tool("echo__regional", {"region": "eu-west"})) == "eu-west"
        # The upstream sees this client's declared capabilities (none), as on the terminating path.
        protocol = json.loads(text_of(await client.call_tool("echo__protocol", {})))
        assert protocol == {"version": MODERN, "capabilities": {}}
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("echo__nope", {})
    # The key in x-mcp-hub-key stays in the hub as well.
    http = httpx2.AsyncClient(headers={"x-mcp-hub-key": key, **TRACE}, timeout=30)
    async with (
        http,
        Client(streamable_http_client(f"{hub_server.url}/mcp", http_client=http), mode=MODERN) as other,
    ):
        async with forwarded(hub_server):
            seen = await seen_headers(other)
        assert seen["x-trace"] == "from-the-client" and key not in json.dumps(seen)


async def test_calls_the_hub_must_refuse_are_refused_before_the_upstream(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(
        await hub_server.add_user("gus"), allowed_tools=["echo.whoami", "echo.cancelled"]
    )
    async with traced_client(f"{hub_server.url}/mcp", key) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == {
            "echo__whoami",
            "echo__cancelled",
        }
        assert (await seen_headers(client))["x-trace"] == "from-the-client"
        with pytest.raises(MCPError, match="Unknown tool"):
            async with forwarded(hub_server, 0):
                await client.call_tool("echo__wait_for_cancel", {"tag": "not-allowed"})
        # Nothing reached the upstream: it would have remembered the tag once cancelled, and the call
        # would have hung until then.
        assert text_of(await client.call_tool("echo__cancelled", {})) == ""


@pytest.mark.parametrize("steps", [0, 2], ids=["json", "sse"])
async def test_forwarded_results_name_resources_by_their_hub_uris(
    hub_server: RunningHub, echo_http: str, steps: int
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("hal"))
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with traced_client(f"{hub_server.url}/mcp", key) as client:
        await client.list_tools()
        assert (await seen_headers(client))["x-trace"] == "from-the-client"
        async with forwarded(hub_server):
            result = await client.call_tool(
                "echo__link", {"uri": "fixture://greeting", "steps": steps}, progress_callback=on_progress
            )
        assert progress == [float(step) for step in range(1, steps + 1)]
        link, embedded = result.content
        assert isinstance(link, types.ResourceLink) and isinstance(embedded, types.EmbeddedResource)
        assert link.uri == embedded.resource.uri == "mcp-hub://echo/fixture://greeting"
        read = await client.read_resource(link.uri)
        assert [getattr(c, "text", None) for c in read.contents] == ["hello from the fixture"]


@pytest.mark.parametrize("path", ["/mcp", "/mcp/echo"], ids=["forwarded", "pass-through"])
async def test_a_modern_client_that_gives_up_cancels_the_upstream_call(
    hub_server: RunningHub, echo_http: str, path: str
) -> None:
    """A 2026-07-28 client cancels by closing its response: forwarded on /mcp or passed through on
    /mcp/{server}, the hub closes the upstream request, and the upstream's handler is cancelled."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("ivy"))
    prefix = "echo__" if path == "/mcp" else ""
    async with traced_client(f"{hub_server.url}{path}", key) as client:
        await client.list_tools()
        assert (await seen_headers(client, f"{prefix}whoami"))["x-trace"] == "from-the-client"
        async with forwarded(hub_server, 1 if path == "/mcp" else 0):
            with anyio.move_on_after(0.5) as gave_up:
                await client.call_tool(f"{prefix}wait_for_cancel", {"tag": path})
        assert gave_up.cancelled_caught
        await upstream_cancelled(client, f"{prefix}cancelled", path)


async def test_a_forwarded_call_past_the_deadline_gets_a_timeout_error(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http, timeout_seconds=1)
    key = await hub_server.add_key(await hub_server.add_user("joy"))
    async with traced_client(f"{hub_server.url}/mcp", key) as client:
        await client.list_tools()
        assert (await seen_headers(client))["x-trace"] == "from-the-client"
        with anyio.fail_after(10), pytest.raises(MCPError, match="did not answer within 1s") as raised:
            async with forwarded(hub_server):
                await client.call_tool("echo__slow", {"seconds": 5})
        assert raised.value.error.code == types.REQUEST_TIMEOUT
        assert text_of(await client.call_tool("echo__echo", {"text": "still here"})) == "still here"


async def test_input_required_rounds_are_forwarded_too(hub_server: RunningHub) -> None:
    """A 2026-07-28 upstream asks for input with an input-required result; the client answers by
    calling again with its responses and the upstream's request state. Both rounds are forwarded."""

    async def confirm(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"ok": True})

    with fixture_http_server() as url:
        await hub_server.add_server("fixture", transport="http", url=url)
        key = await hub_server.add_key(await hub_server.add_user("kim"))
        http = httpx2.AsyncClient(headers=auth_headers(key), timeout=httpx2.Timeout(30, read=300))
        transport = streamable_http_client(f"{hub_server.url}/mcp", http_client=http)
        async with http, Client(transport, mode=MODERN, cache=None, elicitation_callback=confirm) as client:
            await client.list_tools()
            async with forwarded(hub_server, 2):
                result = await client.call_tool("fixture__test_input_required_result_request_state", {})
            assert text_of(result) == "state-ok: confirmed=True"


async def test_broken_upstream_answers_become_errors_that_quote_nothing(
    hub_server: RunningHub, echo_http: str
) -> None:
    secret = "Bearer upstream-secret-0451"
    await hub_server.add_server("echo", transport="http", url=echo_http, headers={"Authorization": secret})
    key = await hub_server.add_key(await hub_server.add_user("lou"))
    async with traced_client(f"{hub_server.url}/mcp", key) as client:
        await client.list_tools()
        async with forwarded(hub_server, 2):
            with pytest.raises(MCPError, match="not JSON-RPC") as garbage:
                await client.call_tool("echo__garbage", {})
            with pytest.raises(MCPError, match=r"not JSON-RPC \(HTTP 500\)") as error_page:
                await client.call_tool("echo__http_error", {})
        for raised in (garbage, error_page):
            assert raised.value.error.code == types.INTERNAL_ERROR
            assert "upstream-secret" not in str(raised.value) and "<html>" not in str(raised.value)
        # The upstream is still served.
        assert text_of(await client.call_tool("echo__echo", {"text": "after"})) == "after"


async def test_handshake_calls_on_mcp_join_the_hubs_upstream_session(
    hub_server: RunningHub, echo_http: str
) -> None:
    """2025-11-25 clients share the hub's upstream session for their credential: their calls go into
    it under ids of the hub's (both clients here number their requests alike), and come back under
    their own, with the hub's session id."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("max"))
    url = f"{hub_server.url}/mcp"
    async with traced_session(url, key) as first, traced_session(url, key) as second:
        # The first call of a session the hub has not seen yet is served by the terminating path,
        # which opens the upstream session (and sends only the hub's own headers).
        async with forwarded(hub_server, 0):
            assert "x-trace" not in await seen_headers(first)
        await second.list_tools()
        async with forwarded(hub_server, 2):
            seen = await seen_headers(first)
            again = await seen_headers(second)
        assert seen["x-trace"] == again["x-trace"] == "from-the-client"
        assert seen["mcp-protocol-version"] == "2025-11-25"
        # Two hub sessions, one upstream session (the one the terminating path uses too).
        assert seen["mcp-session-id"] and seen["mcp-session-id"] == again["mcp-session-id"]
        assert key not in json.dumps(seen)
        texts = [f"{who}-{n}" for who in ("first", "second") for n in range(10)]
        answers: dict[str, str] = {}

        async def call(session: ClientSession, text: str) -> None:
            answers[text] = text_of(await session.call_tool("echo__echo", {"text": text}))

        async with forwarded(hub_server, len(texts)), anyio.create_task_group() as tg:
            for text in texts:
                tg.start_soon(call, first if text.startswith("first") else second, text)
        assert answers == {text: text for text in texts}
        with pytest.raises(MCPError, match="Unknown tool"):
            await first.call_tool("echo__nope", {})


async def test_a_forwarded_answer_names_the_hubs_session_and_the_clients_id(
    hub_server: RunningHub, echo_http: str
) -> None:
    """On the wire, as a client that reads every header sees it."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("rae"))
    async with raw_session(hub_server, key) as http:
        session_id = http.headers["mcp-session-id"]
        for request_id, steps in ((41, 0), ("forty-two", 2)):
            meta = {"_meta": {"progressToken": "mine"}} if steps else {}
            async with forwarded(hub_server):
                answer = await http.post(
                    "/mcp",
                    json=call(request_id, "echo__link", {"uri": "fixture://a", "steps": steps}, **meta),
                )
            assert answer.status_code == 200
            assert answer.headers["mcp-session-id"] == session_id
            # This upstream answers with an SSE stream; an answer with nothing before the response
            # reaches the client as that response's JSON, one with progress first as the stream.
            framing = "text/event-stream" if steps else "application/json"
            assert answer.headers["content-type"].startswith(framing)
            events = events_of(answer)
            assert [event.get("method") for event in events] == ["notifications/progress"] * steps + [None]
            assert all(event["params"]["progressToken"] == "mine" for event in events[:-1])
            message = events[-1]
            assert message["id"] == request_id
            assert message["result"]["content"][0]["uri"] == "mcp-hub://echo/fixture://a"
        # In the session the hub shares, the call's progress token is the hub's own id for the call
        # (another client's "mine" could be in flight there).
        async with forwarded(hub_server):
            answer = await http.post(
                "/mcp", json=call(7, "echo__progress_token", {}, _meta={"progressToken": "mine"})
            )
        (message,) = events_of(answer)
        assert json.loads(message["result"]["content"][0]["text"]).startswith("mcp-hub-")
        assert message["id"] == 7


async def test_handshake_calls_the_hub_cannot_forward_are_served_as_before(
    hub_server: RunningHub, echo_http: str
) -> None:
    """A session of a revision the hub's upstream session does not speak, an id the client reuses while
    its call is in flight, and a session the upstream has forgotten (404): each served by the
    terminating path, correctly."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("tam"))
    async with raw_session(hub_server, key, "2025-06-18") as older:
        async with forwarded(hub_server, 0):
            answer = await older.post("/mcp", json=call(1, "echo__echo", {"text": "older"}))
        assert events_of(answer)[-1]["result"]["content"][0]["text"] == "older"
    async with raw_session(hub_server, key) as http, anyio.create_task_group() as tg:
        await in_flight(hub_server, http, call(5, "echo__wait_for_cancel", {"tag": "reused"}), tg)
        async with forwarded(hub_server, 0):
            answer = await http.post("/mcp", json=call(5, "echo__echo", {"text": "same id"}))
        message = events_of(answer)[-1]
        assert message["id"] == 5 and message["result"]["content"][0]["text"] == "same id", message
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}}
        assert (await http.post("/mcp", json=cancel)).status_code == 202
        # A task outlives its call in the upstream session: task-augmented calls stay on the SDK's path.
        async with forwarded(hub_server, 0):
            answer = await http.post(
                "/mcp", json=call(6, "echo__echo", {"text": "task"}, task={"ttl": 60000})
            )
        assert events_of(answer)[-1]["id"] == 6
    # The upstream forgets the session the hub shares: the forwarded call meets a 404, and the
    # terminating path answers it (opening a new upstream session).
    async with raw_session(hub_server, key) as http:
        async with forwarded(hub_server):
            seen = events_of(await http.post("/mcp", json=call(1, "echo__whoami", {})))
        upstream_session = json.loads(seen[-1]["result"]["content"][0]["text"])["mcp-session-id"]
        async with httpx2.AsyncClient(timeout=10) as direct:
            gone = await direct.delete(
                echo_http, headers={"mcp-session-id": upstream_session, "mcp-protocol-version": "2025-11-25"}
            )
            assert gone.status_code == 200
        async with forwarded(hub_server):
            answer = await http.post("/mcp", json=call(2, "echo__echo", {"text": "after 404"}))
        assert events_of(answer)[-1]["result"]["content"][0]["text"] == "after 404"
        # The hub now has a new upstream session; once it has listed there, calls are forwarded again.
        seen = events_of(await http.post("/mcp", json=call(3, "echo__whoami", {})))
        renewed = json.loads(seen[-1]["result"]["content"][0]["text"])["mcp-session-id"]
        assert renewed != upstream_session
        async with forwarded(hub_server):
            seen = events_of(await http.post("/mcp", json=call(4, "echo__whoami", {})))
        assert json.loads(seen[-1]["result"]["content"][0]["text"])["mcp-session-id"] == renewed


async def test_a_handshake_answer_in_one_json_body_comes_back_under_the_clients_id(
    hub_server: RunningHub,
) -> None:
    with echo_upstream("http-json") as url:
        await hub_server.add_server("echo", transport="http", url=url)
        key = await hub_server.add_key(await hub_server.add_user("uma"))
        async with raw_session(hub_server, key) as http:
            for request_id in ("one", 2):
                async with forwarded(hub_server):
                    answer = await http.post(
                        "/mcp", json=call(request_id, "echo__link", {"uri": "fixture://j", "steps": 0})
                    )
                assert answer.headers["content-type"].startswith("application/json")
                assert answer.headers["mcp-session-id"] == http.headers["mcp-session-id"]
                message = answer.json()
                assert message["id"] == request_id
                assert message["result"]["content"][0]["uri"] == "mcp-hub://echo/fixture://j"
            async with forwarded(hub_server):
                answer = await http.post("/mcp", json=call(3, "echo__add", {"a": 1, "b": "x"}))
            assert answer.status_code == 200 and answer.json()["id"] == 3
            assert answer.json()["result"]["isError"] is True


async def test_handshake_calls_bring_progress_logs_and_hub_uris(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("ned"))
    progress: list[float] = []
    logged: list[Any] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params.data)

    async with traced_session(f"{hub_server.url}/mcp", key, logging_callback=on_log) as session:
        await session.list_tools()
        async with forwarded(hub_server, 2):
            result = await session.call_tool(
                "echo__link", {"uri": "fixture://greeting", "steps": 2}, progress_callback=on_progress
            )
            assert text_of(await session.call_tool("echo__log", {"message": "on the way"})) == "logged"
        assert progress == [1.0, 2.0]
        assert logged == ["on the way"]
        link, embedded = result.content
        assert isinstance(link, types.ResourceLink) and isinstance(embedded, types.EmbeddedResource)
        assert link.uri == embedded.resource.uri == "mcp-hub://echo/fixture://greeting"


async def test_a_handshake_client_that_cancels_cancels_the_upstream_call(
    hub_server: RunningHub, echo_http: str
) -> None:
    async with user_session(hub_server, echo_http, "oz") as session:
        async with forwarded(hub_server):
            with anyio.move_on_after(0.5) as gave_up:
                await session.call_tool("echo__wait_for_cancel", {"tag": "handshake"})
        assert gave_up.cancelled_caught
        await upstream_cancelled(session, "echo__cancelled", "handshake")
        assert text_of(await session.call_tool("echo__echo", {"text": "after"})) == "after"


async def in_flight(hub: RunningHub, http: httpx2.AsyncClient, request: dict[str, Any], tg: Any) -> None:
    """Posts `request` in the background and returns once the forwarder has sent it upstream."""
    forwarder = hub.app.state.gateway.forwarder
    before = forwarder.sent
    tg.start_soon(functools.partial(http.post, "/mcp", json=request))
    with anyio.fail_after(5):
        while forwarder.sent == before:
            await anyio.sleep(0.02)


async def test_a_cancel_reaches_only_the_call_of_the_session_that_sent_it(
    hub_server: RunningHub, echo_http: str
) -> None:
    """Two sessions share one upstream session and number their requests alike: a cancel for id 9 from
    one session cancels nothing of the other's call 9."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("vic"))
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}
    async with raw_session(hub_server, key) as owner, raw_session(hub_server, key) as other:
        async with anyio.create_task_group() as tg:
            await in_flight(hub_server, owner, call(9, "echo__wait_for_cancel", {"tag": "owned"}), tg)
            assert (await other.post("/mcp", json=cancel)).status_code == 202
            await anyio.sleep(0.3)
            assert "owned" not in await cancelled_tags(other, "echo__cancelled")
            # A request id JSON-RPC has no place for names no call (and breaks nothing).
            odd = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": [9]}}
            assert (await owner.post("/mcp", json=odd)).status_code < 500
            assert (await owner.post("/mcp", json=cancel)).status_code == 202
        await upstream_cancelled(other, "echo__cancelled", "owned")


async def test_a_handshake_call_past_the_deadline_is_cancelled_upstream(
    hub_server: RunningHub, echo_http: str
) -> None:
    async with user_session(hub_server, echo_http, "quin", timeout_seconds=1) as session:
        with anyio.fail_after(10), pytest.raises(MCPError, match="did not answer within 1s") as raised:
            async with forwarded(hub_server):
                await session.call_tool("echo__wait_for_cancel", {"tag": "past-deadline"})
        assert raised.value.error.code == types.REQUEST_TIMEOUT
        await upstream_cancelled(session, "echo__cancelled", "past-deadline")


async def test_upstream_requests_reach_only_clients_that_can_answer_them(
    hub_server: RunningHub, echo_http: str
) -> None:
    """A client that declared none of sampling, elicitation and roots has its calls forwarded. The
    upstream's request about the call (an elicitation, on the call's stream) is refused there as such
    a client refuses it; one on the session's own stream (this server's sampling) by the hub's pool,
    which has no client to ask. A client that declared one is served by the terminating path, which
    relays the request to it."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("pat"))
    url = f"{hub_server.url}/mcp"
    async with traced_session(url, key) as plain:
        await plain.list_tools()
        async with forwarded(hub_server, 2):
            with anyio.fail_after(10):
                with pytest.raises(MCPError, match="does not support 'elicitation/create'"):
                    await plain.call_tool("echo__ask", {"question": "sure?"})
                with pytest.raises(MCPError, match="cannot relay sampling/createMessage"):
                    await plain.call_tool("echo__sample", {"prompt": "hi"})
        assert text_of(await plain.call_tool("echo__echo", {"text": "after"})) == "after"

    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="sampled"), model="test"
        )

    async with traced_session(url, key, sampling_callback=sampling) as asking:
        await asking.list_tools()
        async with forwarded(hub_server, 0):
            assert text_of(await asking.call_tool("echo__sample", {"prompt": "hi"})) == "sampled"


async def test_a_handshake_call_whose_stream_the_upstream_closes_is_resumed_by_the_hub(
    hub_server: RunningHub,
) -> None:
    """A 2025-11-25 upstream may close a call's SSE stream and have the client reconnect with
    Last-Event-ID (SEP-1699). The event ids are the upstream session's, which the hub shares: the hub
    resumes the stream itself, and its client sees one stream with no event ids of the upstream's."""
    logged: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params.data)

    with fixture_http_server() as url:
        await hub_server.add_server("fixture", transport="http", url=url)
        key = await hub_server.add_key(await hub_server.add_user("sol"))
        async with traced_session(f"{hub_server.url}/mcp", key, logging_callback=on_log) as session:
            await session.list_tools()
            with anyio.fail_after(10):
                async with forwarded(hub_server):
                    result = await session.call_tool("fixture__test_reconnection", {})
            assert text_of(result) == "Reconnection test completed"
            assert [str(data) for data in logged] == ["Before disconnect", "After reconnect"]
        # On the wire: one stream, none of the upstream's event ids or retry intervals, no empty events.
        async with raw_session(hub_server, key) as http, forwarded(hub_server):
            answer = await http.post("/mcp", json=call("again", "fixture__test_reconnection", {}))
        assert not [line for line in answer.text.splitlines() if line.startswith(("id:", "retry:"))]
        assert "data: \n" not in answer.text.replace("\r\n", "\n") + "\n"
        messages = events_of(answer)
        assert [message.get("method") for message in messages] == ["notifications/message"] * 2 + [None], (
            answer.text
        )
        assert messages[-1]["id"] == "again"
        assert messages[-1]["result"]["content"][0]["text"] == "Reconnection test completed"


async def test_the_hub_gives_up_on_a_stream_closed_again_and_again_with_nothing_said(
    hub_server: RunningHub,
) -> None:
    """Two resumed streams in a row that bring no event with data, and the hub stops resuming: its client
    gets an error answer (MAX_EMPTY_RESUMES), not a stream that never ends."""
    with fixture_http_server() as url:
        await hub_server.add_server("fixture", transport="http", url=url)
        key = await hub_server.add_key(await hub_server.add_user("ted"))
        async with raw_session(hub_server, key) as http, forwarded(hub_server):
            with anyio.fail_after(10):
                answer = await http.post(
                    "/mcp", json=call("gone", "fixture__closes_its_stream_repeatedly", {})
                )
    (message,) = events_of(answer)
    assert message == {
        "jsonrpc": "2.0",
        "id": "gone",
        "error": {"code": -32603, "message": "upstream 'fixture' ended the stream without answering"},
    }


async def test_a_long_forwarded_call_keeps_its_upstream_session_from_the_idle_reaper(
    settings: Settings, echo_http: str
) -> None:
    """The hub closes upstream sessions idle for `upstream_idle_seconds`; one a forwarded call is in
    is not idle."""
    tuned = settings.model_copy(update={"upstream_idle_seconds": 0.3})
    async with serve_hub(tuned) as hub, user_session(hub, echo_http, "xan") as session:
        before = json.loads(text_of(await session.call_tool("echo__whoami", {})))["mcp-session-id"]
        async with forwarded(hub, 2):
            assert text_of(await session.call_tool("echo__slow", {"seconds": 1.2})) == "slept 1.2"
            after = json.loads(text_of(await session.call_tool("echo__whoami", {})))["mcp-session-id"]
        assert after == before


async def test_a_change_announced_on_a_calls_stream_reaches_the_hub(
    hub_server: RunningHub, echo_http: str
) -> None:
    """An upstream may say its tool list changed on the stream of the call that changed it. In the
    session the hub shares, that is news for the hub: its cached listing goes, and its clients hear
    of the change as the hub tells them (not as the upstream's raw notification on one call)."""
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            heard.set()

    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("wes"))
    async with traced_session(f"{hub_server.url}/mcp", key, message_handler=on_message) as session:
        assert "echo__sprouted" not in {tool.name for tool in (await session.list_tools()).tools}
        async with forwarded(hub_server):
            assert (
                text_of(await session.call_tool("echo__grow_here", {"name": "sprouted"})) == "added sprouted"
            )
        with anyio.fail_after(5):
            await heard.wait()
        assert "echo__sprouted" in {tool.name for tool in (await session.list_tools()).tools}
        assert text_of(await session.call_tool("echo__sprouted", {})) == "sprouted"


def sse_answer(end: bytes, result_uri: str) -> tuple[bytes, bytes]:
    """An SSE answer with `end` as its line end: a progress event, a comment, then the result event
    (naming `result_uri`). Also the bytes of everything before the result event."""
    before = (
        b"event: message"
        + end
        + b'data: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}'
        + end
        + end
        + b": ping"
        + end
        + end
    )
    result = {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {"content": [{"type": "resource_link", "name": "n", "uri": result_uri}]},
    }
    data = json.dumps(result, separators=(",", ":")).encode()
    return before + b"event: message" + end + b"id: 3" + end + b"data: " + data + end + end, before


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
def test_sse_answers_are_rewritten_whole_events_at_a_time(end: bytes) -> None:
    stream, before = sse_answer(end, "fixture://a")
    rewritten, _ = sse_answer(b"\r\n", "mcp-hub://echo/fixture://a")
    expected = before + rewritten[len(sse_answer(b"\r\n", "x")[1]) :]
    whole = _ResultEvents(7, "echo")
    assert whole.feed(stream) + whole.flush() == expected
    # Split anywhere into three (also between the CR and LF of a line end): the same bytes come out.
    for first in range(1, len(stream), 3):
        for second in range(first, len(stream), 7):
            events = _ResultEvents(7, "echo")
            out = (
                events.feed(stream[:first]) + events.feed(stream[first:second]) + events.feed(stream[second:])
            )
            assert out + events.flush() == expected, (first, second)
    # Another request's answer passes as it came; so does an event the upstream never finished.
    other = _ResultEvents(8, "echo")
    assert other.feed(stream) + other.flush() == stream
    unfinished = _ResultEvents(7, "echo")
    assert unfinished.feed(stream[:-2]) + unfinished.flush() == before + stream[len(before) : -2]


def test_an_event_too_large_to_hold_passes_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(call_forward, "MAX_ANSWER_BYTES", 64)
    stream, _ = sse_answer(b"\r\n", "fixture://" + "a" * 200)
    events = _ResultEvents(7, "echo")
    out = b"".join(events.feed(stream[i : i + 16]) for i in range(0, len(stream), 16)) + events.flush()
    assert out == stream
    # In a session the hub shares, the answer's id could not be put back in an event too large to hold:
    # the client gets one error answer in its place, and nothing of the event (here both events are).
    shared = _ResultEvents(7, "echo", upstream_id=7, session_side=lambda message: None)
    out = b"".join(shared.feed(stream[i : i + 16]) for i in range(0, len(stream), 16)) + shared.flush()
    (error,) = [json.loads(line[5:]) for line in out.splitlines() if line.startswith(b"data:")]
    assert error["id"] == 7 and "larger than 64 bytes" in error["error"]["message"]
    assert b"fixture://" not in out and b"progress" not in out
    assert shared.answered() and not shared.unanswered()
