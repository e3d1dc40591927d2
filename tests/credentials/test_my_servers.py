"""GET /v1/me/servers: every server the caller may use (and no other), with the caller's own credential
state, never a secret. The SQL access rule is held to auth.context.server_visible_to on every branch.
On SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx2
from fastapi import FastAPI
from sqlalchemy import select, update

from mcp_hub.auth.context import server_visible_to
from mcp_hub.auth.keys import authenticate_key
from mcp_hub.credentials.store import put_credential
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import CredentialStatus, CredentialType, McpServer, McpUserCredential, utcnow
from tests.credentials.conftest import ADMIN, hub_of


async def _mine(client: httpx2.AsyncClient, headers: dict[str, str], limit: int = 50) -> list[dict]:
    items: list[dict] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, str | int] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/me/servers", params=params, headers=headers)
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


async def test_lists_every_usable_server_with_the_callers_credential_state(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server
) -> None:
    hub = hub_of(app)
    alice, bob = await make_user("alice"), await make_user("bob")
    public = await make_server("open", url="https://open.example/mcp", access="public")
    everyone = await make_server("notes", url="https://notes.example/mcp", auth_type="oauth2")
    for_alice = await make_server(
        "search",
        url="https://s.example/mcp",
        auth_type="byok",
        access="listed_users",
        allowed_users=[alice.id],
    )
    for_bob = await make_server(
        "private", url="https://p.example/mcp", access="listed_users", allowed_users=[bob.id]
    )
    disabled = await make_server("off", url="https://off.example/mcp", enabled=False)
    flipped = await make_server("flipped", url="https://f.example/mcp", auth_type="byok")

    key = "sk-" + secrets.token_hex(12)
    assert (
        await client.put(f"/v1/servers/{for_alice['id']}/credential", json={"key": key}, headers=alice.auth)
    ).status_code == 200
    token_expiry = utcnow() - timedelta(minutes=3)
    async with transaction(hub.sessions) as session:
        await put_credential(
            session,
            hub.keyring,
            user_id=alice.id,
            server_id=everyone["id"],
            type=CredentialType.oauth2,
            payload={"access_token": "at-" + secrets.token_hex(8), "refresh_token": "rt-secret"},
            expires_at=token_expiry,
        )
        # A BYOK key stored before the server became OAuth2 does not count as connected (as for the resolver).
        await put_credential(
            session,
            hub.keyring,
            user_id=alice.id,
            server_id=flipped["id"],
            type=CredentialType.byok,
            payload={"key": key},
        )
    assert (
        await client.patch(f"/v1/servers/{flipped['id']}", json={"auth_type": "oauth2"}, headers=ADMIN)
    ).status_code == 200

    mine = {item["name"]: item for item in await _mine(client, alice.auth)}
    assert set(mine) == {"open", "notes", "search", "flipped"}
    assert mine["open"] == {
        "id": public["id"],
        "name": "open",
        "alias": "open",
        "description": None,
        "auth_type": "none",
        "per_user": False,
        "credential_type": None,
        "credential_status": None,
        "expires_at": None,
        "connected_at": None,
        "connect_url": None,
    }
    assert mine["search"]["credential_type"] == "byok" and mine["search"]["credential_status"] == "active"
    assert mine["search"]["connect_url"].endswith(f"/ui/servers/{for_alice['id']}/connect")
    notes = mine["notes"]
    assert notes["credential_type"] == "oauth2" and notes["per_user"] is True
    # The raw expiry, also when it is already past: the browser words it.
    assert notes["expires_at"].startswith(token_expiry.isoformat()[:19])
    assert mine["flipped"]["credential_type"] is None
    async with transaction(hub.sessions) as session:
        await session.execute(
            update(McpUserCredential)
            .where(McpUserCredential.server_id == everyone["id"])
            .values(status=CredentialStatus.needs_reconnect.value)
        )
    again = {item["name"]: item for item in await _mine(client, alice.auth, limit=1)}
    assert again["notes"]["credential_status"] == "needs_reconnect"
    assert set(again) == set(mine)  # the same servers, one per page

    response = await client.get("/v1/me/servers", headers=alice.auth)
    assert key not in response.text and "rt-secret" not in response.text and "at-" not in response.text

    # Bob: his own listed server, not Alice's, and none of her credentials.
    bobs = {item["name"]: item for item in await _mine(client, bob.auth)}
    assert set(bobs) == {"open", "notes", "private", "flipped"}
    assert bobs["notes"]["credential_type"] is None and bobs["private"]["id"] == for_bob["id"]
    assert disabled["id"] not in {item["id"] for item in bobs.values()}

    # A key restricted to some servers sees only those.
    limited = await client.post(
        "/v1/keys", json={"user_id": alice.id, "allowed_servers": ["search", "private"]}, headers=ADMIN
    )
    limited_auth = {"Authorization": f"Bearer {limited.json()['key']}"}
    assert [item["name"] for item in await _mine(client, limited_auth)] == ["search"]

    # No key, no list.
    assert (await client.get("/v1/me/servers")).status_code == 401


async def test_the_sql_rule_matches_the_gateways_rule(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server
) -> None:
    """Every access branch (public, all users, listed and not listed, disabled, key allowlist) answers
    the same here as on /mcp."""
    hub = hub_of(app)
    alice = await make_user("alice")
    bob = await make_user("bob")
    for access in ("public", "all_users", "listed_users"):
        for enabled in (True, False):
            await make_server(
                f"{access.replace('_', '-')}-{int(enabled)}",
                url="https://x.example/mcp",
                access=access,
                enabled=enabled,
                allowed_users=[alice.id] if access == "listed_users" else [],
            )
    keys = {
        "all": None,
        "some": ["public-1", "listed-users-1", "all-users-0"],
    }
    async with transaction(hub.sessions) as session:
        servers = list((await session.scalars(select(McpServer))).all())
    for user in (alice, bob):
        for allowed in keys.values():
            created = await client.post(
                "/v1/keys",
                json={"user_id": user.id, **({"allowed_servers": allowed} if allowed else {})},
                headers=ADMIN,
            )
            plaintext = created.json()["key"]
            async with transaction(hub.sessions) as session:
                caller = await authenticate_key(session, plaintext)
            listed = {alice.id: {s.id for s in servers if s.access == "listed_users"}}.get(user.id, set())
            expected = {s.name for s in servers if s.enabled and server_visible_to(s, caller, listed)}
            got = {item["name"] for item in await _mine(client, {"Authorization": f"Bearer {plaintext}"})}
            assert got == expected, (user.name, allowed)
            assert got  # every combination sees something, so the comparison is not vacuous
