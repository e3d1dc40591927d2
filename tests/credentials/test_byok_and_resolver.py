"""BYOK keys through the REST API and the resolver, type-checked deletes, the user's credential list,
and the resolver's answers for shared and per-user servers. On SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx2
import pytest
from fastapi import FastAPI

from mcp_hub.credentials.resolver import resolve
from mcp_hub.credentials.store import put_credential
from mcp_hub.errors import NotConnectedError, NotFoundError
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import CredentialType, utcnow
from tests.credentials.conftest import ADMIN, hub_of


async def test_byok_put_resolve_list_delete(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server
) -> None:
    hub = hub_of(app)
    alice, bob = await make_user("alice"), await make_user("bob")
    server = await make_server("search", url="https://search.example/mcp", auth_type="byok")
    key = "sk-" + secrets.token_hex(16)

    with pytest.raises(NotConnectedError) as missing:
        await resolve(hub, alice.id, server["id"])
    assert missing.value.connect_url.endswith(f"/ui/servers/{server['id']}/connect")
    assert missing.value.connect_url in missing.value.message

    put = await client.put(f"/v1/servers/{server['id']}/credential", json={"key": key}, headers=alice.auth)
    assert put.status_code == 200, put.text
    assert put.json()["set"] is True and put.json()["type"] == "byok" and put.json()["updated_at"]
    assert key not in put.text

    auth = await resolve(hub, alice.id, server["id"])
    assert auth.kind == "byok"
    assert dict(auth.headers) == {"Authorization": f"Bearer {key}"}
    assert key not in repr(auth) and key not in auth.identity
    # Bob has no key of his own, and never gets Alice's.
    with pytest.raises(NotConnectedError):
        await resolve(hub, bob.id, server["id"])
    with pytest.raises(NotConnectedError):
        await resolve(hub, None, server["id"])

    listed = await client.get("/v1/credentials", headers=alice.auth)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(i["type"], i["server_id"], i["server_name"], i["status"], i["expires_at"]) for i in items] == [
        ("byok", server["id"], "search", "active", None)
    ]
    assert key not in listed.text
    assert (await client.get("/v1/credentials", headers=bob.auth)).json()["items"] == []

    # Deleting OAuth tokens never removes the key; the BYOK delete does, once.
    assert (await client.delete(f"/v1/servers/{server['id']}/oauth", headers=alice.auth)).status_code == 404
    assert (await resolve(hub, alice.id, server["id"])).kind == "byok"
    assert (
        await client.delete(f"/v1/servers/{server['id']}/credential", headers=alice.auth)
    ).status_code == 204
    assert (
        await client.delete(f"/v1/servers/{server['id']}/credential", headers=alice.auth)
    ).status_code == 404
    with pytest.raises(NotConnectedError):
        await resolve(hub, alice.id, server["id"])


async def test_byok_delivery_modes(app: FastAPI, client: httpx2.AsyncClient, make_user, make_server) -> None:
    hub = hub_of(app)
    alice = await make_user("alice")
    header = await make_server(
        "hdr",
        url="https://a.example/mcp",
        auth_type="byok",
        byok_mode="header",
        byok_name="X-API-Key",
        byok_template="{key}",
        headers={"X-Org": "acme"},
    )
    query = await make_server(
        "qry", url="https://b.example/mcp", auth_type="byok", byok_mode="query", byok_name="api_key"
    )
    env = await make_server(
        "env",
        transport="stdio",
        command="some-server",
        auth_type="byok",
        byok_mode="env",
        byok_name="API_TOKEN",
    )
    for server in (header, query, env):
        response = await client.put(
            f"/v1/servers/{server['id']}/credential", json={"key": "k-123"}, headers=alice.auth
        )
        assert response.status_code == 200, response.text
    as_header = await resolve(hub, alice.id, header["id"])
    assert dict(as_header.headers) == {"X-Org": "acme", "X-API-Key": "k-123"}
    as_query = await resolve(hub, alice.id, query["id"])
    assert dict(as_query.query) == {"api_key": "k-123"} and not as_query.headers
    as_env = await resolve(hub, alice.id, env["id"])
    assert dict(as_env.env) == {"API_TOKEN": "k-123"}
    shown = await client.get(f"/v1/servers/{header['id']}", headers=ADMIN)
    assert shown.json()["byok_mode"] == "header" and shown.json()["byok_template"] == "{key}"


async def test_byok_validation_and_access(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    byok = await make_server("search", url="https://s.example/mcp", auth_type="byok")
    oauth = await make_server("notes", url="https://n.example/mcp", auth_type="oauth2")
    private = await make_server(
        "private",
        url="https://p.example/mcp",
        auth_type="byok",
        access="listed_users",
        allowed_users=[bob.id],
    )
    path = f"/v1/servers/{byok['id']}/credential"
    canary = "canary-" + secrets.token_hex(8)
    for body in ({"key": canary + "\r\nX-Evil: 1"}, {"key": ""}, {"key": canary, "extra": 1}, {}):
        response = await client.put(path, json=body, headers=alice.auth)
        assert response.status_code == 422, response.text
        assert canary not in response.text  # validation errors do not echo the key
    assert (await client.put(path, json={"key": "x" * 4097}, headers=alice.auth)).status_code == 422
    assert (await client.put(path, json={"key": "k"})).status_code == 401
    assert (
        await client.put(path, json={"key": "k"}, headers={"Authorization": "Bearer nope"})
    ).status_code == 401
    wrong_type = await client.put(
        f"/v1/servers/{oauth['id']}/credential", json={"key": "k"}, headers=alice.auth
    )
    assert wrong_type.status_code == 422
    hidden = await client.put(
        f"/v1/servers/{private['id']}/credential", json={"key": "k"}, headers=alice.auth
    )
    assert hidden.status_code == 404
    assert (
        await client.put(f"/v1/servers/{private['id']}/credential", json={"key": "k"}, headers=bob.auth)
    ).status_code == 200
    assert (
        await client.put("/v1/servers/nope/credential", json={"key": "k"}, headers=alice.auth)
    ).status_code == 404
    assert (await client.delete("/v1/servers/nope/credential", headers=alice.auth)).status_code == 404
    assert (
        await client.get(f"/v1/servers/{byok['id']}/oauth/authorize", headers=alice.auth)
    ).status_code == 422  # a BYOK server has no OAuth flow


async def test_types_never_overwrite_each_other(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server
) -> None:
    """An OAuth row is not replaced by a BYOK PUT unless the call says replace, and deleting the BYOK key
    of a server whose row is OAuth is a 404 that leaves the tokens alone."""
    hub = hub_of(app)
    alice = await make_user("alice")
    server = await make_server("search", url="https://s.example/mcp", auth_type="byok")
    expired_at = utcnow() - timedelta(hours=3)
    async with transaction(hub.sessions) as session:
        await put_credential(
            session,
            hub.keyring,
            user_id=alice.id,
            server_id=server["id"],
            type=CredentialType.oauth2,
            payload={"access_token": "a", "refresh_token": "r", "client_id": "c"},
            expires_at=expired_at,
        )
    path = f"/v1/servers/{server['id']}/credential"
    assert (await client.delete(path, headers=alice.auth)).status_code == 404
    listed = (await client.get("/v1/credentials", headers=alice.auth)).json()["items"]
    assert listed[0]["type"] == "oauth2"
    # expires_at is the raw timestamp, also when it is already in the past.
    assert listed[0]["expires_at"].startswith(expired_at.isoformat()[:19])
    conflict = await client.put(path, json={"key": "k"}, headers=alice.auth)
    assert conflict.status_code == 409
    replaced = await client.put(path, json={"key": "k", "replace": True}, headers=alice.auth)
    assert replaced.status_code == 200
    assert (await resolve(hub, alice.id, server["id"])).kind == "byok"
    assert (await client.delete(f"/v1/servers/{server['id']}/oauth", headers=alice.auth)).status_code == 404


async def test_shared_servers_resolve_without_a_user_credential(app: FastAPI, make_user, make_server) -> None:
    hub = hub_of(app)
    alice = await make_user("alice")
    static = await make_server(
        "static", url="https://st.example/mcp", auth_type="static", headers={"Authorization": "Bearer shared"}
    )
    open_server = await make_server("open", url="https://o.example/mcp")
    auth = await resolve(hub, alice.id, static["id"])
    assert auth.kind == "static" and dict(auth.headers) == {"Authorization": "Bearer shared"}
    assert auth.identity == "static" and auth.credential_id is None
    assert (await resolve(hub, None, open_server["id"])).kind == "none"
    with pytest.raises(NotFoundError):
        await resolve(hub, alice.id, "no-such-server")
