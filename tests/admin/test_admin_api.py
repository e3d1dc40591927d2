"""Admin REST API on SQLite and PostgreSQL: CRUD, pagination, write-only secrets, validation, auth, and
nothing half-written after a failure."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy import func, select

from mcp_hub.runtime import Hub
from mcp_hub.store.models import AuditEvent, McpServer, McpServerUser, User

SECRET_INPUT_FIELDS = ("client_secret", "headers", "env")


def random_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _hub(app: FastAPI) -> Hub:
    hub: Hub = app.state.hub
    return hub


def http_server(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "transport": "http", "url": "https://mcp.example.com/mcp", **extra}


async def _create(
    client: httpx2.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any]
) -> Any:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _count(app: FastAPI, model: Any) -> int:
    async with _hub(app).sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _assert_no_secret_keys(payload: Any) -> None:
    """No response object ever carries a secret-bearing key."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            assert key not in SECRET_INPUT_FIELDS, f"secret field {key!r} in a response"
            _assert_no_secret_keys(value)
    elif isinstance(payload, list):
        for item in payload:
            _assert_no_secret_keys(item)


# --- servers -------------------------------------------------------------------------------------------


async def _check_server_crud(client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI) -> None:
    name = random_name("srv")
    created = await _create(
        client,
        admin_headers,
        "/v1/servers",
        http_server(
            name,
            description="docs",
            auth_type="oauth2",
            authorization_url="https://auth.example.com/authorize",
            token_url="https://auth.example.com/token",
            registration_url="https://auth.example.com/register",
            client_id="cid",
            client_secret="s3cret-value",
            scopes=["read", "write"],
            allowed_tools=["search"],
            headers={"X-Api-Key": "header-secret"},
            timeout_seconds=12.5,
        ),
    )
    server_id = created["id"]
    assert created["name"] == name
    assert created["alias"] == name  # derived from the (lower-case) name
    assert created["transport"] == "http"
    assert created["auth_type"] == "oauth2"
    assert created["scopes"] == ["read", "write"]
    assert created["allowed_tools"] == ["search"]
    assert created["client_secret_set"] is True
    assert created["header_names"] == ["X-Api-Key"]
    assert created["env_names"] == []
    assert created["access"] == "all_users"
    assert created["enabled"] is True
    assert created["timeout_seconds"] == 12.5

    fetched = (await client.get(f"/v1/servers/{server_id}", headers=admin_headers)).json()
    assert fetched == created

    patched = await client.patch(
        f"/v1/servers/{server_id}",
        json={"description": "new", "enabled": False, "scopes": ["read"], "client_secret": None},
        headers=admin_headers,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["description"], body["enabled"], body["scopes"]) == ("new", False, ["read"])
    assert body["client_secret_set"] is False
    assert body["header_names"] == ["X-Api-Key"], "untouched secrets stay"
    assert body["client_id"] == "cid"

    listed = (await client.get("/v1/servers", headers=admin_headers)).json()
    assert [item["id"] for item in listed["items"]] == [server_id]
    assert listed["next_cursor"] is None

    deleted = await client.delete(f"/v1/servers/{server_id}", headers=admin_headers)
    assert deleted.status_code == 204
    assert (await client.get(f"/v1/servers/{server_id}", headers=admin_headers)).status_code == 404
    assert (await client.delete(f"/v1/servers/{server_id}", headers=admin_headers)).status_code == 404
    assert await _count(app, McpServer) == 0

    async with _hub(app).sessions() as session:
        actions = list((await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all())
    assert actions == ["server.create", "server.update", "server.delete"]


async def _check_stdio_and_sse_servers(client: httpx2.AsyncClient, admin_headers: dict[str, str]) -> None:
    stdio = await _create(
        client,
        admin_headers,
        "/v1/servers",
        {
            "name": random_name("io"),
            "transport": "stdio",
            "command": "npx",
            "args": ["-y", "pkg"],
            "env": {"TOKEN": "env-secret", "MODE": "x"},
        },
    )
    assert (stdio["command"], stdio["args"], stdio["env_names"]) == ("npx", ["-y", "pkg"], ["MODE", "TOKEN"])
    sse = await _create(
        client,
        admin_headers,
        "/v1/servers",
        {"name": random_name("sse"), "transport": "sse", "url": "http://127.0.0.1:9/sse"},
    )
    assert sse["transport"] == "sse"
    # An OpenAPI server's spec is read and validated on create (tests/openapi covers working ones): one
    # that cannot be read is a 422 naming the problem, and no row is written.
    unreadable = await client.post(
        "/v1/servers",
        json={
            "name": random_name("api"),
            "transport": "http",
            "spec_location": "https://x.invalid/openapi.json",
        },
        headers=admin_headers,
    )
    assert unreadable.status_code == 422
    assert unreadable.json()["detail"][0]["loc"] == ["body", "spec_location"]


async def _check_secrets_are_write_only(client: httpx2.AsyncClient, admin_headers: dict[str, str]) -> None:
    canaries = {"client": "cs-7f1e0c", "header": "hv-93ab21", "env": "ev-55d0e7"}
    created = await _create(
        client,
        admin_headers,
        "/v1/servers",
        http_server(
            random_name("w"),
            auth_type="oauth2",
            client_id="cid",
            client_secret=canaries["client"],
            headers={"Authorization": f"Bearer {canaries['header']}"},
        ),
    )
    stdio = await _create(
        client,
        admin_headers,
        "/v1/servers",
        {"name": random_name("w"), "transport": "stdio", "command": "run", "env": {"K": canaries["env"]}},
    )
    assert created["client_secret_set"] is True
    assert created["header_names"] == ["Authorization"]
    assert stdio["env_names"] == ["K"]
    responses = [
        await client.get(f"/v1/servers/{created['id']}", headers=admin_headers),
        await client.get(f"/v1/servers/{stdio['id']}", headers=admin_headers),
        await client.get("/v1/servers", headers=admin_headers),
        await client.patch(f"/v1/servers/{created['id']}", json={"description": "d"}, headers=admin_headers),
    ]
    for response in responses:
        assert response.status_code == 200
        _assert_no_secret_keys(response.json())
        assert all(value not in response.text for value in canaries.values())
    _assert_no_secret_keys(created)
    _assert_no_secret_keys(stdio)


async def _check_openapi_transport_is_refused_with_guidance(
    client: httpx2.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for transport in ("openapi", "OpenAPI"):
        response = await client.post(
            "/v1/servers",
            json={"name": random_name("o"), "transport": transport, "url": "https://x.example/o.json"},
            headers=admin_headers,
        )
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert isinstance(detail, list)
        messages = " ".join(error["msg"] for error in detail)
        assert "'http'" in messages and "spec_location" in messages
    created = await _create(client, admin_headers, "/v1/servers", http_server(random_name("p")))
    patched = await client.patch(
        f"/v1/servers/{created['id']}", json={"transport": "openapi"}, headers=admin_headers
    )
    assert patched.status_code == 422
    assert "spec_location" in patched.json()["detail"][0]["msg"]


def _error_types(response: httpx2.Response) -> list[tuple[tuple[Any, ...], str]]:
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, response.text
    for error in detail:
        assert {"loc", "msg", "type"} <= set(error)
    return [(tuple(error["loc"]), error["type"]) for error in detail]


SERVER_VALIDATION_CASES: list[tuple[dict[str, Any], tuple[str, ...], str]] = [
    ({"transport": "http", "url": "https://x.example/mcp"}, ("body", "name"), "missing"),
    ({"name": "a"}, ("body", "transport"), "missing"),
    ({"name": 5, "transport": "http", "url": "https://x.example"}, ("body", "name"), "string_type"),
    (
        {"name": "a", "transport": "http", "url": "https://x", "enabled": "maybe"},
        ("body", "enabled"),
        "bool_parsing",
    ),
    (
        {"name": "a", "transport": "http", "url": "https://x", "scopes": "read"},
        ("body", "scopes"),
        "list_type",
    ),
    (
        {"name": "a", "transport": "http", "url": "https://x", "headers": {"H": 5}},
        ("body", "headers", "H"),
        "string_type",
    ),
    (
        {"name": "a", "transport": "http", "url": "https://x", "timeout_seconds": -1},
        ("body", "timeout_seconds"),
        "greater_than",
    ),
    ({"name": "a" * 1_000_000, "transport": "http", "url": "https://x"}, ("body", "name"), "string_too_long"),
    ({"name": "a", "transport": "ftp", "url": "https://x.example"}, ("body", "transport"), "literal_error"),
    (
        {"name": "a", "transport": "http", "url": "https://x", "colour": 1},
        ("body", "colour"),
        "extra_forbidden",
    ),
    ({"name": "a", "transport": "http", "url": "ftp://x.example"}, ("body", "url"), "value_error"),
    ({"name": "a", "transport": "stdio"}, ("body",), "value_error"),
    ({"name": "a", "transport": "sse", "url": "https://x", "command": "c"}, ("body",), "value_error"),
    (
        {"name": "bad name!", "transport": "http", "url": "https://x"},
        ("body", "name"),
        "string_pattern_mismatch",
    ),
    (
        {"name": "a", "transport": "http", "url": "https://x", "auth_type": "magic"},
        ("body", "auth_type"),
        "enum",
    ),
]


async def _check_server_validation_errors(
    client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    servers_before = await _count(app, McpServer)
    for body, expected_loc, expected_type in SERVER_VALIDATION_CASES:
        response = await client.post("/v1/servers", json=body, headers=admin_headers)
        assert response.status_code == 422, body
        errors = _error_types(response)
        assert any(loc == expected_loc and kind == expected_type for loc, kind in errors), errors
        assert len(response.content) < 10_000, "the offending value is not echoed back"
    assert await _count(app, McpServer) == servers_before
    created = await _create(client, admin_headers, "/v1/servers", http_server(random_name("v")))
    patch_cases: list[tuple[dict[str, Any], tuple[str | int, ...], str]] = [
        ({"enabled": None}, ("body",), "value_error"),
        ({"name": "x" * 1_000_000}, ("body", "name"), "string_too_long"),
        ({"args": [1]}, ("body", "args", 0), "string_type"),
        ({"id": "other"}, ("body", "id"), "extra_forbidden"),
    ]
    for patch, patch_loc, patch_type in patch_cases:
        response = await client.patch(f"/v1/servers/{created['id']}", json=patch, headers=admin_headers)
        assert response.status_code == 422, (patch, response.text)
        assert (patch_loc, patch_type) in _error_types(response), response.text[:300]
    assert (await client.get(f"/v1/servers/{created['id']}", headers=admin_headers)).json() == created
    assert await _count(app, McpServer) == servers_before + 1


async def _check_validation_on_users_and_keys(
    client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    users_before = await _count(app, User)
    cases = [
        ("/v1/users", {}, ("body", "name"), "missing"),
        ("/v1/users", {"name": ["x"]}, ("body", "name"), "string_type"),
        ("/v1/users", {"name": "u" * 1_000_000}, ("body", "name"), "string_too_long"),
        ("/v1/users", {"name": "ok", "role": "x"}, ("body", "role"), "extra_forbidden"),
        ("/v1/users", {"name": "ok", "email": "nope"}, ("body", "email"), "string_pattern_mismatch"),
        ("/v1/keys", {}, ("body", "user_id"), "missing"),
        ("/v1/keys", {"user_id": "x", "is_admin": "sure"}, ("body", "is_admin"), "bool_parsing"),
        ("/v1/keys", {"user_id": "x", "name": "k" * 1_000_000}, ("body", "name"), "string_too_long"),
        ("/v1/keys", {"user_id": "x", "scope": "all"}, ("body", "scope"), "extra_forbidden"),
    ]
    for path, body, loc, kind in cases:
        response = await client.post(path, json=body, headers=admin_headers)
        assert response.status_code == 422, (path, body)
        assert (loc, kind) in _error_types(response), (path, response.text[:300])
    user = await _create(client, admin_headers, "/v1/users", {"name": random_name("v")})
    for body, loc, kind in (
        ({"disabled": "perhaps"}, ("body", "disabled"), "bool_parsing"),
        ({"name": "n" * 1_000_000}, ("body", "name"), "string_too_long"),
        ({"is_admin": True}, ("body", "is_admin"), "extra_forbidden"),
    ):
        response = await client.patch(f"/v1/users/{user['id']}", json=body, headers=admin_headers)
        assert response.status_code == 422, body
        assert (loc, kind) in _error_types(response)
    assert (await client.get(f"/v1/users/{user['id']}", headers=admin_headers)).json() == user
    users_before += 1
    bad_json = await client.post(
        "/v1/users", content=b"{not json", headers={**admin_headers, "content-type": "application/json"}
    )
    assert bad_json.status_code == 422
    assert _error_types(bad_json)[0][1] == "json_invalid"
    for path in ("/v1/servers", "/v1/users", "/v1/keys"):
        for query in ("limit=0", "limit=201", "limit=abc", "cursor=" + "c" * 65):
            response = await client.get(f"{path}?{query}", headers=admin_headers)
            assert response.status_code == 422, (path, query)
            assert response.json()["detail"][0]["loc"][0] == "query"
    assert await _count(app, User) == users_before


async def _check_unknown_ids_are_404(client: httpx2.AsyncClient, admin_headers: dict[str, str]) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    requests = [
        ("GET", f"/v1/servers/{missing}", None),
        ("PATCH", f"/v1/servers/{missing}", {"description": "x"}),
        ("DELETE", f"/v1/servers/{missing}", None),
        ("GET", f"/v1/users/{missing}", None),
        ("PATCH", f"/v1/users/{missing}", {"email": "a@b.c"}),
        ("DELETE", f"/v1/users/{missing}", None),
        ("GET", f"/v1/keys/{missing}", None),
        ("DELETE", f"/v1/keys/{missing}", None),
        ("POST", "/v1/keys", {"user_id": missing}),
    ]
    for method, path, body in requests:
        response = await client.request(method, path, json=body, headers=admin_headers)
        assert response.status_code == 404, (method, path, response.text)
        assert missing in response.json()["detail"]


async def _check_duplicate_names_are_409_and_leave_the_original(
    client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    servers_before = await _count(app, McpServer)
    audit_before = await _count(app, AuditEvent)
    name = random_name("dup")
    original = await _create(
        client, admin_headers, "/v1/servers", http_server(name, description="first", headers={"A": "1"})
    )
    again = await client.post(
        "/v1/servers",
        json=http_server(name, description="second", url="https://other.example/mcp", headers={"B": "2"}),
        headers=admin_headers,
    )
    assert again.status_code == 409
    assert name in again.json()["detail"]
    # Same alias, other name: also a conflict.
    alias_clash = await client.post(
        "/v1/servers", json=http_server(random_name("x"), alias=original["alias"]), headers=admin_headers
    )
    assert alias_clash.status_code == 409
    after = (await client.get(f"/v1/servers/{original['id']}", headers=admin_headers)).json()
    assert after == original
    assert await _count(app, McpServer) == servers_before + 1

    other = await _create(client, admin_headers, "/v1/servers", http_server(random_name("o")))
    rename = await client.patch(f"/v1/servers/{other['id']}", json={"name": name}, headers=admin_headers)
    assert rename.status_code == 409
    assert (await client.get(f"/v1/servers/{other['id']}", headers=admin_headers)).json() == other

    user_name = random_name("u")
    await _create(client, admin_headers, "/v1/users", {"name": user_name})
    users_before = await _count(app, User)
    dup_user = await client.post("/v1/users", json={"name": user_name}, headers=admin_headers)
    assert dup_user.status_code == 409
    assert await _count(app, User) == users_before
    assert await _count(app, AuditEvent) == audit_before + 3, "failed requests leave no audit row either"


async def _check_failed_create_leaves_nothing_half_written(
    client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    servers_before = await _count(app, McpServer)
    links_before = await _count(app, McpServerUser)
    user = await _create(client, admin_headers, "/v1/users", {"name": random_name("u")})
    response = await client.post(
        "/v1/servers",
        json=http_server(
            random_name("half"),
            access="listed_users",
            allowed_users=[user["id"], "no-such-user"],
            client_secret="cs",
        ),
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert "no-such-user" in response.json()["detail"][0]["msg"]
    assert await _count(app, McpServer) == servers_before
    assert await _count(app, McpServerUser) == links_before

    server = await _create(
        client,
        admin_headers,
        "/v1/servers",
        http_server(random_name("ok"), access="listed_users", allowed_users=[user["id"]]),
    )
    assert server["allowed_users"] == [user["id"]]
    # A failing update changes nothing: neither the fields nor the user list.
    failed = await client.patch(
        f"/v1/servers/{server['id']}",
        json={"description": "changed", "allowed_users": ["ghost"], "headers": {"H": "v"}},
        headers=admin_headers,
    )
    assert failed.status_code == 422
    assert (await client.get(f"/v1/servers/{server['id']}", headers=admin_headers)).json() == server
    # An update that breaks the transport's shape is refused, and nothing changes.
    shape = await client.patch(f"/v1/servers/{server['id']}", json={"url": None}, headers=admin_headers)
    assert shape.status_code == 422
    assert "needs a url" in shape.json()["detail"][0]["msg"]
    assert (await client.get(f"/v1/servers/{server['id']}", headers=admin_headers)).json() == server


async def _check_pagination_walks_every_item_once(
    client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    created = {
        (await _create(client, admin_headers, "/v1/servers", http_server(f"page-{i}")))["id"]
        for i in range(7)
    }
    for path, expected in (("/v1/servers", created),):
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            query: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            response = await client.get(path, params=query, headers=admin_headers)
            assert response.status_code == 200
            page = response.json()
            assert len(page["items"]) <= 3
            seen.extend(item["id"] for item in page["items"])
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages < 10, "pagination does not end"
        assert len(seen) == len(set(seen)) == 7
        assert set(seen) == expected
        assert seen == sorted(seen), "explicit, stable order"
        assert pages == 3


async def _check_user_and_key_pagination(client: httpx2.AsyncClient, admin_headers: dict[str, str]) -> None:
    user_ids = {
        (await _create(client, admin_headers, "/v1/users", {"name": f"user-{i}"}))["id"] for i in range(7)
    }
    key_ids = {
        (await _create(client, admin_headers, "/v1/keys", {"user_id": user_id}))["id"] for user_id in user_ids
    }
    for path, expected_at_least in (("/v1/users", user_ids), ("/v1/keys", key_ids)):
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(path, params=params, headers=admin_headers)).json()
            seen.extend(item["id"] for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # The bootstrap admin user and its key are there too.
        assert len(seen) == len(set(seen)) == len(expected_at_least) + 1
        assert expected_at_least < set(seen)
        assert seen == sorted(seen)
    one_user = next(iter(user_ids))
    filtered = (await client.get("/v1/keys", params={"user_id": one_user}, headers=admin_headers)).json()
    assert [item["user_id"] for item in filtered["items"]] == [one_user]


async def _check_users_crud(client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI) -> None:
    name = random_name("u")
    user = await _create(client, admin_headers, "/v1/users", {"name": name, "email": "a@example.com"})
    assert (user["name"], user["email"], user["disabled"]) == (name, "a@example.com", False)
    assert (await client.get(f"/v1/users/{user['id']}", headers=admin_headers)).json() == user
    patched = await client.patch(
        f"/v1/users/{user['id']}", json={"email": "b@example.com", "disabled": True}, headers=admin_headers
    )
    assert patched.status_code == 200
    assert (patched.json()["email"], patched.json()["disabled"]) == ("b@example.com", True)
    assert (await client.delete(f"/v1/users/{user['id']}", headers=admin_headers)).status_code == 204
    assert (await client.get(f"/v1/users/{user['id']}", headers=admin_headers)).status_code == 404


async def _check_keys_crud_and_revocation(client: httpx2.AsyncClient, admin_headers: dict[str, str]) -> None:
    user = await _create(client, admin_headers, "/v1/users", {"name": random_name("u")})
    created = await _create(
        client,
        admin_headers,
        "/v1/keys",
        {
            "user_id": user["id"],
            "name": "ci",
            "is_admin": True,
            "allowed_servers": ["a"],
            "allowed_tools": ["t"],
        },
    )
    plaintext = created["key"]
    assert plaintext.startswith(created["prefix"])
    assert (created["is_admin"], created["allowed_servers"], created["allowed_tools"]) == (True, ["a"], ["t"])
    fetched = (await client.get(f"/v1/keys/{created['id']}", headers=admin_headers)).json()
    assert "key" not in fetched and plaintext not in json.dumps(fetched)
    assert fetched["prefix"] == created["prefix"]
    listed = (await client.get("/v1/keys", headers=admin_headers)).text
    assert plaintext not in listed

    own = {"Authorization": f"Bearer {plaintext}"}
    assert (await client.get("/v1/servers", headers=own)).status_code == 200
    revoked = await client.delete(f"/v1/keys/{created['id']}", headers=admin_headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = await client.get("/v1/servers", headers=own)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    # Revoking again is harmless and keeps the first timestamp.
    again = await client.delete(f"/v1/keys/{created['id']}", headers=admin_headers)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


BAD_AUTHORIZATIONS = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer mcph_not-a-real-key",
    "Bearer " + "x" * 5000,
]


async def _check_missing_or_bad_key_is_401(client: httpx2.AsyncClient, app: FastAPI) -> None:
    servers_before = await _count(app, McpServer)
    for authorization in BAD_AUTHORIZATIONS:
        headers = {"Authorization": authorization} if authorization is not None else {}
        for method, path, body in (
            ("GET", "/v1/servers", None),
            ("POST", "/v1/servers", http_server("nope")),
            ("GET", "/v1/users", None),
            ("POST", "/v1/users", {"name": "nope"}),
            ("GET", "/v1/keys", None),
            ("DELETE", "/v1/keys/whatever", None),
        ):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (authorization, method, path)
            assert response.headers["www-authenticate"].lower().startswith("bearer")
            assert isinstance(response.json()["detail"], str)
    assert await _count(app, McpServer) == servers_before


async def _check_non_admin_key_is_403(
    client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    servers_before = await _count(app, McpServer)
    user = await _create(client, admin_headers, "/v1/users", {"name": random_name("u")})
    key = await _create(client, admin_headers, "/v1/keys", {"user_id": user["id"]})
    assert key["is_admin"] is False
    headers = {"Authorization": f"Bearer {key['key']}"}
    for method, path, body in (
        ("GET", "/v1/servers", None),
        ("POST", "/v1/servers", http_server("nope")),
        ("POST", "/v1/keys", {"user_id": user["id"], "is_admin": True}),
        ("DELETE", f"/v1/users/{user['id']}", None),
    ):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path)
        assert "admin" in response.json()["detail"]
    assert await _count(app, McpServer) == servers_before


async def _check_disabled_user_key_is_401(client: httpx2.AsyncClient, admin_headers: dict[str, str]) -> None:
    user = await _create(client, admin_headers, "/v1/users", {"name": random_name("u")})
    key = await _create(client, admin_headers, "/v1/keys", {"user_id": user["id"], "is_admin": True})
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.get("/v1/users", headers=headers)).status_code == 200
    await client.patch(f"/v1/users/{user['id']}", json={"disabled": True}, headers=admin_headers)
    response = await client.get("/v1/users", headers=headers)
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]


async def _check_bootstrap_admin_key_is_registered_hashed(
    client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    response = await client.get("/v1/keys", headers=admin_headers)
    assert response.status_code == 200
    (key,) = response.json()["items"]
    assert key["is_admin"] is True
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    assert token.startswith(key["prefix"])
    assert token not in response.text
    admin_user = (await client.get(f"/v1/users/{key['user_id']}", headers=admin_headers)).json()
    assert admin_user["name"] == "admin"
    # The admin cannot delete the user whose key they are using.
    refused = await client.delete(f"/v1/users/{key['user_id']}", headers=admin_headers)
    assert refused.status_code == 422
    assert (await client.get("/v1/users", headers=admin_headers)).status_code == 200


# Grouped so each database is created and migrated once per group (the PostgreSQL setup dominates).


async def test_servers(client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI) -> None:
    await _check_server_crud(client, admin_headers, app)  # first: it counts every row and audit event
    await _check_stdio_and_sse_servers(client, admin_headers)
    await _check_secrets_are_write_only(client, admin_headers)
    await _check_openapi_transport_is_refused_with_guidance(client, admin_headers)


async def test_bad_input(client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI) -> None:
    await _check_server_validation_errors(client, admin_headers, app)
    await _check_validation_on_users_and_keys(client, admin_headers, app)
    await _check_unknown_ids_are_404(client, admin_headers)


async def test_failures_leave_nothing_half_written(
    client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    await _check_duplicate_names_are_409_and_leave_the_original(client, admin_headers, app)
    await _check_failed_create_leaves_nothing_half_written(client, admin_headers, app)


async def test_pagination(client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI) -> None:
    await _check_pagination_walks_every_item_once(client, admin_headers, app)
    await _check_user_and_key_pagination(client, admin_headers)


async def test_users_keys_and_access(
    client: httpx2.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    await _check_bootstrap_admin_key_is_registered_hashed(client, admin_headers, app)  # first: one key
    await _check_users_crud(client, admin_headers, app)
    await _check_keys_crud_and_revocation(client, admin_headers)
    await _check_missing_or_bad_key_is_401(client, app)
    await _check_non_admin_key_is_403(client, admin_headers, app)
    await _check_disabled_user_key_is_401(client, admin_headers)
