"""The hub's MCP endpoints with the Python SDK client: /mcp (aggregate, prefixed names), /mcp/{server}
(names unchanged) over streamable HTTP, and /sse, /mcp/{server}/sse over legacy SSE."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_hub.gateway import server as gateway_module
from tests.gateway.clients import result_of, shttp_session, sse_session, text_of
from tests.gateway.conftest import RunningHub
from tests.gateway.test_gateway_http_passthrough import call
from tests.gateway.test_gateway_robustness import open_raw_session


async def _user_key(hub: RunningHub, name: str = "alice", **key_fields: object) -> str:
    return await hub.add_key(await hub.add_user(name), **key_fields)


async def test_aggregate_endpoint_prefixes_and_routes(
    hub_server: RunningHub, echo_http: str, echo_sse: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    await hub_server.add_server("legacy", transport="sse", url=echo_sse)
    key = await _user_key(hub_server)
    async with shttp_session(f"{hub_server.url}/mcp", key) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"echo__echo", "echo__add", "legacy__echo", "legacy__add"} <= names
        assert all(len(name) <= 64 for name in names)
        assert text_of(await session.call_tool("echo__echo", {"text": "hi"})) == "hi"
        assert text_of(await session.call_tool("legacy__add", {"a": 1, "b": 2})) == "3"

        resources = {str(r.uri) for r in (await session.list_resources()).resources}
        assert {"mcp-hub://echo/fixture://greeting", "mcp-hub://legacy/fixture://greeting"} <= resources
        read = await session.read_resource("mcp-hub://legacy/fixture://greeting")
        assert read.contents[0].uri == "mcp-hub://legacy/fixture://greeting"
        assert isinstance(read.contents[0], types.TextResourceContents)
        assert read.contents[0].text == "hello from the fixture"

        templates = {t.uri_template for t in (await session.list_resource_templates()).resource_templates}
        assert "mcp-hub://echo/fixture://items/{item_id}" in templates
        item = await session.read_resource("mcp-hub://echo/fixture://items/42")
        assert isinstance(item.contents[0], types.TextResourceContents) and item.contents[0].text == "item 42"

        prompts = {p.name for p in (await session.list_prompts()).prompts}
        assert {"echo__greet", "legacy__greet"} <= prompts
        prompt = await session.get_prompt("echo__greet", {"name": "Ada"})
        content = prompt.messages[0].content
        assert isinstance(content, types.TextContent) and "Ada" in content.text

        with pytest.raises(MCPError, match="Unknown tool: echo__nope"):
            await session.call_tool("echo__nope", {})


async def test_single_server_endpoint_keeps_names(hub_server: RunningHub, echo_http: str) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await _user_key(hub_server)
    async with shttp_session(f"{hub_server.url}/mcp/echo", key) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"echo", "add", "whoami"} <= names and not any("__" in n for n in names)
        assert text_of(await session.call_tool("add", {"a": 20, "b": 22})) == "42"
        read = await session.read_resource("fixture://greeting")
        assert read.contents[0].uri == "fixture://greeting"


async def test_static_headers_go_upstream_and_the_hub_key_never_does(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server(
        "echo", transport="http", url=echo_http, headers={"X-Api-Key": "upstream-secret"}
    )
    key = await _user_key(hub_server)
    async with shttp_session(f"{hub_server.url}/mcp/echo", key) as session:
        seen = json.loads(text_of(await session.call_tool("whoami", {})))
    assert seen["x-api-key"] == "upstream-secret"
    assert key not in json.dumps(seen)
    assert "authorization" not in seen and "x-mcp-hub-key" not in seen


@pytest.mark.parametrize("path", ["/sse", "/mcp/echo/sse"])
async def test_legacy_sse_endpoints(hub_server: RunningHub, echo_http: str, path: str) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await _user_key(hub_server)
    async with sse_session(f"{hub_server.url}{path}", key) as session:
        tool = "echo" if path.startswith("/mcp/") else "echo__echo"
        assert tool in {t.name for t in (await session.list_tools()).tools}
        assert text_of(await session.call_tool(tool, {"text": "over sse"})) == "over sse"


async def test_names_too_long_for_64_characters_are_shortened_and_still_reach_their_tool(
    hub_server: RunningHub, echo_http: str
) -> None:
    """Two upstream tools whose prefixed names would pass 64 characters and share their first 64: each
    is listed under a distinct short name, which stays the same from one listing to the next and is
    routed (by lookup, not by splitting) to its own tool."""
    alias = "a_server_alias_of_thirty_two_chr"
    await hub_server.add_server(alias, transport="http", url=echo_http)
    key = await _user_key(hub_server)
    long_names = ["t" * 60 + "_one", "t" * 60 + "_two"]
    async with shttp_session(f"{hub_server.url}/mcp", key) as session:
        for name in long_names:
            assert text_of(await session.call_tool(f"{alias}__grow", {"name": name})) == f"added {name}"

        async def shortened() -> list[str]:
            return sorted(
                t.name for t in (await session.list_tools()).tools if t.name.startswith(f"{alias}__ttt")
            )

        with anyio.fail_after(5):
            while len(names := await shortened()) < 2:  # the hub relists on the upstream's list_changed
                await anyio.sleep(0.05)
        assert len(names) == 2 and all(len(name) <= 64 for name in names)
        assert await shortened() == names
        assert {text_of(await session.call_tool(name, {})) for name in names} == set(long_names)


async def test_stdio_upstream_through_the_hub(hub_server: RunningHub) -> None:
    await hub_server.add_stdio_echo("local", env={"FIXTURE_SECRET": "s3cret"})
    key = await _user_key(hub_server)
    async with shttp_session(f"{hub_server.url}/mcp", key) as session:
        assert text_of(await session.call_tool("local__env", {"name": "FIXTURE_SECRET"})) == "s3cret"
        first = text_of(await session.call_tool("local__pid", {}))
        assert text_of(await session.call_tool("local__pid", {})) == first  # one process, reused


@pytest.mark.parametrize("mode", ["2026-07-28", "auto", "legacy"])
async def test_protocol_revisions(hub_server: RunningHub, echo_http: str, mode: str) -> None:
    """The high-level SDK client negotiates each revision the SDK serves; the auth context reaches
    the handlers on the sessionless 2026-07-28 path too."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await _user_key(hub_server, allowed_tools=["echo"])
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(f"{hub_server.url}/mcp", http_client=http), mode=mode) as client,
    ):
        if mode != "legacy":
            assert client.session.protocol_version == "2026-07-28"
        assert {tool.name for tool in (await client.list_tools()).tools} == {"echo__echo"}
        assert text_of(await client.call_tool("echo__echo", {"text": mode})) == mode
        with pytest.raises(MCPError):
            await client.call_tool("echo__add", {"a": 1, "b": 2})


