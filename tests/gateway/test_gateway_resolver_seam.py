"""The credential seam: what the resolver returns is what goes upstream, its identity keys the session
pool, and its errors become an MCP error for that call only."""

from __future__ import annotations

import json

import pytest
from mcp.shared.exceptions import MCPError

from mcp_hub.errors import PermissionDeniedError
from mcp_hub.upstream.credentials import ResolvedCredential
from mcp_hub.upstream.target import UpstreamTarget
from tests.gateway.clients import shttp_session, text_of
from tests.gateway.conftest import RunningHub


class PerUserResolver:
    """Stands in for the per-user resolver of issue 4: a token per user, none for `nobody`."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    async def resolve(self, user_id: str | None, target: UpstreamTarget) -> ResolvedCredential:
        token = self.tokens.get(user_id or "")
        if token is None:
            raise PermissionDeniedError(f"connect your account for {target.name} first")
        return ResolvedCredential(
            identity=f"user:{user_id}",
            headers={**target.headers, "Authorization": f"Bearer {token}"},
            query={"k": "v"},
        )


async def test_per_user_credentials_and_sessions(hub_server: RunningHub, echo_http: str) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http, headers={"X-Static": "s"})
    await hub_server.add_server("other", transport="http", url=echo_http)
    alice, bob, nobody = [await hub_server.add_user(n) for n in ("alice", "bob", "nobody")]
    keys = {user: await hub_server.add_key(user) for user in (alice, bob, nobody)}
    pool = hub_server.app.state.gateway.pool
    pool.resolver = PerUserResolver({alice: "alice-token", bob: "bob-token"})

    # Both paths present what the resolver chose: the pass-through (/mcp/echo, streamable HTTP) and the
    # terminating path (/mcp, echo__whoami).
    for url, tool in ((f"{hub_server.url}/mcp/echo", "whoami"), (f"{hub_server.url}/mcp", "echo__whoami")):
        seen = {}
        for user in (alice, bob):
            async with shttp_session(url, keys[user]) as session:
                seen[user] = json.loads(text_of(await session.call_tool(tool, {})))
                text_of(await session.call_tool(tool.replace("whoami", "echo"), {"text": "again"}))
        assert seen[alice]["authorization"] == "Bearer alice-token" and seen[alice]["x-static"] == "s"
        assert seen[bob]["authorization"] == "Bearer bob-token"
        assert all(keys[user] not in json.dumps(seen[user]) for user in (alice, bob))
    # One pooled upstream session per (server, credential identity), reused across calls (the
    # terminating path's; the pass-through pools HTTP connections, not MCP sessions).
    echo_sessions = [p for p in pool.sessions() if p.target.name == "echo"]
    assert sorted(p.key.identity for p in echo_sessions) == [f"user:{alice}", f"user:{bob}"]

    async with shttp_session(f"{hub_server.url}/mcp", keys[nobody]) as session:
        assert (await session.list_tools()).tools == []  # fail open: nothing this user can use
        with pytest.raises(MCPError, match="Unknown tool"):
            await session.call_tool("echo__echo", {"text": "x"})
    async with shttp_session(f"{hub_server.url}/mcp/echo", keys[nobody]) as session:
        with pytest.raises(MCPError, match="connect your account for echo first"):
            await session.call_tool("echo", {"text": "x"})
