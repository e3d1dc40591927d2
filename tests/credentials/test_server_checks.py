"""The admin's server checks (mcp_hub/admin/probe.py): "test connection" for saved servers and unsaved
forms through the upstream pool and the one resolver, the health the servers page shows, and OAuth
discovery for the server form. Real upstreams (the Python-SDK echo server), the real authorization
server (npm oidc-provider); on SQLite and PostgreSQL.

Here rather than under tests/admin because it needs this package's fixtures (authorization server,
loopback allowlist, users)."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from mcp_hub.admin.probe import readable
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import McpServer
from tests.credentials.conftest import ADMIN, AuthServerProcess, FakeOAuthPeer, hub_of
from tests.mcp_peers.procs import echo_upstream, free_port

ECHO_TOOLS = {"echo", "add", "whoami", "env", "pid", "slow", "progress", "log", "sample"}


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with echo_upstream("http") as url:
        yield url


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel completes the handshake) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def _names(body: dict[str, object]) -> set[str]:
    tools = body["tools"]
    assert isinstance(tools, list)
    return {tool["name"] for tool in tools}


async def test_saved_server_lists_its_tools_with_allowed_flags_and_health(
    app: FastAPI, client: httpx2.AsyncClient, make_server, echo_url: str
) -> None:
    server = await make_server("echo", url=echo_url, headers={"X-Shared": "s3cr3t-" + secrets.token_hex(4)})
    health = await client.get("/v1/server-health", params={"server_id": server["id"]}, headers=ADMIN)
    assert health.json()["items"] == [
        {"server_id": server["id"], "state": "unknown", "checked_at": None, "error": None, "tool_count": None}
    ]

    tested = await client.post(f"/v1/servers/{server['id']}/test", headers=ADMIN)
    assert tested.status_code == 200, tested.text
    body = tested.json()
    assert body["server_id"] == server["id"] and body["allowed_tools"] is None
    assert _names(body) >= ECHO_TOOLS
    echo = next(tool for tool in body["tools"] if tool["name"] == "echo")
    assert echo == {"name": "echo", "description": "Returns its input.", "allowed": True}

    health = await client.get("/v1/server-health", params={"server_id": server["id"]}, headers=ADMIN)
    [entry] = health.json()["items"]
    assert entry["state"] == "ok" and entry["tool_count"] == len(body["tools"]) and entry["checked_at"]

    # Deny one tool: the test marks it, and the allowlist reads back.
    allowed = sorted(_names(body) - {"pid"})
    patched = await client.patch(
        f"/v1/servers/{server['id']}", json={"allowed_tools": allowed}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    again = (await client.post(f"/v1/servers/{server['id']}/test", headers=ADMIN)).json()
    flags = {tool["name"]: tool["allowed"] for tool in again["tools"]}
    assert flags["pid"] is False and flags["echo"] is True
    assert again["allowed_tools"] == allowed


async def test_unsaved_form_is_tested_without_being_stored(
    app: FastAPI, client: httpx2.AsyncClient, echo_url: str
) -> None:
    tested = await client.post(
        "/v1/servers/test", json={"name": "draft", "transport": "http", "url": echo_url}, headers=ADMIN
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["server_id"] is None and _names(tested.json()) >= ECHO_TOOLS
    # The name may be left out; nothing is written, and the session opened for it is closed again.
    nameless = await client.post(
        "/v1/servers/test", json={"transport": "http", "url": echo_url}, headers=ADMIN
    )
    assert nameless.status_code == 200, nameless.text
    async with transaction(hub_of(app).sessions) as session:
        assert await session.scalar(select(McpServer.id).where(McpServer.name == "unsaved")) is None
    listed = await client.get("/v1/servers", headers=ADMIN)
    assert listed.json()["items"] == []
    pool = app.state.gateway.pool
    assert pool.sessions() == []

    # The API's contract holds for tests too: "openapi" is a UI label, a bad form is a 422.
    openapi = await client.post(
        "/v1/servers/test", json={"transport": "openapi", "spec_location": "/x.json"}, headers=ADMIN
    )
    assert openapi.status_code == 422 and "spec_location" in openapi.text
    shapeless = await client.post("/v1/servers/test", json={"transport": "sse"}, headers=ADMIN)
    assert shapeless.status_code == 422 and "needs a url" in shapeless.text


async def test_unreachable_and_silent_upstreams_are_502_and_504_without_secrets(
    app: FastAPI, client: httpx2.AsyncClient, make_server, silent_port: int
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    key = "sk-" + secrets.token_hex(12)
    # The admin's own key travels in the query string: a transport error quoting the URL must not show it.
    server = await make_server("dead", url=dead, auth_type="byok", byok_mode="query", byok_name="api_key")
    put = await client.put(f"/v1/servers/{server['id']}/credential", json={"key": key}, headers=ADMIN)
    assert put.status_code == 200, put.text

    failed = await client.post(f"/v1/servers/{server['id']}/test", headers=ADMIN)
    assert failed.status_code == 502, failed.text
    assert "cannot connect to upstream 'dead'" in failed.json()["detail"]
    assert key not in failed.text
    health = await client.get("/v1/server-health", params={"server_id": server["id"]}, headers=ADMIN)
    [entry] = health.json()["items"]
    assert entry["state"] == "failed" and "cannot connect" in entry["error"] and key not in health.text

    silent = await make_server("silent", url=f"http://127.0.0.1:{silent_port}/mcp", timeout_seconds=1)
    timed_out = await client.post(f"/v1/servers/{silent['id']}/test", headers=ADMIN)
    assert timed_out.status_code == 504, timed_out.text
    assert timed_out.json()["detail"] == "upstream 'silent' did not answer within 1s"
    health = await client.get("/v1/server-health", params={"server_id": silent["id"]}, headers=ADMIN)
    assert health.json()["items"][0]["state"] == "failed"

    unsaved = await client.post(
        "/v1/servers/test",
        json={"transport": "http", "url": dead, "headers": {"Authorization": f"Bearer {key}"}},
        headers=ADMIN,
    )
    assert unsaved.status_code == 502 and key not in unsaved.text


async def test_per_user_servers_are_tested_with_the_admins_own_credential(
    app: FastAPI, client: httpx2.AsyncClient, make_server, make_user, echo_url: str
) -> None:
    server = await make_server(
        "mine", url=echo_url, auth_type="byok", byok_name="X-Key", byok_template="{key}"
    )
    missing = await client.post(f"/v1/servers/{server['id']}/test", headers=ADMIN)
    assert missing.status_code == 409, missing.text
    assert f"/ui/servers/{server['id']}/connect" in missing.json()["detail"]

    # Another user's key is never used for the admin's test.
    alice = await make_user("alice")
    await client.put(f"/v1/servers/{server['id']}/credential", json={"key": "alice-k"}, headers=alice.auth)
    assert (await client.post(f"/v1/servers/{server['id']}/test", headers=ADMIN)).status_code == 409

    await client.put(f"/v1/servers/{server['id']}/credential", json={"key": "admin-k"}, headers=ADMIN)
    tested = await client.post(f"/v1/servers/{server['id']}/test", headers=ADMIN)
    assert tested.status_code == 200, tested.text
    assert _names(tested.json()) >= ECHO_TOOLS

    unsaved = await client.post(
        "/v1/servers/test", json={"transport": "http", "url": echo_url, "auth_type": "oauth2"}, headers=ADMIN
    )
    assert unsaved.status_code == 409 and "save it" in unsaved.json()["detail"]

    # Admin only.
    assert (await client.post(f"/v1/servers/{server['id']}/test", headers=alice.auth)).status_code == 403
    assert (await client.post("/v1/servers/test", json={}, headers=alice.auth)).status_code == 403
    assert (
        await client.get("/v1/server-health", params={"server_id": "x"}, headers=alice.auth)
    ).status_code == 403
    assert (await client.post("/v1/servers/nope/test", headers=ADMIN)).status_code == 404
    too_many = [("server_id", f"s{i}") for i in range(201)]
    assert (await client.get("/v1/server-health", params=too_many, headers=ADMIN)).status_code == 422
    assert (await client.get("/v1/server-health", headers=ADMIN)).status_code == 422


async def test_discover_fills_the_form_from_the_real_authorization_server(
    app: FastAPI, client: httpx2.AsyncClient, oidc_as: AuthServerProcess, make_user
) -> None:
    found = await client.post("/v1/oauth/discover", json={"url": oidc_as.resource}, headers=ADMIN)
    assert found.status_code == 200, found.text
    body = found.json()
    metadata = httpx2.get(f"{oidc_as.issuer}/.well-known/openid-configuration").json()
    assert body == {
        "issuer": oidc_as.issuer,
        "authorization_url": metadata["authorization_endpoint"],
        "token_url": metadata["token_endpoint"],
        "registration_url": metadata["registration_endpoint"],
        "scopes": ["mcp:tools"],
        "resource_metadata_url": f"{oidc_as.issuer}/.well-known/oauth-protected-resource/mcp",
    }
    async with transaction(hub_of(app).sessions) as session:
        assert (await session.get(McpServer, "discover")) is None

    # The SSRF guard applies: the metadata service is never fetched, allowlist or not.
    refused = await client.post(
        "/v1/oauth/discover", json={"url": "http://169.254.169.254/mcp"}, headers=ADMIN
    )
    assert refused.status_code == 502 and "169.254.169.254" in refused.json()["detail"]
    not_url = await client.post("/v1/oauth/discover", json={"url": "file:///etc/passwd"}, headers=ADMIN)
    assert not_url.status_code == 422
    alice = await make_user("alice")
    assert (
        await client.post("/v1/oauth/discover", json={"url": oidc_as.resource}, headers=alice.auth)
    ).status_code == 403


async def test_discover_refuses_an_authorization_server_without_s256(
    client: httpx2.AsyncClient, fake_peer: FakeOAuthPeer
) -> None:
    # Endpoints saved from the form skip discovery at connect time, and with it the PKCE check: the
    # discover action itself refuses, whether S256 is missing from the list or the list is absent.
    plain = fake_peer.metadata(code_challenge_methods_supported=["plain"])
    absent = fake_peer.metadata()
    del absent["code_challenge_methods_supported"]
    for metadata in (plain, absent):
        fake_peer.json("/.well-known/oauth-authorization-server", metadata)
        refused = await client.post(
            "/v1/oauth/discover", json={"url": f"{fake_peer.origin}/mcp"}, headers=ADMIN
        )
        assert refused.status_code == 400 and "S256" in refused.json()["detail"], refused.text
    fake_peer.json("/.well-known/oauth-authorization-server", fake_peer.metadata())
    found = await client.post("/v1/oauth/discover", json={"url": f"{fake_peer.origin}/mcp"}, headers=ADMIN)
    assert found.status_code == 200 and found.json()["token_url"] == f"{fake_peer.origin}/token", found.text


def test_error_texts_lose_query_strings_and_userinfo() -> None:
    # What httpx2 puts in an HTTPStatusError, with a BYOK key in the query and a password in the URL.
    raw = (
        "HTTPStatusError: Client error '401 Unauthorized' for url "
        "'https://user:pw@api.example/mcp?api_key=sk-123&x=1'"
    )
    assert (
        readable(raw)
        == "HTTPStatusError: Client error '401 Unauthorized' for url 'https://api.example/mcp?…'"
    )
