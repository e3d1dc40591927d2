"""The hub's OAuth client against a real authorization server (oidc-provider on loopback), on SQLite and
PostgreSQL: discovery, dynamic registration, PKCE, resource indicators, callback, refresh with rotation,
revocation → needs reconnect → reconnect, two users, and single-flight refresh."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from mcp_hub.credentials.resolver import resolve
from mcp_hub.credentials.store import put_credential, read_payload
from mcp_hub.crypto import Keyring, generate_key_entry, parse_key_list
from mcp_hub.errors import NeedsReconnectError, NotConnectedError
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import CredentialType, McpServer, OAuthState, utcnow
from mcp_hub.store.rotation import rotate_all
from mcp_hub.store.servers import read_secrets
from tests.credentials.conftest import AuthServerProcess, credential_row, expire, hub_of


def whoami(oidc_as: AuthServerProcess, headers: dict[str, str]) -> dict[str, Any]:
    """Asks the protected resource whose token this is (it verifies it at the authorization server)."""
    response = httpx2.get(oidc_as.resource, headers=dict(headers))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_full_flow_refresh_revoke_reconnect(
    app: FastAPI, client: httpx2.AsyncClient, oidc_as: AuthServerProcess, make_user, make_server, browsers
) -> None:
    hub = hub_of(app)
    alice = await make_user("alice")
    server = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")

    # Not connected yet: the resolver names the connect URL instead of falling back to anything shared.
    with pytest.raises(NotConnectedError) as not_connected:
        await resolve(hub, alice.id, server["id"])
    assert server["id"] in not_connected.value.connect_url

    oidc_as.reset()
    browser = browsers(alice)
    start = await browser.start(server["id"], redirect="/ui/servers?tab=mine")
    assert start.status_code == 302
    authorize = urlsplit(start.headers["location"])
    query = parse_qs(authorize.query)
    assert f"{authorize.scheme}://{authorize.netloc}" == oidc_as.issuer
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["resource"] == [oidc_as.resource]
    assert query["redirect_uri"] == ["http://127.0.0.1:4000/v1/oauth/callback"]
    cookie = start.headers["set-cookie"].lower()
    assert "httponly" in cookie and "path=/v1/oauth/callback" in cookie and "max-age=600" in cookie
    counts = oidc_as.counts()
    assert counts["registrations"] == 1  # dynamic client registration, once
    assert counts["paths"].get("/mcp") == 1  # the 401 probe that carried resource_metadata

    callback_url = await browser.consent(start.headers["location"])
    assert "iss=" in callback_url
    done = await browser.http.get(callback_url)
    assert done.status_code == 302, (done.text, callback_url)
    assert done.headers["location"] == "/ui/servers?tab=mine"

    # Discovery results and the registered client are stored on the row (secret encrypted).
    async with transaction(hub.sessions) as session:
        row = await session.get(McpServer, server["id"])
        assert row is not None
        assert row.issuer == oidc_as.issuer and row.authorization_url == f"{oidc_as.issuer}/auth"
        assert row.resource_metadata_url == f"{oidc_as.issuer}/.well-known/oauth-protected-resource/mcp"
        assert row.oauth_discovered_at is not None and row.client_id
        assert read_secrets(hub.keyring, row).client_secret
        assert row.client_secret_encrypted is not None

    listed = (await client.get("/v1/credentials", headers=alice.auth)).json()["items"]
    assert [(item["type"], item["status"], item["server_id"]) for item in listed] == [
        ("oauth2", "active", server["id"])
    ]
    assert listed[0]["expires_at"] is not None

    auth = await resolve(hub, alice.id, server["id"])
    assert auth.kind == "oauth2"
    who = whoami(oidc_as, dict(auth.headers))
    assert who["sub"] == "alice" and who["aud"] == oidc_as.resource

    # Expiry: the next resolve refreshes once, and the rotated refresh token replaces the old one.
    first = await credential_row(hub, alice.id, server["id"])
    first_payload = read_payload(hub.keyring, first)
    await expire(hub, first.id)
    oidc_as.reset()
    refreshed = await resolve(hub, alice.id, server["id"])
    assert oidc_as.refresh_grants() == 1
    assert refreshed.headers["Authorization"] != auth.headers["Authorization"]
    assert refreshed.identity != auth.identity
    assert whoami(oidc_as, dict(refreshed.headers))["sub"] == "alice"
    second = await credential_row(hub, alice.id, server["id"])
    second_payload = read_payload(hub.keyring, second)
    assert second_payload["refresh_token"] != first_payload["refresh_token"]
    assert second.expires_at is not None and second.expires_at > utcnow()
    again = await resolve(hub, alice.id, server["id"])  # fresh: no second refresh
    assert again.headers == refreshed.headers and oidc_as.refresh_grants() == 1

    # Revoked upstream (RFC 7009, with the hub's registered client): refresh fails with invalid_grant.
    async with transaction(hub.sessions) as session:
        row = await session.get(McpServer, server["id"])
        assert row is not None
        client_id, client_secret = row.client_id, read_secrets(hub.keyring, row).client_secret
    assert client_id is not None and client_secret is not None
    revoked = httpx2.post(
        f"{oidc_as.issuer}/token/revocation",
        data={"token": second_payload["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(client_id, client_secret),
    )
    assert revoked.status_code == 200, revoked.text
    await expire(hub, second.id)
    with pytest.raises(NeedsReconnectError) as needs:
        await resolve(hub, alice.id, server["id"])
    assert server["id"] in needs.value.connect_url
    assert (await credential_row(hub, alice.id, server["id"])).status == "needs_reconnect"
    with pytest.raises(NeedsReconnectError):  # stays so without asking the authorization server again
        await resolve(hub, alice.id, server["id"])
    listed = (await client.get("/v1/credentials", headers=alice.auth)).json()["items"]
    assert listed[0]["status"] == "needs_reconnect" and listed[0]["expires_at"] is not None

    # Reconnect: a new flow replaces the tokens and the credential is active again.
    done = await browser.connect(server["id"])
    assert done.status_code == 302, done.text
    row = await credential_row(hub, alice.id, server["id"])
    assert row.status == "active" and row.id == first.id
    assert whoami(oidc_as, dict((await resolve(hub, alice.id, server["id"])).headers))["sub"] == "alice"

    # Disconnect removes only the oauth2 row; a second delete is a 404.
    assert (await client.delete(f"/v1/servers/{server['id']}/oauth", headers=alice.auth)).status_code == 204
    assert (await client.delete(f"/v1/servers/{server['id']}/oauth", headers=alice.auth)).status_code == 404
    with pytest.raises(NotConnectedError):
        await resolve(hub, alice.id, server["id"])


async def test_two_users_get_their_own_tokens(
    app: FastAPI, oidc_as: AuthServerProcess, make_user, make_server, browsers
) -> None:
    hub = hub_of(app)
    alice, bob = await make_user("alice"), await make_user("bob")
    server = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")
    for user in (alice, bob):
        done = await browsers(user).connect(server["id"])
        assert done.status_code == 302, done.text
    as_alice = await resolve(hub, alice.id, server["id"])
    as_bob = await resolve(hub, bob.id, server["id"])
    assert whoami(oidc_as, dict(as_alice.headers))["sub"] == "alice"
    assert whoami(oidc_as, dict(as_bob.headers))["sub"] == "bob"
    assert as_alice.identity != as_bob.identity
    assert as_alice.credential_id != as_bob.credential_id


async def test_concurrent_resolves_refresh_once(
    app: FastAPI, oidc_as: AuthServerProcess, make_user, make_server, browsers
) -> None:
    hub = hub_of(app)
    alice = await make_user("alice")
    server = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")
    assert (await browsers(alice).connect(server["id"])).status_code == 302
    row = await credential_row(hub, alice.id, server["id"])
    await expire(hub, row.id)
    oidc_as.reset()
    results = await asyncio.gather(*(resolve(hub, alice.id, server["id"]) for _ in range(20)))
    assert oidc_as.refresh_grants() == 1
    tokens = {result.headers["Authorization"] for result in results}
    assert len(tokens) == 1
    assert whoami(oidc_as, {"Authorization": tokens.pop()})["sub"] == "alice"


async def test_discovery_skipped_when_authorization_url_is_stored(
    app: FastAPI, oidc_as: AuthServerProcess, make_user, make_server, browsers
) -> None:
    alice = await make_user("alice")
    server = await make_server(
        "notes",
        url=oidc_as.resource,
        auth_type="oauth2",
        authorization_url=f"{oidc_as.issuer}/auth",
        token_url=f"{oidc_as.issuer}/token",
        registration_url=f"{oidc_as.issuer}/reg",
        scopes=["mcp:tools"],
    )
    oidc_as.reset()
    done = await browsers(alice).connect(server["id"])
    assert done.status_code == 302, done.text
    paths = oidc_as.counts()["paths"]
    assert sum(count for path, count in paths.items() if path.startswith("/.well-known/")) == 0
    assert "/mcp" not in paths  # no 401 probe either
    assert paths.get("/reg") == 1 and paths.get("/token") == 1
    async with transaction(hub_of(app).sessions) as session:
        row = await session.get(McpServer, server["id"])
        assert row is not None and row.oauth_discovered_at is None and row.issuer is None


async def test_stored_client_id_and_client_id_parameter(
    app: FastAPI, client: httpx2.AsyncClient, oidc_as: AuthServerProcess, make_user, make_server, browsers
) -> None:
    """`client_id` is optional on /authorize when one is stored; a given one is used for the flow."""
    alice = await make_user("alice")
    registered = httpx2.post(
        f"{oidc_as.issuer}/reg",
        json={
            "redirect_uris": ["http://127.0.0.1:4000/v1/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        },
    ).json()
    server = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")
    oidc_as.reset()
    browser = browsers(alice)
    start = await browser.start(server["id"], client_id=registered["client_id"])
    assert start.status_code == 302
    assert parse_qs(urlsplit(start.headers["location"]).query)["client_id"] == [registered["client_id"]]
    assert oidc_as.counts()["registrations"] == 0
    done = await browser.http.get(await browser.consent(start.headers["location"]))
    assert done.status_code == 302, done.text
    assert done.headers["location"] == "/"
    auth = await resolve(hub_of(app), alice.id, server["id"])
    assert whoami(oidc_as, dict(auth.headers))["client_id"] == registered["client_id"]


async def test_authorize_json_for_the_ui(
    client: httpx2.AsyncClient, oidc_as: AuthServerProcess, make_user, make_server
) -> None:
    alice = await make_user("alice")
    server = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")
    response = await client.get(
        f"/v1/servers/{server['id']}/oauth/authorize",
        headers={**alice.auth, "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["authorization_url"].startswith(f"{oidc_as.issuer}/auth?")
    assert "httponly" in response.headers["set-cookie"].lower()
    assert (await client.get(f"/v1/servers/{server['id']}/oauth/authorize")).status_code == 401


async def test_state_rows_are_hashed_and_single_use(
    app: FastAPI, oidc_as: AuthServerProcess, make_user, make_server, browsers
) -> None:
    hub = hub_of(app)
    alice = await make_user("alice")
    server = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")
    browser = browsers(alice)
    start = await browser.start(server["id"])
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    async with transaction(hub.sessions) as session:
        rows = list((await session.scalars(select(OAuthState))).all())
    assert len(rows) == 1
    assert state not in (rows[0].state_hash, rows[0].browser_hash)
    assert (rows[0].expires_at - rows[0].created_at) == timedelta(minutes=10)
    assert rows[0].used_at is None and rows[0].user_id == alice.id
    await browser.http.get(await browser.consent(start.headers["location"]))
    async with transaction(hub.sessions) as session:
        used = await session.get(OAuthState, rows[0].id)
    assert used is not None and used.used_at is not None


async def test_two_hub_processes_refresh_once(
    app: FastAPI, settings, oidc_as: AuthServerProcess, make_user, make_server, browsers
) -> None:
    """Two OS processes (this one and a worker), 10 concurrent resolves each, one expired credential:
    one refresh grant at the authorization server. Only the database is shared between the processes
    (the row lock, SELECT ... FOR UPDATE, on PostgreSQL; the database write lock on SQLite), so this is
    what it proves. Without it the second process replays the rotated refresh token: invalid_grant."""
    hub = hub_of(app)
    alice = await make_user("alice")
    server = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")
    assert (await browsers(alice).connect(server["id"])).status_code == 302
    row = await credential_row(hub, alice.id, server["id"])
    await expire(hub, row.id)
    oidc_as.reset()
    assert settings.encryption_keys is not None
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("refresh_worker.py")),
        settings.resolved_database_url,
        alice.id,
        server["id"],
        "10",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "MCP_HUB_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value()},
    )
    try:
        assert worker.stdin is not None and worker.stdout is not None
        assert (await asyncio.wait_for(worker.stdout.readline(), 60)).strip() == b"ready"
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
        here = await asyncio.gather(*(resolve(hub, alice.id, server["id"]) for _ in range(10)))
        there = json.loads(await asyncio.wait_for(worker.stdout.readline(), 60))
    finally:
        if worker.returncode is None:
            worker.kill()
        await worker.wait()
    assert oidc_as.refresh_grants() == 1
    digests = {hashlib.sha256(result.headers["Authorization"].encode()).hexdigest() for result in here}
    assert len(there) == 10
    assert digests | set(there) == digests and len(digests) == 1
    assert whoami(oidc_as, dict(here[0].headers))["sub"] == "alice"


async def test_key_rotation_rewraps_pending_flows(
    app: FastAPI, settings, oidc_as: AuthServerProcess, make_user, make_server, browsers
) -> None:
    """A flow started under key A completes after rotating to key B and dropping A: the PKCE verifier in
    oauth_states is re-wrapped like every other secret."""
    hub = hub_of(app)
    alice = await make_user("alice")
    server = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")
    browser = browsers(alice)
    start = await browser.start(server["id"])
    assert start.status_code == 302
    old_keys = parse_key_list(settings.encryption_keys.get_secret_value())
    new_entry = parse_key_list(generate_key_entry())
    hub.keyring = Keyring(new_entry + old_keys)
    report = await rotate_all(hub.sessions, hub.keyring, batch_size=1)
    assert report.oauth_states == 1
    hub.keyring = Keyring(new_entry)  # the old key is gone
    async with transaction(hub.sessions) as session:
        assert {row.key_id for row in (await session.scalars(select(OAuthState))).all()} == {new_entry[0][0]}
    done = await browser.http.get(await browser.consent(start.headers["location"]))
    assert done.status_code == 302, done.text
    assert whoami(oidc_as, dict((await resolve(hub, alice.id, server["id"])).headers))["sub"] == "alice"


async def test_oauth_replaces_a_byok_key_only_when_asked(
    app: FastAPI, client: httpx2.AsyncClient, oidc_as: AuthServerProcess, make_user, make_server, browsers
) -> None:
    hub = hub_of(app)
    alice = await make_user("alice")
    server = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")
    async with transaction(hub.sessions) as session:
        await put_credential(
            session,
            hub.keyring,
            user_id=alice.id,
            server_id=server["id"],
            type=CredentialType.byok,
            payload={"key": "k"},
        )
    browser = browsers(alice)
    refused = await browser.start(server["id"])
    assert refused.status_code == 409 and "replace=true" in refused.json()["detail"]
    start = await browser.start(server["id"], replace="true")
    assert start.status_code == 302
    done = await browser.http.get(await browser.consent(start.headers["location"]))
    assert done.status_code == 302, done.text
    items = (await client.get("/v1/credentials", headers=alice.auth)).json()["items"]
    assert [item["type"] for item in items] == ["oauth2"]
