"""Per-user OAuth end to end, through the hub's MCP gateway, against a real authorization server
(oidc-provider) protecting a real upstream MCP server written with the Python SDK that verifies every
token (RFC 7662 introspection, `TokenVerifier` + `AuthSettings`). Clients are the Python SDK's; the
"browser" follows the authorization server's login and consent redirects over loopback.

Access tokens live 10 s here (the authorization server's TTL), so expiry is real, not simulated, in the
main flow; the concurrency tests make the stored token look expired to the hub instead of waiting."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from mcp_hub.credentials.store import read_payload
from mcp_hub.runtime import Hub
from mcp_hub.settings import Settings
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import McpServer, utcnow
from mcp_hub.store.servers import read_secrets
from tests.conftest import migrate
from tests.credentials.conftest import (
    INTROSPECTION_CLIENT_ID,
    INTROSPECTION_SECRET,
    AuthServerProcess,
    Browser,
    User,
    auth_server,
    credential_row,
    expire,
)
from tests.gateway.clients import shttp_session, text_of
from tests.gateway.conftest import RunningHub, serve_hub
from tests.gateway.test_gateway_access import INIT, MCP_HEADERS
from tests.mcp_peers.procs import free_port, running, wait_for_port

ACCESS_TTL_SECONDS = 10
REFRESH_SKEW_SECONDS = 2


@pytest.fixture(scope="module")
def short_lived_as() -> Iterator[AuthServerProcess]:
    with auth_server(access_ttl_seconds=ACCESS_TTL_SECONDS) as running_as:
        yield running_as


@contextmanager
def protected_upstream(issuer: str, transport: str) -> Iterator[str]:
    """The Python SDK upstream; its URL is also the RFC 8707 resource its tokens are issued for."""
    port = free_port()
    module = "tests.mcp_peers.oauth_upstream"
    args = [
        sys.executable,
        "-m",
        module,
        str(port),
        issuer,
        INTROSPECTION_CLIENT_ID,
        INTROSPECTION_SECRET,
        transport,
    ]
    with running(args, port):
        yield f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}"


@pytest.fixture(scope="module")
def upstream(short_lived_as: AuthServerProcess) -> Iterator[str]:
    with protected_upstream(short_lived_as.issuer, "http") as url:
        yield url


@pytest.fixture
async def hub_server(settings: Settings) -> AsyncIterator[RunningHub]:
    await migrate(settings)
    tuned = settings.model_copy(update={"oauth_refresh_skew_seconds": REFRESH_SKEW_SECONDS})
    async with serve_hub(tuned) as hub:
        yield hub


def hub_state(hub: RunningHub) -> Hub:
    state: Hub = hub.app.state.hub
    return state


async def add_user(hub: RunningHub, name: str) -> User:
    user_id = await hub.add_user(name)
    return User(id=user_id, name=name, key=await hub.add_key(user_id))


@pytest.fixture
async def browser_for(hub_server: RunningHub) -> AsyncIterator[Callable[[User], Browser]]:
    opened: list[Browser] = []

    def _open(user: User) -> Browser:
        opened.append(Browser(None, user, hub_origin=hub_server.url))
        return opened[-1]

    yield _open
    for browser in opened:
        await browser.aclose()


async def whoami(hub: RunningHub, user: User, *, aggregate: bool = False) -> dict[str, Any]:
    """Calls the upstream's whoami through the gateway as `user` (on /mcp/notes, or notes__whoami on /mcp)."""
    url, tool = (f"{hub.url}/mcp", "notes__whoami") if aggregate else (f"{hub.url}/mcp/notes", "whoami")
    async with shttp_session(url, user.key) as session:
        return dict(json.loads(text_of(await session.call_tool(tool, {}))))


async def calls_in_parallel(url: str, user: User, sessions: int, per_session: int) -> list[dict[str, Any]]:
    async def one_session() -> list[dict[str, Any]]:
        async with shttp_session(url, user.key) as session:
            results = await asyncio.gather(*(session.call_tool("whoami", {}) for _ in range(per_session)))
            return [json.loads(text_of(result)) for result in results]

    batches = await asyncio.gather(*(one_session() for _ in range(sessions)))
    return [item for batch in batches for item in batch]


def upstream_status(upstream: str, access_token: str) -> int:
    """What the upstream itself answers to a token (initialize with it, straight, not via the hub)."""
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {access_token}"}
    return httpx2.post(upstream, headers=headers, json=INIT, trust_env=False).status_code


