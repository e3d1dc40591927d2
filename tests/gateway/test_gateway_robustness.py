"""Bad input on the MCP endpoints, and upstreams that are dead, slow or die mid-call: each gets a clear
error, and the hub keeps serving everyone else."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcp_hub.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.gateway.clients import result_of, shttp_session, sse_session, text_of
from tests.gateway.conftest import RunningHub, serve_hub
from tests.gateway.test_gateway_access import INIT, MCP_HEADERS
from tests.mcp_peers.procs import free_port, running


async def open_raw_session(
    http: httpx2.AsyncClient,
    path: str,
    key: str,
    extra: dict[str, str] | None = None,
    version: str = "2025-11-25",
) -> dict[str, str]:
    """Initializes a session by hand at protocol `version` (which the hub must agree to); returns the
    headers later requests need."""
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {key}", **(extra or {})}
    params = INIT["params"]
    assert isinstance(params, dict)
    opened = await http.post(
        path, json={**INIT, "params": {**params, "protocolVersion": version}}, headers=headers
    )
    assert opened.status_code == 200, opened.text
    assert result_of(opened, 1)["result"]["protocolVersion"] == version
    session_headers = {
        **headers,
        "mcp-session-id": opened.headers["mcp-session-id"],
        "mcp-protocol-version": version,
    }
    done = await http.post(
        path, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session_headers
    )
    assert done.status_code == 202
    return session_headers


# The tools each path serves, by the prefix a client calls them with. `/mcp/echo` is the pass-through
# (the streamable-HTTP upstream answers, its bytes forwarded); the rest is the terminating path (the
# hub's own session manager): `/mcp/local` for a stdio upstream, and the aggregate `/mcp`, whose `echo__`
# calls on a session the hub knows are forwarded by call_forward while `local__` calls are served by
# the hub's own session.
TOOL_PREFIXES = {"/mcp/echo": ("",), "/mcp": ("echo__", "local__"), "/mcp/local": ("",)}


def rpc_error(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC error of a JSON answer."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    assert "result" not in body, body
    error: dict[str, Any] = body["error"]
    return {**error, "id": body["id"]}


@pytest.mark.parametrize("path", list(TOOL_PREFIXES), ids=["pass-through", "aggregate", "stdio"])
async def test_bad_input_gets_the_right_error_and_the_hub_keeps_serving(
    hub_server: RunningHub, echo_http: str, path: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    await hub_server.add_stdio_echo("local")
    key = await hub_server.add_key(await hub_server.add_user("mallory"))
    prefixes = TOOL_PREFIXES[path]
    forwarder = hub_server.app.state.gateway.forwarder
    auth = {"Authorization": f"Bearer {key}"}
    with anyio.fail_after(90):
        async with (
            shttp_session(f"{hub_server.url}{path}", key) as bystander,
            httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http,
        ):
            # Used before the bad input (on /mcp this also opens the hub's upstream session, so the
            # bystander's later `echo__` calls are forwarded).
            for prefix in prefixes:
                assert text_of(await bystander.call_tool(f"{prefix}echo", {"text": "before"})) == "before"
            headers = await open_raw_session(http, path, key)

            malformed = await http.post(
                path, content=b'{"jsonrpc": "2.0", "id": 1, "method": ', headers=headers
            )
            assert malformed.status_code == 400
            error = rpc_error(malformed)
            assert error["code"] == types.PARSE_ERROR and error["id"] is None
            assert error["message"].startswith("Parse error: EOF while parsing")

            # Batches left JSON-RPC in 2025-06-18: one request object per POST.
            batch = await http.post(
                path,
                json=[
                    {"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
                    {"jsonrpc": "2.0", "id": 8, "method": "ping"},
                ],
                headers=headers,
            )
            assert batch.status_code == 400
            error = rpc_error(batch)
            assert error["code"] == types.INVALID_PARAMS and error["id"] is None
            assert "Input should be a valid dictionary" in error["message"]

            not_a_request = await http.post(path, json={"hello": "world"}, headers=headers)
            assert not_a_request.status_code == 400
            assert rpc_error(not_a_request)["code"] == types.INVALID_PARAMS

            # A version the hub does not speak, with and without the envelope a 2026-07-28 request
            # carries. The hub's own server answers both alike, naming every version it speaks in the message (the
            # SDK would send both to its 2026-07-28 entry, which asks the first for that envelope).
            # On the pass-through that is the upstream's answer to give.
            envelope = {
                "io.modelcontextprotocol/protocolVersion": "1999-01-01",
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            for request_id, params in ((3, {}), (10, {"_meta": envelope})):
                wrong_version = await http.post(
                    path,
                    json={"jsonrpc": "2.0", "id": request_id, "method": "tools/list", "params": params},
                    headers={**headers, "mcp-protocol-version": "1999-01-01", "mcp-method": "tools/list"},
                )
                assert wrong_version.status_code == 400
                error = rpc_error(wrong_version)
                assert error["id"] == request_id
                if path == "/mcp/echo" and not params:
                    assert error["code"] == types.INVALID_PARAMS
                    assert "'io.modelcontextprotocol/protocolVersion'" in error["message"]
                    continue
                assert error["code"] == types.UNSUPPORTED_PROTOCOL_VERSION
                assert error["data"]["requested"] == "1999-01-01"
                # What a 2026-07-28 client may retry with (as `server/discover` lists it).
                assert error["data"]["supported"] == ["2026-07-28"]
                if path != "/mcp/echo":
                    assert error["message"] == (
                        "unsupported MCP-Protocol-Version '1999-01-01': this hub speaks 2026-07-28, and "
                        "2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25 after an initialize handshake"
                    )

            # Absent, the header means the spec's default revision (2025-03-26), which is still served.
            no_version = {k: v for k, v in headers.items() if k != "mcp-protocol-version"}
            absent = await http.post(
                path, json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"}, headers=no_version
            )
            assert absent.status_code == 200 and f'"{prefixes[0]}echo"' in absent.text

            unknown_session = await http.post(
                path,
                json={"jsonrpc": "2.0", "id": 4, "method": "tools/list"},
                headers={**headers, "mcp-session-id": "0" * 32},
            )
            assert unknown_session.status_code == 404
            error = rpc_error(unknown_session)
            assert error["code"] == types.INVALID_REQUEST and error["message"] == "Session not found"

            huge = await http.post(
                path,
                content=b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"'
                + f"{prefixes[0]}echo".encode()
                + b'","arguments":{"text":"'
                + b"x" * (5 * 1024 * 1024)
                + b'"}}}',
                headers=headers,
            )
            assert huge.status_code == 413 and huge.text == "Request body too large"

            # DNS-rebinding protection, on a new session and on one that is open.
            ping = {"jsonrpc": "2.0", "id": 11, "method": "ping"}
            for refused_headers, request in (({**MCP_HEADERS, **auth}, INIT), (headers, ping)):
                bad_host = await http.post(
                    path, json=request, headers={**refused_headers, "Host": "evil.example:80"}
                )
                assert bad_host.status_code == 421 and bad_host.text == "Invalid Host header"
                bad_origin = await http.post(
                    path, json=request, headers={**refused_headers, "Origin": "http://evil.example"}
                )
                assert bad_origin.status_code == 403 and bad_origin.text == "Invalid Origin header"

            # After all that, the same raw session and the session opened before still work...
            listing = await http.post(
                path, json={"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, headers=headers
            )
            assert listing.status_code == 200
            listed = {tool["name"] for tool in result_of(listing, 6)["result"]["tools"]}
            assert {f"{prefix}echo" for prefix in prefixes} <= listed
            sent_before = forwarder.sent
            for prefix in prefixes:
                assert (
                    text_of(await bystander.call_tool(f"{prefix}echo", {"text": "still fine"}))
                    == "still fine"
                )

                # ...and tools that fail get an answer a person can act on: arguments that do not match
                # the schema are the upstream's own isError result, however the call got there...
                invalid = await bystander.call_tool(f"{prefix}add", {"a": "not a number", "b": []})
                assert invalid.is_error
                assert "Input should be a valid integer" in str(invalid.content)
                assert text_of(await bystander.call_tool(f"{prefix}add", {"a": 1, "b": 1})) == "2"

            # ...the aggregate's own calls (`echo__`) went through call_forward...
            assert forwarder.sent - sent_before == (3 if path == "/mcp" else 0)

            # ...and an unknown tool: the aggregate's catalog refuses it with the spec's protocol error;
            # on /mcp/{server} the upstream answers with an isError result.
            if path == "/mcp":
                with pytest.raises(MCPError, match=r"^Unknown tool: no_such_tool$") as raised:
                    await bystander.call_tool("no_such_tool", {})
                assert raised.value.code == types.INVALID_PARAMS
            else:
                unknown = await bystander.call_tool("no_such_tool", {})
                assert unknown.is_error and "Unknown tool: no_such_tool" in str(unknown.content)

        # A session opened after the bad input works too.
        async with shttp_session(f"{hub_server.url}{path}", key) as newcomer:
            for prefix in prefixes:
                assert text_of(await newcomer.call_tool(f"{prefix}echo", {"text": "new"})) == "new"


async def test_stdio_upstream_dying_mid_call(hub_server: RunningHub) -> None:
    await hub_server.add_stdio_echo("fragile")
    key = await hub_server.add_key(await hub_server.add_user("oscar"))
    async with shttp_session(f"{hub_server.url}/mcp/fragile", key) as session:
        first_pid = text_of(await session.call_tool("pid", {}))
        with pytest.raises(MCPError, match="closed the connection"):
            await session.call_tool("crash", {})
        # The next call is served by a fresh process (after a short backoff).
        second_pid = text_of(await session.call_tool("pid", {}))
        assert second_pid != first_pid
        assert text_of(await session.call_tool("echo", {"text": "back"})) == "back"


class Blackhole:
    """Accepts TCP connections and never answers: an upstream that hangs."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def _accept(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *_exc: object) -> None:
        for writer in self.writers:
            writer.close()
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def hub_with_short_deadlines(settings: Settings) -> AsyncIterator[RunningHub]:
    fast = settings.model_copy(
        update={
            "upstream_list_deadline_seconds": 1.0,
            "upstream_connect_timeout_seconds": 1.0,
            "upstream_timeout_seconds": 2.0,
        }
    )
    async with serve_hub(fast) as running:
        yield running


