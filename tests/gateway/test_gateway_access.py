"""Who may reach what through the MCP endpoints: keys, server access modes, allowlists, and two users
on two sessions at once each seen as themselves."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from mcp_hub.auth import context
from mcp_hub.settings import Settings
from mcp_hub.upstream.credentials import ResolvedCredential
from mcp_hub.upstream.target import UpstreamTarget
from tests.gateway.clients import shttp_session, sse_session, text_of
from tests.gateway.conftest import RunningHub, serve_hub

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def post_init(hub: RunningHub, path: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=hub.url) as http:
        return await http.post(path, json=INIT, headers={**MCP_HEADERS, **(headers or {})})


async def tool_names(hub: RunningHub, path: str, key: str | None) -> set[str]:
    async with shttp_session(f"{hub.url}{path}", key) as session:
        return {tool.name for tool in (await session.list_tools()).tools}


async def test_missing_or_bad_key_is_401_with_www_authenticate(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    for path in ("/mcp", "/mcp/echo", "/sse", "/mcp/echo/sse"):
        for headers in ({}, {"Authorization": "Bearer mcph_not_a_real_key_0000000000000000000000"}):
            async with httpx2.AsyncClient(base_url=hub_server.url) as http:
                if path.endswith("sse"):
                    response = await http.get(path, headers=headers)
                else:
                    response = await http.post(path, json=INIT, headers={**MCP_HEADERS, **headers})
            assert response.status_code == 401, (path, headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")


async def test_hub_key_header_alternative(hub_server: RunningHub, echo_http: str) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("bob"))
    response = await post_init(hub_server, "/mcp/echo", {"x-mcp-hub-key": key})
    assert response.status_code == 200, response.text


async def test_key_server_allowlist(hub_server: RunningHub, echo_http: str) -> None:
    await hub_server.add_server("one", transport="http", url=echo_http)
    await hub_server.add_server("two", transport="http", url=echo_http)
    user = await hub_server.add_user("carol")
    key = await hub_server.add_key(user, allowed_servers=["one"])
    names = await tool_names(hub_server, "/mcp", key)
    assert "one__echo" in names and not any(name.startswith("two__") for name in names)
    assert (await post_init(hub_server, "/mcp/two", {"Authorization": f"Bearer {key}"})).status_code == 403
    assert (await post_init(hub_server, "/mcp/one", {"Authorization": f"Bearer {key}"})).status_code == 200
    async with shttp_session(f"{hub_server.url}/mcp", key) as session:
        with pytest.raises(MCPError, match="Unknown tool"):
            await session.call_tool("two__echo", {"text": "x"})


async def test_listed_users_public_and_disabled_servers(hub_server: RunningHub, echo_http: str) -> None:
    dave = await hub_server.add_user("dave")
    erin = await hub_server.add_user("erin")
    await hub_server.add_server(
        "shared", transport="http", url=echo_http, access="listed_users", allowed_users=[dave]
    )
    await hub_server.add_server("open", transport="http", url=echo_http, access="public")
    off = await hub_server.add_server("off", transport="http", url=echo_http)
    await hub_server.update_server(off["id"], enabled=False)
    dave_key, erin_key = await hub_server.add_key(dave), await hub_server.add_key(erin)

    dave_names, erin_names = (
        await tool_names(hub_server, "/mcp", dave_key),
        await tool_names(hub_server, "/mcp", erin_key),
    )
    assert "shared__echo" in dave_names and "open__echo" in dave_names
    assert "shared__echo" not in erin_names and "open__echo" in erin_names
    assert not any(name.startswith("off__") for name in dave_names | erin_names)
    assert (
        await post_init(hub_server, "/mcp/shared", {"Authorization": f"Bearer {erin_key}"})
    ).status_code == 403
    assert (
        await post_init(hub_server, "/mcp/off", {"Authorization": f"Bearer {dave_key}"})
    ).status_code == 404

    # A public server needs no key, on its own endpoint only.
    assert "echo" in await tool_names(hub_server, "/mcp/open", None)
    assert (await post_init(hub_server, "/mcp/shared")).status_code == 401
    assert (await post_init(hub_server, "/mcp")).status_code == 401


async def test_tool_allowlists_filter_listing_and_are_checked_on_call(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("limited", transport="http", url=echo_http, allowed_tools=["echo", "add"])
    user = await hub_server.add_user("frank")
    key = await hub_server.add_key(user, allowed_tools=["limited.echo"])
    assert await tool_names(hub_server, "/mcp/limited", key) == {"echo"}
    assert await tool_names(hub_server, "/mcp", key) == {"limited__echo"}
    async with shttp_session(f"{hub_server.url}/mcp/limited", key) as session:
        assert text_of(await session.call_tool("echo", {"text": "ok"})) == "ok"
        for blocked in ("add", "whoami"):
            with pytest.raises(MCPError, match="not allowed"):
                await session.call_tool(blocked, {"a": 1, "b": 2})


class PerUserToken:
    """A credential resolver giving each user their own upstream token (the seam the credential store
    fills), so the upstream shows which user a call ran as."""

    async def resolve(self, user_id: str | None, target: UpstreamTarget) -> ResolvedCredential:
        return ResolvedCredential(
            identity=f"user:{user_id}", headers={**target.headers, "Authorization": f"Bearer token-{user_id}"}
        )


# Every way a session reaches an upstream: the pass-through (/mcp/{server} on a streamable-HTTP
# upstream), and the SDK's session manager, whose handlers run in each session's own task (/mcp with
# its forwarded calls, /mcp/{server} on a stdio upstream, legacy SSE).
INTERLEAVED_PATHS = [
    pytest.param("http", "/mcp/echo", "", id="passthrough"),
    pytest.param("http", "/mcp", "echo__", id="aggregate"),
    pytest.param("stdio", "/mcp/echo", "", id="stdio"),
    pytest.param("http", "/sse", "echo__", id="sse"),
]


@pytest.mark.parametrize(("transport", "path", "prefix"), INTERLEAVED_PATHS)
async def test_two_users_interleaving_on_two_sessions_each_see_their_own_identity(
    hub_server: RunningHub, echo_http: str, transport: str, path: str, prefix: str
) -> None:
    """Handlers must take the identity from the request that carried the message, not from whoever
    opened the session's task or spoke last. Each user's key allows a different tool, so a handler that
    saw the other user would list or allow the wrong one; over HTTP the upstream also sees each user's
    own token."""
    if transport == "http":
        await hub_server.add_server("echo", transport="http", url=echo_http)
        hub_server.app.state.gateway.pool.resolver = PerUserToken()
    else:
        await hub_server.add_stdio_echo("echo")
    alice, bob = await hub_server.add_user("alice"), await hub_server.add_user("bob")
    alice_key = await hub_server.add_key(alice, allowed_tools=["echo", "whoami"])
    bob_key = await hub_server.add_key(bob, allowed_tools=["add", "whoami"])
    open_session = sse_session if path == "/sse" else shttp_session
    # On /mcp/{server} a tool the key may not use is refused; in an aggregate listing it does not exist.
    refused = "not allowed" if prefix == "" else "Unknown tool"
    async with (
        open_session(f"{hub_server.url}{path}", alice_key) as alice_session,
        open_session(f"{hub_server.url}{path}", bob_key) as bob_session,
    ):

        async def runs_as(session: ClientSession, user_id: str) -> None:
            if transport == "http":
                seen = json.loads(text_of(await session.call_tool(f"{prefix}whoami", {})))
                assert seen["authorization"] == f"Bearer token-{user_id}"

        async def as_alice(i: int) -> None:
            tools = {t.name for t in (await alice_session.list_tools()).tools}
            assert tools == {f"{prefix}echo", f"{prefix}whoami"}
            assert text_of(await alice_session.call_tool(f"{prefix}echo", {"text": f"a{i}"})) == f"a{i}"
            await runs_as(alice_session, alice)
            with pytest.raises(MCPError, match=refused):
                await alice_session.call_tool(f"{prefix}add", {"a": 1, "b": i})

        async def as_bob(i: int) -> None:
            tools = {t.name for t in (await bob_session.list_tools()).tools}
            assert tools == {f"{prefix}add", f"{prefix}whoami"}
            assert text_of(await bob_session.call_tool(f"{prefix}add", {"a": 1, "b": i})) == str(1 + i)
            await runs_as(bob_session, bob)
            with pytest.raises(MCPError, match=refused):
                await bob_session.call_tool(f"{prefix}echo", {"text": "b"})

        await asyncio.gather(*(f(i) for i in range(15) for f in (as_alice, as_bob)))


async def test_a_session_id_is_useless_with_another_users_key(hub_server: RunningHub, echo_http: str) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    alice_key = await hub_server.add_key(await hub_server.add_user("alice"))
    bob_key = await hub_server.add_key(await hub_server.add_user("bob"))
    opened = await post_init(hub_server, "/mcp/echo", {"Authorization": f"Bearer {alice_key}"})
    session_id = opened.headers["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    async with httpx2.AsyncClient(base_url=hub_server.url) as http:
        stolen = await http.post(
            "/mcp/echo",
            json=listing,
            headers={
                **MCP_HEADERS,
                "Authorization": f"Bearer {bob_key}",
                "mcp-session-id": session_id,
                "mcp-protocol-version": "2025-11-25",
            },
        )
    assert stolen.status_code == 404


@pytest.mark.parametrize("ttl", [0.0, 0.3])
async def test_revoked_key_stops_working_within_the_auth_cache_ttl(
    settings: Settings, echo_http: str, ttl: float
) -> None:
    async with serve_hub(settings.model_copy(update={"mcp_auth_cache_seconds": ttl})) as hub:
        await hub.add_server("echo", transport="http", url=echo_http)
        created = await hub.admin.post("/v1/keys", json={"user_id": await hub.add_user("rita")})
        key, key_id = created.json()["key"], created.json()["id"]
        headers = {"Authorization": f"Bearer {key}"}
        assert (await post_init(hub, "/mcp/echo", headers)).status_code == 200
        assert (await hub.admin.delete(f"/v1/keys/{key_id}")).status_code == 200
        await asyncio.sleep(ttl + 0.1)
        assert (await post_init(hub, "/mcp/echo", headers)).status_code == 401


async def test_admin_changes_apply_at_once_despite_the_auth_cache(settings: Settings, echo_http: str) -> None:
    # With a long authentication cache, what an admin changes through this hub still applies to the next
    # MCP request: a server added is listed, a key revoked is refused.
    async with serve_hub(settings.model_copy(update={"mcp_auth_cache_seconds": 300.0})) as hub:
        await hub.add_server("first", transport="http", url=echo_http)
        created = await hub.admin.post("/v1/keys", json={"user_id": await hub.add_user("rita")})
        key, key_id = created.json()["key"], created.json()["id"]
        assert {name.split("__")[0] for name in await tool_names(hub, "/mcp", key)} == {"first"}  # cached
        await hub.add_server("second", transport="http", url=echo_http)
        assert {name.split("__")[0] for name in await tool_names(hub, "/mcp", key)} == {"first", "second"}
        assert (await hub.admin.delete(f"/v1/keys/{key_id}")).status_code == 200
        assert (await post_init(hub, "/mcp", {"Authorization": f"Bearer {key}"})).status_code == 401


async def test_requests_that_miss_the_auth_cache_together_share_one_read(
    settings: Settings, echo_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Eight connections of one caller whose entry is missing (expired, or never read) cost one
    # authentication, not eight: each one was a database transaction, and under load the extra ones
    # opened new database connections. A failed read is shared by those that waited for it, and is not
    # kept for the next request.
    reads: list[str | None] = []
    extract = context.extract_mcp_auth_context

    async def slow_extract(request: Any, hub: Any = None) -> context.AuthContext:
        reads.append(context.presented_key(request))
        await asyncio.sleep(0.3)  # a slow database: every request below arrives while this one reads
        return await extract(request, hub)

    monkeypatch.setattr(context, "extract_mcp_auth_context", slow_extract)
    async with serve_hub(settings.model_copy(update={"mcp_auth_cache_seconds": 60.0})) as hub:
        await hub.add_server("echo", transport="http", url=echo_http)
        created = await hub.admin.post("/v1/keys", json={"user_id": await hub.add_user("rita")})
        key = created.json()["key"]
        burst = await asyncio.gather(
            *(post_init(hub, "/mcp/echo", {"Authorization": f"Bearer {key}"}) for _ in range(8))
        )
        assert [r.status_code for r in burst] == [200] * 8
        assert reads == [key]

        reads.clear()
        bad = {"Authorization": "Bearer mcph_not-a-key"}
        refused = await asyncio.gather(*(post_init(hub, "/mcp/echo", bad) for _ in range(4)))
        assert [r.status_code for r in refused] == [401] * 4
        assert all("WWW-Authenticate" in r.headers for r in refused)
        assert reads == ["mcph_not-a-key"]
        assert (await post_init(hub, "/mcp/echo", bad)).status_code == 401
        assert reads == ["mcph_not-a-key"] * 2
