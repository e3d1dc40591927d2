"""The real resolver wired into the gateway: each user's own BYOK key reaches the upstream, a user who has
not connected gets an MCP error naming where to connect, and no one gets another user's key."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError, UrlElicitationRequiredError

from tests.gateway.clients import shttp_session, text_of
from tests.gateway.conftest import RunningHub


async def test_each_user_calls_upstream_with_their_own_byok_key(
    hub_server: RunningHub, echo_http: str
) -> None:
    server = await hub_server.add_server(
        "echo",
        transport="http",
        url=echo_http,
        auth_type="byok",
        byok_mode="header",
        byok_name="X-Api-Key",
        byok_template="key={key}",
    )
    alice, bob, carol = [await hub_server.add_user(n) for n in ("alice", "bob", "carol")]
    keys = {user: await hub_server.add_key(user) for user in (alice, bob, carol)}
    for user, secret in ((alice, "alice-secret"), (bob, "bob-secret")):
        response = await hub_server.admin.put(
            f"/v1/servers/{server['id']}/credential",
            json={"key": secret},
            headers={"Authorization": f"Bearer {keys[user]}"},
        )
        assert response.status_code == 200, response.text
        assert secret not in response.text

    seen = {}
    for user in (alice, bob):
        async with shttp_session(f"{hub_server.url}/mcp/echo", keys[user]) as session:
            seen[user] = json.loads(text_of(await session.call_tool("whoami", {})))
        async with shttp_session(f"{hub_server.url}/mcp", keys[user]) as session:
            again = json.loads(text_of(await session.call_tool("echo__whoami", {})))
            assert again["x-api-key"] == seen[user]["x-api-key"]
    assert seen[alice]["x-api-key"] == "key=alice-secret"
    assert seen[bob]["x-api-key"] == "key=bob-secret"
    # The caller's hub key never goes upstream.
    assert all(keys[user] not in json.dumps(seen[user]) for user in (alice, bob))

    # Carol has not connected: the server stays visible as one `connect` tool naming where to connect,
    # its real tools fail with an MCP error naming the same URL, and nobody else's key is used.
    connect_url = f"{hub_server.url}/ui/servers/{server['id']}/connect"
    async with shttp_session(f"{hub_server.url}/mcp/echo", keys[carol]) as session:
        tools = (await session.list_tools()).tools
        assert [tool.name for tool in tools] == ["connect"]
        assert connect_url in (tools[0].description or "")
        with pytest.raises(MCPError, match=r"connect it at .*/connect") as raised:
            await session.call_tool("whoami", {})
        assert raised.value.error.data == {"connect_url": connect_url}
        result = await session.call_tool("connect", {})
        assert not result.is_error and connect_url in text_of(result)
    async with shttp_session(f"{hub_server.url}/mcp", keys[carol]) as session:
        assert [tool.name for tool in (await session.list_tools()).tools] == ["echo__connect"]
        result = await session.call_tool("echo__connect", {})
        assert result.structured_content == {"connect_url": connect_url, "server": "echo"}
        with pytest.raises(MCPError, match="Unknown tool"):
            await session.call_tool("echo__whoami", {})
    # Alice, connected, sees the real tools and no connect stand-in.
    async with shttp_session(f"{hub_server.url}/mcp", keys[alice]) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert "echo__whoami" in names and "echo__connect" not in names


async def test_clients_with_url_elicitation_are_asked_to_connect(
    hub_server: RunningHub, echo_http: str
) -> None:
    """A client declaring URL-mode elicitation (the SDK client does when given an elicitation callback)
    is asked through it: the `connect` tool sends `elicitation/create` with mode "url", and requests that
    need the unconnected server fail with URLElicitationRequiredError (-32042) carrying the connect URL."""
    server = await hub_server.add_server(
        "echo", transport="http", url=echo_http, auth_type="byok", byok_mode="header", byok_name="X-Api-Key"
    )
    carol = await hub_server.add_user("carol")
    key = await hub_server.add_key(carol)
    connect_url = f"{hub_server.url}/ui/servers/{server['id']}/connect"
    asked: list[types.ElicitRequestParams] = []
    answer = "accept"

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action=answer)

    async with shttp_session(f"{hub_server.url}/mcp", key, elicitation_callback=on_elicit) as session:
        result = await session.call_tool("echo__connect", {})
        assert len(asked) == 1 and isinstance(asked[0], types.ElicitRequestURLParams)
        assert asked[0].mode == "url" and asked[0].url == connect_url and asked[0].elicitation_id
        assert "echo" in asked[0].message
        assert result.structured_content == {
            "connect_url": connect_url,
            "server": "echo",
            "elicitation": "accept",
        }
        answer = "decline"
        declined = await session.call_tool("echo__connect", {})
        assert (
            declined.structured_content is not None
            and declined.structured_content["elicitation"] == "decline"
        )
        assert connect_url in text_of(declined)
        assert len(asked) == 2 and asked[1].elicitation_id != asked[0].elicitation_id

    async with shttp_session(f"{hub_server.url}/mcp/echo", key, elicitation_callback=on_elicit) as session:
        for request in (session.call_tool("whoami", {}), session.get_prompt("greeting")):
            with pytest.raises(MCPError) as raised:
                await request
            assert raised.value.code == types.URL_ELICITATION_REQUIRED
            required = UrlElicitationRequiredError.from_error(raised.value.error)
            assert [(e.mode, e.url) for e in required.elicitations] == [("url", connect_url)]
            assert required.elicitations[0].elicitation_id
            assert raised.value.error.data["connect_url"] == connect_url
    assert len(asked) == 2  # the error names the URL; the client decides whether to open it

    # 2026-07-28 retired -32042: a client on that revision, even one declaring URL elicitation, gets the
    # hub's usual error (its sessionless requests have no channel for `elicitation/create` either).
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(
            streamable_http_client(f"{hub_server.url}/mcp/echo", http_client=http),
            mode="2026-07-28",
            elicitation_callback=on_elicit,
        ) as modern,
    ):
        assert modern.session.protocol_version == "2026-07-28"
        with pytest.raises(MCPError) as retired:
            await modern.call_tool("whoami", {})
        assert retired.value.code == types.INVALID_REQUEST
        assert retired.value.error.data == {"connect_url": connect_url}
        assert (await modern.call_tool("connect", {})).structured_content == {
            "connect_url": connect_url,
            "server": "echo",
        }
    assert len(asked) == 2

    # Without the capability nothing changes: the connect tool answers with the URL, calls fail plainly.
    async with shttp_session(f"{hub_server.url}/mcp/echo", key) as session:
        assert (await session.call_tool("connect", {})).structured_content == {
            "connect_url": connect_url,
            "server": "echo",
        }
        with pytest.raises(MCPError) as plain:
            await session.call_tool("whoami", {})
        assert plain.value.code == types.INVALID_REQUEST and plain.value.error.data == {
            "connect_url": connect_url
        }


async def test_a_byok_key_sent_as_a_query_parameter_stays_out_of_the_logs(
    hub_server: RunningHub, echo_http: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The upstream URL carries the key (`?sig=...`, a name no secret pattern knows), on the pass-through
    (/mcp/echo) and on the terminating path (/mcp); no log line of any library shows it."""
    caplog.set_level(logging.DEBUG)
    server = await hub_server.add_server(
        "echo", transport="http", url=echo_http, auth_type="byok", byok_mode="query", byok_name="sig"
    )
    alice = await hub_server.add_user("alice")
    key = await hub_server.add_key(alice)
    canary = "canary-sig-" + secrets.token_hex(8)
    stored = await hub_server.admin.put(
        f"/v1/servers/{server['id']}/credential",
        json={"key": canary},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert stored.status_code == 200 and canary not in stored.text
    async with shttp_session(f"{hub_server.url}/mcp/echo", key) as session:
        direct = text_of(await session.call_tool("query_digest", {}))
    async with shttp_session(f"{hub_server.url}/mcp", key) as session:
        aggregated = text_of(await session.call_tool("echo__query_digest", {}))
    # The key did travel in the query on both paths (so the log check below means something)...
    assert direct == aggregated == hashlib.sha256(f"sig={canary}".encode()).hexdigest()
    # ...and no log line, at any level, holds it.
    assert canary not in caplog.text


async def test_stdio_byok_keys_run_one_process_per_user(hub_server: RunningHub) -> None:
    """A key delivered as an env variable lives in the process's environment, so two users never share
    a process: each gets their own, started with their own key."""
    server = await hub_server.add_stdio_echo(
        "local",
        auth_type="byok",
        byok_mode="env",
        byok_name="UPSTREAM_API_KEY",
    )
    seen: dict[str, tuple[str, int]] = {}
    for name in ("alice", "bob"):
        key = await hub_server.add_key(await hub_server.add_user(name))
        stored = await hub_server.admin.put(
            f"/v1/servers/{server['id']}/credential",
            json={"key": f"{name}-env-key"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert stored.status_code == 200, stored.text
        async with shttp_session(f"{hub_server.url}/mcp/local", key) as session:
            env_key = text_of(await session.call_tool("env", {"name": "UPSTREAM_API_KEY"}))
            pid = int(text_of(await session.call_tool("pid", {})))
        seen[name] = (env_key, pid)
    assert seen["alice"][0] == "alice-env-key" and seen["bob"][0] == "bob-env-key"
    assert seen["alice"][1] != seen["bob"][1]