async def test_fail_open_listing_and_calls(hub_with_short_deadlines: RunningHub, echo_http: str) -> None:
    hub = hub_with_short_deadlines
    async with Blackhole() as hang_port:
        await hub.add_server("good", transport="http", url=echo_http)
        await hub.add_server("refused", transport="http", url="http://127.0.0.1:9/mcp")
        await hub.add_server("hanging", transport="http", url=f"http://127.0.0.1:{hang_port}/mcp")
        key = await hub.add_key(await hub.add_user("pat"))
        async with shttp_session(f"{hub.url}/mcp", key) as session:
            started = time.monotonic()
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert time.monotonic() - started < 3
            assert "good__echo" in names
            assert not any(name.startswith(("refused__", "hanging__")) for name in names)
            assert text_of(await session.call_tool("good__echo", {"text": "alive"})) == "alive"
            resources = {str(r.uri) for r in (await session.list_resources()).resources}
            assert "mcp-hub://good/fixture://greeting" in resources
        # The terminating path (legacy SSE): the hub answers initialize itself, calls fail.
        async with sse_session(f"{hub.url}/mcp/hanging/sse", key) as session:
            started = time.monotonic()
            with pytest.raises(MCPError, match="hanging"):
                await session.list_tools()
            assert time.monotonic() - started < 4
        async with sse_session(f"{hub.url}/mcp/refused/sse", key) as session:
            with pytest.raises(MCPError, match="cannot connect to upstream 'refused'"):
                await session.call_tool("echo", {"text": "x"})
        # The pass-through (streamable HTTP): the client's own initialize reaches the upstream, so that
        # is what fails, with a JSON-RPC error and a gateway status.
        async with httpx2.AsyncClient(base_url=hub.url, timeout=30) as http:
            headers = {**MCP_HEADERS, "Authorization": f"Bearer {key}"}
            hanging = await http.post("/mcp/hanging", json=INIT, headers=headers)
            assert hanging.status_code == 504
            assert hanging.json()["error"]["message"] == "upstream 'hanging' did not answer within 2s"
            assert hanging.json()["id"] == INIT["id"]
            refused = await http.post("/mcp/refused", json=INIT, headers=headers)
            assert refused.status_code == 502
            assert refused.json()["error"]["message"] == "cannot connect to upstream 'refused'"