@pytest.mark.parametrize("path", ["/mcp", "/mcp/echo", "/mcp/local"])
async def test_a_2025_06_18_client(hub_server: RunningHub, echo_http: str, path: str) -> None:
    """The oldest revision the issue names, spoken by hand (the SDK's clients speak 2025-11-25 or
    2026-07-28): the hub agrees to it, then lists and calls on the terminating path (/mcp, a stdio
    upstream) and through the pass-through (/mcp/echo)."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    await hub_server.add_stdio_echo("local")
    key = await _user_key(hub_server)
    tool = "echo__echo" if path == "/mcp" else "echo"
    async with httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http:
        # Agreed to 2025-06-18 (asserted in open_raw_session), then initialized.
        session = await open_raw_session(http, path, key, version="2025-06-18")
        listed = result_of(await call(http, path, session, 2, "tools/list"), 2)
        assert tool in {t["name"] for t in listed["result"]["tools"]}
        called = result_of(
            await call(http, path, session, 3, "tools/call", {"name": tool, "arguments": {"text": "06-18"}}),
            3,
        )
        assert called["result"]["content"][0]["text"] == "06-18"


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18"])
async def test_the_memoized_aggregate_listing_is_what_the_sdk_would_send(
    hub_server: RunningHub, echo_http: str, version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An aggregate `tools/list` is answered from the hub's memo of its wire form (`_listing_shortcut`):
    the same answer, to the byte, as the SDK's own runner gives without the memo, also for params the
    runner refuses and for a cursor."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    await hub_server.add_stdio_echo("local")
    key = await _user_key(hub_server)
    gateway = hub_server.app.state.gateway.gateway
    params_cases: list[dict[str, object]] = [{}, {"cursor": "later"}, {"_meta": {"progressToken": 1.5}}]

    async def list_raw() -> list[bytes]:
        async with httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http:
            headers = await open_raw_session(http, "/mcp", key, version=version)
            bodies = []
            for params in params_cases:
                listing = {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": params}
                bodies.append((await http.post("/mcp", json=listing, headers=headers)).content)
            return bodies

    await list_raw()  # fills the listing cache and the memo
    memoized = await list_raw()
    gateway.server.middleware.remove(gateway._listing_shortcut)
    try:
        by_sdk = await list_raw()
    finally:
        gateway.server.middleware.append(gateway._listing_shortcut)
    assert memoized == by_sdk
    tools = {t["name"] for t in json.loads(memoized[0])["result"]["tools"]}
    assert {"echo__echo", "local__echo"} <= tools
    assert json.loads(memoized[2])["error"]["code"] == types.INVALID_PARAMS
    # The memo is used: listing again runs the sieve no more.
    sieve = gateway_module.serialize_server_result
    calls = 0

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return sieve(*args, **kwargs)

    monkeypatch.setattr(gateway_module, "serialize_server_result", counting)
    assert await list_raw() == by_sdk and calls == 0