async def test_connect_call_expire_refresh_revoke_reconnect(
    hub_server: RunningHub,
    short_lived_as: AuthServerProcess,
    upstream: str,
    browser_for,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not settings.is_sqlite:
        pytest.skip("the flow does not depend on the database; the concurrency tests below run on both")
    caplog.set_level(logging.DEBUG)
    hub = hub_state(hub_server)
    server = await hub_server.add_server("notes", transport="http", url=upstream, auth_type="oauth2")
    alice, bob = await add_user(hub_server, "alice"), await add_user(hub_server, "bob")
    connect_url = f"{hub_server.url}/ui/servers/{server['id']}/connect"

    # Not connected: one `connect` tool on /mcp; the real tool fails with an MCP error naming the URL.
    async with shttp_session(f"{hub_server.url}/mcp", alice.key) as session:
        assert [tool.name for tool in (await session.list_tools()).tools] == ["notes__connect"]
    async with shttp_session(f"{hub_server.url}/mcp/notes", alice.key) as session:
        with pytest.raises(MCPError) as refused:
            await session.call_tool("whoami", {})
        assert refused.value.error.data == {"connect_url": connect_url}

    # Authorize → login and consent at oidc-provider → callback → stored row → back to the UI.
    short_lived_as.reset()
    done = await browser_for(alice).connect(server["id"], redirect="/ui/servers?tab=mine")
    assert done.status_code == 302 and done.headers["location"] == "/ui/servers?tab=mine", done.text
    row = await credential_row(hub, alice.id, server["id"])
    first = read_payload(hub.keyring, row)
    assert row.type == "oauth2" and row.status == "active" and row.expires_at is not None
    assert short_lived_as.counts()["grants"] == {"authorization_code": 1}

    # A tool call with Alice's token: the upstream verified it and echoes her subject and its resource.
    seen = await whoami(hub_server, alice)
    assert seen["sub"] == "alice" and seen["resource"] == upstream and "mcp:tools" in seen["scopes"]
    async with transaction(hub.sessions) as session:
        server_row = await session.get(McpServer, server["id"])
        assert server_row is not None
        client_id, client_secret = server_row.client_id, read_secrets(hub.keyring, server_row).client_secret
    assert seen["client_id"] == client_id
    assert (await whoami(hub_server, alice, aggregate=True))["sub"] == "alice"

    # Bob connects to the same server and gets his own token.
    assert (await browser_for(bob).connect(server["id"])).status_code == 302
    assert (await whoami(hub_server, bob))["sub"] == "bob"
    assert (await whoami(hub_server, alice))["sub"] == "alice"

    # Expiry for real: wait until the authorization server no longer accepts Alice's first token.
    wait = (row.expires_at - utcnow()).total_seconds()
    await asyncio.sleep(max(0.0, wait) + 0.5)
    assert upstream_status(upstream, first["access_token"]) == 401
    short_lived_as.reset()
    assert (await whoami(hub_server, alice))["sub"] == "alice"
    assert short_lived_as.refresh_grants() == 1
    refreshed_row = await credential_row(hub, alice.id, server["id"])
    refreshed = read_payload(hub.keyring, refreshed_row)
    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["refresh_token"] != first["refresh_token"]  # rotated, and the new one stored
    assert refreshed_row.expires_at is not None and refreshed_row.expires_at > row.expires_at

    # Revoked upstream (RFC 7009 at oidc-provider, which revokes the whole grant). The hub still holds an
    # unexpired access token; the upstream now refuses it (401), the hub tries one refresh, gets
    # invalid_grant, and marks the credential "needs reconnect". The MCP error names the reconnect URL.
    revoked = httpx2.post(
        f"{short_lived_as.issuer}/token/revocation",
        data={"token": refreshed["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(str(client_id), str(client_secret)),
        trust_env=False,
    )
    assert revoked.status_code == 200, revoked.text
    assert upstream_status(upstream, refreshed["access_token"]) == 401
    short_lived_as.reset()
    # /mcp/notes passes the client's own exchanges through, initialize included, so the refusal may
    # surface there rather than at the tool call; either way it is this MCP error.
    needs: MCPError | None = None
    try:
        async with shttp_session(f"{hub_server.url}/mcp/notes", alice.key) as session:
            await session.call_tool("whoami", {})
    except* MCPError as group:
        needs = next(exc for exc in leaves(group) if isinstance(exc, MCPError))
    assert needs is not None, "the call with a revoked grant succeeded"
    assert needs.error.data == {"connect_url": connect_url}
    assert "connect again at" in needs.error.message and connect_url in needs.error.message
    # One refresh was tried at the token endpoint, and refused; the hub had no reason of its own to
    # refresh (the token it held had not expired): the upstream's 401 set it off.
    assert short_lived_as.counts()["paths"].get("/token") == 1 and short_lived_as.counts()["grants"] == {}
    assert refreshed_row.expires_at > utcnow()
    assert (await credential_row(hub, alice.id, server["id"])).status == "needs_reconnect"
    listed = (
        await hub_server.admin.get("/v1/credentials", headers={"Authorization": f"Bearer {alice.key}"})
    ).json()
    assert [(item["status"], item["expires_at"] is not None) for item in listed["items"]] == [
        ("needs_reconnect", True)
    ]
    async with shttp_session(f"{hub_server.url}/mcp", alice.key) as session:
        assert "notes__connect" in [tool.name for tool in (await session.list_tools()).tools]
    assert (await whoami(hub_server, bob))["sub"] == "bob"  # Bob's grant is untouched

    # Reconnect: a new flow, and the same tool call works again. Discovery ran once: none this time.
    short_lived_as.reset()
    assert (await browser_for(alice).connect(server["id"])).status_code == 302
    assert not [path for path in short_lived_as.counts()["paths"] if path.startswith("/.well-known/")]
    assert (await credential_row(hub, alice.id, server["id"])).status == "active"
    assert (await whoami(hub_server, alice))["sub"] == "alice"

    # None of the tokens the hub handled (or its client secret) reached a log line of the hub, the
    # SDK, httpx2 or authlib, at any level.
    latest = read_payload(hub.keyring, await credential_row(hub, alice.id, server["id"]))
    canaries = [first["access_token"], first["refresh_token"], refreshed["access_token"]]
    canaries += [
        refreshed["refresh_token"],
        latest["access_token"],
        latest["refresh_token"],
        str(client_secret),
    ]
    assert caplog.text and not [token for token in canaries if token in caplog.text]


async def test_twenty_concurrent_calls_with_an_expired_token_refresh_once(
    hub_server: RunningHub, short_lived_as: AuthServerProcess, upstream: str, browser_for
) -> None:
    hub = hub_state(hub_server)
    server = await hub_server.add_server("notes", transport="http", url=upstream, auth_type="oauth2")
    alice = await add_user(hub_server, "alice")
    assert (await browser_for(alice).connect(server["id"])).status_code == 302
    assert (await whoami(hub_server, alice))["sub"] == "alice"  # a pooled upstream session exists
    await expire(hub, (await credential_row(hub, alice.id, server["id"])).id)
    short_lived_as.reset()
    results = await calls_in_parallel(f"{hub_server.url}/mcp/notes", alice, sessions=4, per_session=5)
    assert len(results) == 20 and {result["sub"] for result in results} == {"alice"}
    assert short_lived_as.refresh_grants() == 1


async def test_two_hub_processes_share_one_refresh(
    hub_server: RunningHub,
    short_lived_as: AuthServerProcess,
    upstream: str,
    browser_for,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """A second hub OS process on the same database (PostgreSQL: row lock; SQLite: the database write
    lock): 10 gateway calls to each hub at once with an expired token, one refresh grant in all."""
    hub = hub_state(hub_server)
    server = await hub_server.add_server("notes", transport="http", url=upstream, auth_type="oauth2")
    alice = await add_user(hub_server, "alice")
    assert (await browser_for(alice).connect(server["id"])).status_code == 302
    port = free_port()
    assert settings.encryption_keys is not None
    env = {
        **os.environ,
        "MCP_HUB_DATABASE_URL": settings.resolved_database_url,
        "MCP_HUB_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value(),
        "MCP_HUB_OAUTH_ALLOWED_HOSTS": "127.0.0.1",
        "MCP_HUB_OAUTH_REFRESH_SKEW_SECONDS": str(REFRESH_SKEW_SECONDS),
        "MCP_HUB_DATA_DIR": str(tmp_path / "second"),
        "MCP_HUB_LOG_LEVEL": "WARNING",
    }
    second = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("mcp-hub")),
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await asyncio.to_thread(wait_for_port, port, 30)
        await expire(hub, (await credential_row(hub, alice.id, server["id"])).id)
        short_lived_as.reset()
        here, there = await asyncio.gather(
            calls_in_parallel(f"{hub_server.url}/mcp/notes", alice, sessions=2, per_session=5),
            calls_in_parallel(f"http://127.0.0.1:{port}/mcp/notes", alice, sessions=2, per_session=5),
        )
    finally:
        second.terminate()
        await second.wait()
    assert len(here) == len(there) == 10
    assert {result["sub"] for result in here + there} == {"alice"}
    assert short_lived_as.refresh_grants() == 1


async def test_revoked_grant_on_an_sse_upstream_asks_to_reconnect(
    hub_server: RunningHub, short_lived_as: AuthServerProcess, browser_for, settings: Settings
) -> None:
    """Over SSE the SDK client only logs a refused POST; the hub still sees the 401, ends the session
    and answers at once (not at the call's deadline) with the reconnect URL."""
    if not settings.is_sqlite:
        pytest.skip("the transport, not the database, is under test")
    hub = hub_state(hub_server)
    with protected_upstream(short_lived_as.issuer, "sse") as url:
        server = await hub_server.add_server(
            "notes", transport="sse", url=url, auth_type="oauth2", timeout_seconds=20
        )
        alice = await add_user(hub_server, "alice")
        assert (await browser_for(alice).connect(server["id"])).status_code == 302
        seen = await whoami(hub_server, alice)
        assert seen["sub"] == "alice" and seen["resource"] == url
        async with transaction(hub.sessions) as session:
            server_row = await session.get(McpServer, server["id"])
            assert server_row is not None
            client = (str(server_row.client_id), str(read_secrets(hub.keyring, server_row).client_secret))
        payload = read_payload(hub.keyring, await credential_row(hub, alice.id, server["id"]))
        revoked = httpx2.post(
            f"{short_lived_as.issuer}/token/revocation",
            data={"token": payload["refresh_token"], "token_type_hint": "refresh_token"},
            auth=client,
            trust_env=False,
        )
        assert revoked.status_code == 200, revoked.text
        started = asyncio.get_running_loop().time()
        async with shttp_session(f"{hub_server.url}/mcp/notes", alice.key) as session:
            with pytest.raises(MCPError) as needs:
                await session.call_tool("whoami", {})
        assert asyncio.get_running_loop().time() - started < 10
        assert needs.value.error.data == {
            "connect_url": f"{hub_server.url}/ui/servers/{server['id']}/connect"
        }
        assert (await credential_row(hub, alice.id, server["id"])).status == "needs_reconnect"
        assert (await browser_for(alice).connect(server["id"])).status_code == 302
        assert (await whoami(hub_server, alice))["sub"] == "alice"


async def test_an_access_token_refused_upstream_is_refreshed_once(
    hub_server: RunningHub, short_lived_as: AuthServerProcess, upstream: str, browser_for
) -> None:
    """Only the access token is ended at the authorization server, the grant stays: the upstream refuses
    the token before it expires, the hub refreshes once for all 20 calls that saw the 401, and they all
    succeed on the new token."""
    hub = hub_state(hub_server)
    server = await hub_server.add_server("notes", transport="http", url=upstream, auth_type="oauth2")
    alice = await add_user(hub_server, "alice")
    assert (await browser_for(alice).connect(server["id"])).status_code == 302
    assert (await whoami(hub_server, alice))["sub"] == "alice"
    token = read_payload(hub.keyring, await credential_row(hub, alice.id, server["id"]))["access_token"]
    destroyed = httpx2.post(
        f"{short_lived_as.issuer}/test/destroy-access-token", json={"token": token}, trust_env=False
    )
    assert destroyed.json() == {"destroyed": True}
    assert upstream_status(upstream, token) == 401
    short_lived_as.reset()
    results = await calls_in_parallel(f"{hub_server.url}/mcp/notes", alice, sessions=4, per_session=5)
    assert len(results) == 20 and {result["sub"] for result in results} == {"alice"}
    assert short_lived_as.refresh_grants() == 1
    after = await credential_row(hub, alice.id, server["id"])
    assert after.status == "active" and read_payload(hub.keyring, after)["access_token"] != token


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The exceptions inside a group, however deeply the SDK's task groups nested them."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found