async def test_the_aggregate_listing_logs_which_upstream_failed(
    hub_with_short_deadlines: RunningHub, echo_http: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Fail open is not fail silent: the operator's log names each upstream left out of a listing on
    `/mcp` and why, and carries none of the secrets the hub holds for the caller or the upstream."""
    hub = hub_with_short_deadlines
    url_secret = "url-secret-5c1d"
    header_secret = "header-secret-9e7f"
    async with Blackhole() as hang_port:
        await hub.add_server("good", transport="http", url=echo_http)
        await hub.add_server(
            "refused",
            transport="http",
            url=f"http://127.0.0.1:9/mcp?sig={url_secret}",
            headers={"Authorization": f"Bearer {header_secret}"},
        )
        await hub.add_server("hanging", transport="http", url=f"http://127.0.0.1:{hang_port}/mcp")
        key = await hub.add_key(await hub.add_user("lou"))
        # Everything the process logs while it lists, from every logger, for the secrets check.
        caplog.set_level(logging.DEBUG)
        with anyio.fail_after(30):
            async with shttp_session(f"{hub.url}/mcp", key) as session:
                names = {tool.name for tool in (await session.list_tools()).tools}
        assert "good__echo" in names
        assert not any(name.startswith(("refused__", "hanging__")) for name in names)
    failures = [
        record.getMessage()
        for record in caplog.records
        if record.name == "mcp_hub.gateway.server" and record.levelno == logging.WARNING
    ]
    refused = [line for line in failures if "upstream refused" in line]
    assert refused and refused[0].startswith(
        "listing tools of upstream refused failed: cannot connect to upstream 'refused': "
    ), failures
    hanging = [line for line in failures if "upstream hanging" in line]
    assert hanging == [
        "listing tools of upstream hanging failed: upstream 'hanging' did not answer within 1s"
    ], failures
    assert not any("upstream good" in line for line in failures), failures
    logged = caplog.text
    for secret in (key, url_secret, header_secret, ADMIN_KEY):
        assert secret not in logged


async def test_slow_tool_hits_the_per_server_deadline(hub_server: RunningHub, echo_http: str) -> None:
    await hub_server.add_server("slowpoke", transport="http", url=echo_http, timeout_seconds=0.5)
    key = await hub_server.add_key(await hub_server.add_user("quinn"))
    async with shttp_session(f"{hub_server.url}/mcp/slowpoke", key) as session:
        started = time.monotonic()
        with pytest.raises(MCPError, match=r"did not answer within 0\.5s"):
            await session.call_tool("slow", {"seconds": 10})
        assert time.monotonic() - started < 3
        assert text_of(await session.call_tool("echo", {"text": "next"})) == "next"


async def test_sse_message_endpoint_caps_bodies_and_checks_the_session_owner(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("sam"))
    other = await hub_server.add_key(await hub_server.add_user("tim"))
    async with (
        httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http,
        http.stream("GET", "/sse", headers={"Authorization": f"Bearer {key}"}) as stream,
    ):
        # Read by hand: leaving an `async for` over the lines would close the stream, and with it the
        # SSE session.
        lines = stream.aiter_lines()
        line = ""
        while not line.startswith("data: "):
            line = await anext(lines)
        endpoint = line.removeprefix("data: ")
        assert endpoint.startswith("/sse/messages/?session_id=")
        huge = await http.post(
            endpoint,
            content=b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"'
            + b"x" * (5 * 1024 * 1024)
            + b'"}}',
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert huge.status_code == 413
        hijack = await http.post(
            endpoint,
            json=INIT,
            headers={"Authorization": f"Bearer {other}", "Content-Type": "application/json"},
        )
        assert hijack.status_code == 404
        own = await http.post(
            endpoint,
            json=INIT,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert own.status_code == 202, own.text
        # DNS-rebinding protection on the message endpoint too: a page on another origin, or reached
        # under another host name, cannot post into a session it learned of.
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        rebound = await http.post(endpoint, json=INIT, headers={**auth, "Host": "evil.example:80"})
        assert rebound.status_code == 421
        cross_site = await http.post(endpoint, json=INIT, headers={**auth, "Origin": "http://evil.example"})
        assert cross_site.status_code == 403


@pytest.mark.parametrize("path", ["/sse", "/mcp/echo/sse"])
async def test_sse_streams_check_host_and_origin(hub_server: RunningHub, echo_http: str, path: str) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    auth = {"Authorization": f"Bearer {await hub_server.add_key(await hub_server.add_user('sid'))}"}
    async with httpx2.AsyncClient(base_url=hub_server.url, timeout=10) as http:
        rebound = await http.get(path, headers={**auth, "Host": "evil.example:80"})
        assert rebound.status_code == 421 and "Invalid Host header" in rebound.text
        cross_site = await http.get(path, headers={**auth, "Origin": "http://evil.example"})
        assert cross_site.status_code == 403 and "Invalid Origin header" in cross_site.text
        # The hub's own origin is welcome.
        async with http.stream("GET", path, headers={**auth, "Origin": hub_server.url}) as own:
            assert own.status_code == 200


async def test_upstream_answering_garbage(hub_with_short_deadlines: RunningHub, echo_http: str) -> None:
    hub = hub_with_short_deadlines
    port = free_port()
    with running([sys.executable, "-m", "tests.mcp_peers.garbage_server", str(port)], port):
        await hub.add_server("garbage", transport="http", url=f"http://127.0.0.1:{port}/mcp")
        await hub.add_server("good", transport="http", url=echo_http)
        key = await hub.add_key(await hub.add_user("gus"))
        # The terminating path checks what it re-issues (legacy SSE endpoint of the same server).
        async with sse_session(f"{hub.url}/mcp/garbage/sse", key) as session:
            with pytest.raises(MCPError, match="answered with an invalid result"):
                await session.list_tools()
            for tool, error in (("not_json", "not JSON-RPC"), ("hang_up", "closed the connection")):
                started = time.monotonic()
                with pytest.raises(MCPError, match=f"upstream 'garbage' .*{error}"):
                    await session.call_tool(tool, {})
                assert time.monotonic() - started < 4  # within the 2 s upstream deadline, plus slack
        # The pass-through forwards the upstream's bytes; the client's SDK rejects the garbage itself,
        # and an upstream that hangs up mid-stream still yields an answer to the request.
        async with shttp_session(f"{hub.url}/mcp/garbage", key) as session:
            with pytest.raises(ValidationError):
                await session.list_tools()
            with pytest.raises(MCPError, match="Failed to parse JSON"):
                await session.call_tool("not_json", {})
            with pytest.raises(
                MCPError, match=r"Failed to parse SSE|upstream 'garbage' closed the connection"
            ):
                await session.call_tool("hang_up", {})
        async with shttp_session(f"{hub.url}/mcp", key) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert "good__echo" in names and not any(n.startswith("garbage__") for n in names)
            assert text_of(await session.call_tool("good__echo", {"text": "fine"})) == "fine"
