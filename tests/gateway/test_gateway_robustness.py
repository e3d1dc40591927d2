"""Bad input on the MCP endpoints, and upstreams that are dead, slow or die mid-call: each gets a clear
error, and the hub keeps serving everyone else."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcp_hub.settings import Settings
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
    opened = await http.post(
        path, json={**INIT, "params": {**INIT["params"], "protocolVersion": version}}, headers=headers
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


async def test_bad_input_gets_the_right_error_and_the_hub_keeps_serving(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("mallory"))
    async with (
        shttp_session(f"{hub_server.url}/mcp/echo", key) as bystander,
        httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http,
    ):
        headers = await open_raw_session(http, "/mcp/echo", key)

        malformed = await http.post(
            "/mcp/echo", content=b'{"jsonrpc": "2.0", "id": 1, "method": ', headers=headers
        )
        assert malformed.status_code == 400
        assert malformed.json()["error"]["code"] == -32700

        batch = await http.post(
            "/mcp/echo",
            json=[
                {"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
                {"jsonrpc": "2.0", "id": 8, "method": "ping"},
            ],
            headers=headers,
        )
        assert batch.status_code == 400

        wrong_version = await http.post(
            "/mcp/echo",
            json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
            headers={**headers, "mcp-protocol-version": "1999-01-01"},
        )
        assert wrong_version.status_code == 400

        # Absent, the header means the spec's default revision (2025-03-26), which is still served.
        no_version = {k: v for k, v in headers.items() if k != "mcp-protocol-version"}
        absent = await http.post(
            "/mcp/echo", json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"}, headers=no_version
        )
        assert absent.status_code == 200 and '"echo"' in absent.text

        unknown_session = await http.post(
            "/mcp/echo",
            json={"jsonrpc": "2.0", "id": 4, "method": "tools/list"},
            headers={**headers, "mcp-session-id": "0" * 32},
        )
        assert unknown_session.status_code == 404

        huge = await http.post(
            "/mcp/echo",
            content=b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"'
            + b"x" * (5 * 1024 * 1024)
            + b'"}}}',
            headers=headers,
        )
        assert huge.status_code == 413

        not_a_request = await http.post("/mcp/echo", json={"hello": "world"}, headers=headers)
        assert not_a_request.status_code == 400

        bad_host = await http.post(
            "/mcp/echo",
            json=INIT,
            headers={**MCP_HEADERS, "Authorization": f"Bearer {key}", "Host": "evil.example:80"},
        )
        assert bad_host.status_code == 421
        bad_origin = await http.post(
            "/mcp/echo",
            json=INIT,
            headers={**MCP_HEADERS, "Authorization": f"Bearer {key}", "Origin": "http://evil.example"},
        )
        assert bad_origin.status_code == 403

        # After all that, the same raw session and another client's session still work.
        listing = await http.post(
            "/mcp/echo", json={"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, headers=headers
        )
        assert listing.status_code == 200 and '"echo"' in listing.text
        assert text_of(await bystander.call_tool("echo", {"text": "still fine"})) == "still fine"

        # On /mcp/{server} these are the upstream's own answers, passed on unchanged.
        unknown = await bystander.call_tool("no_such_tool", {})
        assert unknown.is_error and "Unknown tool" in str(unknown.content)
        invalid = await bystander.call_tool("add", {"a": "not a number", "b": []})
        assert invalid.is_error
        assert text_of(await bystander.call_tool("add", {"a": 1, "b": 1})) == "2"


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
