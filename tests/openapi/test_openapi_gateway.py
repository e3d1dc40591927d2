"""A real REST API exposed through the hub: every operation called through /mcp with the Python SDK
client gives the same data as the direct REST call, and each user (BYOK key or OAuth token) sees their
own data."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from fastapi import FastAPI, Request
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from mcp_hub.credentials.store import put_credential
from mcp_hub.openapi.runtime import SPEC_CLIENT, UNSAVED_CLIENT, OpenApiRuntime
from mcp_hub.runtime import Hub
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import CredentialType, McpServer
from tests.gateway.clients import shttp_session, text_of
from tests.gateway.conftest import RunningHub
from tests.openapi.conftest import RestApi, serve_app
from tests.openapi.rest_app import API_KEYS, OAUTH_TOKENS


def structured(result: types.CallToolResult) -> Any:
    # The text is the REST body as it came; structuredContent the same JSON (objects as they are).
    value = json.loads(text_of(result))
    expected = value if isinstance(value, dict) else {"result": value}
    assert result.structured_content == expected
    return value


async def add_byok_user(hub: RunningHub, server_id: str, name: str, secret: str) -> str:
    user = await hub.add_user(name)
    key = await hub.add_key(user)
    response = await hub.admin.put(
        f"/v1/servers/{server_id}/credential",
        json={"key": secret},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return key


async def add_oauth_user(hub: RunningHub, server_id: str, name: str, token: str, **payload: str) -> str:
    """An OAuth2 credential row seeded through the credential store (the browser authorize flow itself is
    tested in tests/credentials); the resolver treats it like any token the callback stored."""
    user = await hub.add_user(name)
    key = await hub.add_key(user)
    app_hub: Hub = hub.app.state.hub
    async with transaction(app_hub.sessions) as session:
        await put_credential(
            session,
            app_hub.keyring,
            user_id=user,
            server_id=server_id,
            type=CredentialType.oauth2,
            payload={"access_token": token, "client_id": "notes-client", **payload},
        )
    return key


async def call(
    session: ClientSession, name: str, arguments: dict[str, Any] | None = None
) -> types.CallToolResult:
    return await session.call_tool(name, arguments or {})


@pytest.fixture
async def notes_servers(openapi_hub: RunningHub, rest_api: RestApi) -> dict[str, str]:
    """The same REST API twice: once with BYOK keys, once with OAuth tokens. Returns server ids."""
    byok = await openapi_hub.add_server(
        "notes", transport="http", spec_location=rest_api.spec_url, auth_type="byok"
    )
    oauth = await openapi_hub.add_server(
        "notes-oauth", alias="onotes", transport="http", spec_location=rest_api.spec_url, auth_type="oauth2"
    )
    return {"byok": byok["id"], "oauth": oauth["id"]}


async def test_tools_come_from_the_spec(openapi_hub: RunningHub, notes_servers: dict[str, str]) -> None:
    key = await add_byok_user(openapi_hub, notes_servers["byok"], "alice", "key-alice")
    async with shttp_session(f"{openapi_hub.url}/mcp/notes", key) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) >= {
        "whoami",
        "listNotes",
        "createNote",
        "getNote",
        "deleteNote",
        "getFile",
        "countTree",
    }
    assert tools["listNotes"].description == "List your notes"
    schema = tools["listNotes"].input_schema
    # The $ref to the Order enum is inlined; the query parameters keep their constraints.
    assert schema["properties"]["order"]["enum"] == ["newest", "oldest"]
    assert schema["properties"]["limit"]["maximum"] == 100
    create = tools["createNote"].input_schema
    assert create["required"] == ["body"]
    assert create["properties"]["body"]["required"] == ["title"]
    # Nested $ref (NoteIn.author -> Person) inlined.
    author = create["properties"]["body"]["properties"]["author"]["anyOf"][0]
    assert author["properties"]["name"] == {"type": "string", "title": "Name"}
    get_note = tools["getNote"].input_schema
    assert get_note["required"] == ["note_id"] and "x-trace-id" in get_note["properties"]
    # A recursive schema: inlined once, the inner occurrence points at $defs, nothing loops.
    tree = tools["countTree"].input_schema
    assert tree["properties"]["body"] == {"$ref": "#/$defs/TreeNode"}
    assert tree["$defs"]["TreeNode"]["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}


async def test_every_operation_matches_the_direct_rest_call(
    openapi_hub: RunningHub, rest_api: RestApi, notes_servers: dict[str, str]
) -> None:
    key = await add_byok_user(openapi_hub, notes_servers["byok"], "alice", "key-alice")
    direct = httpx2.AsyncClient(base_url=rest_api.url, headers={"X-API-Key": "key-alice"})
    async with direct, shttp_session(f"{openapi_hub.url}/mcp", key) as session:
        assert structured(await call(session, "notes__whoami")) == (await direct.get("/me")).json()

        created = structured(
            await call(
                session,
                "notes__createNote",
                {"body": {"title": "first", "tags": ["a", "b"], "author": {"name": "Al"}}},
            )
        )
        assert created["owner"] == "alice" and created["author"] == {"name": "Al", "email": None}
        second = (await direct.post("/notes", json={"title": "second", "tags": ["b"]})).json()

        for args, params in (
            ({}, {}),
            ({"tag": "a"}, {"tag": "a"}),
            ({"order": "newest", "limit": 1}, {"order": "newest", "limit": 1}),
        ):
            via_hub = structured(await call(session, "notes__listNotes", args))
            assert via_hub == (await direct.get("/notes", params=params)).json()
        assert [
            note["title"] for note in structured(await call(session, "notes__listNotes", {"order": "newest"}))
        ] == [
            "second",
            "first",
        ]

        got = structured(
            await call(session, "notes__getNote", {"note_id": created["id"], "x-trace-id": "t-1"})
        )
        assert got == (await direct.get(f"/notes/{created['id']}", headers={"X-Trace-Id": "t-1"})).json()
        assert got["trace"] == "t-1"

        assert structured(
            await call(session, "notes__countTree", {"body": {"label": "r", "children": [{"label": "c"}]}})
        ) == {"nodes": 2}
        readme = await call(session, "notes__readme")
        assert not readme.is_error and readme.structured_content is None
        assert readme.content[0].text == (await direct.get("/readme")).text  # type: ignore[union-attr]
        assert (
            structured(await call(session, "notes__getFile", {"name": "report.pdf"}))
            == (await direct.get("/files/report.pdf")).json()
        )

        deleted = await call(session, "notes__deleteNote", {"note_id": second["id"]})
        assert not deleted.is_error and deleted.content[0].text == "HTTP 204"  # type: ignore[union-attr]
        missing = await call(session, "notes__getNote", {"note_id": second["id"]})
        assert missing.is_error
        assert missing.content[0].text.startswith("HTTP 404 Not Found: ")  # type: ignore[union-attr]
        assert f"no note {second['id']}" in missing.content[0].text  # type: ignore[union-attr]

        # Arguments are checked against the schema before any request goes out.
        before = len(rest_api.state.hits)
        bad = await call(session, "notes__listNotes", {"order": "sideways"})
        assert bad.is_error and "invalid arguments" in bad.content[0].text  # type: ignore[union-attr]
        missing_required = await call(session, "notes__getNote", {})
        assert missing_required.is_error and "note_id" in missing_required.content[0].text  # type: ignore[union-attr]
        assert len(rest_api.state.hits) == before


async def test_byok_and_oauth_users_each_see_their_own_data(
    openapi_hub: RunningHub, rest_api: RestApi, notes_servers: dict[str, str]
) -> None:
    keys = {
        "alice": await add_byok_user(openapi_hub, notes_servers["byok"], "alice", "key-alice"),
        "bob": await add_byok_user(openapi_hub, notes_servers["byok"], "bob", "key-bob"),
        "carol": await add_oauth_user(openapi_hub, notes_servers["oauth"], "carol", "token-carol"),
        "dave": await add_oauth_user(openapi_hub, notes_servers["oauth"], "dave", "token-dave"),
    }
    prefix = {"alice": "notes", "bob": "notes", "carol": "onotes", "dave": "onotes"}
    for user, key in keys.items():
        async with shttp_session(f"{openapi_hub.url}/mcp", key) as session:
            assert structured(await call(session, f"{prefix[user]}__whoami")) == {"user": user}
            await call(session, f"{prefix[user]}__createNote", {"body": {"title": f"{user}'s note"}})
    for user, key in keys.items():
        async with shttp_session(f"{openapi_hub.url}/mcp", key) as session:
            notes = structured(await call(session, f"{prefix[user]}__listNotes"))
        assert [note["title"] for note in notes] == [f"{user}'s note"]
    # The REST API saw each user's own note; its secrets never became tool data.
    assert {owner: [n.title for n in notes] for owner, notes in rest_api.state.notes.items()} == {
        user: [f"{user}'s note"] for user in keys
    }
    assert set(API_KEYS.values()) | set(OAUTH_TOKENS.values()) == set(keys)


async def test_users_never_share_cookies_or_secrets(
    openapi_hub: RunningHub, rest_api: RestApi, notes_servers: dict[str, str]
) -> None:
    """The pooled HTTP client is shared by every user of a server: a cookie set on one user's call must
    not ride along on another's, and no secret shows in results."""
    keys = {
        user: await add_byok_user(openapi_hub, notes_servers["byok"], user, secret)
        for user, secret in (("alice", "key-alice"), ("bob", "key-bob"))
    }
    for user in ("alice", "bob", "alice"):
        async with shttp_session(f"{openapi_hub.url}/mcp/notes", keys[user]) as session:
            result = await call(session, "session")
            assert structured(result) == {"user": user, "cookie_sent": None}
            listed = await session.list_tools()
            assert "key-alice" not in listed.model_dump_json() and "key-bob" not in result.model_dump_json()


async def test_a_query_string_key_stays_out_of_the_logs(
    openapi_hub: RunningHub, notes_servers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The spec puts this API's key in the query string under a name of its own (`sig_token`): httpx2
    logs each request's URL at INFO, and the URL must not carry the key into the log."""
    key = await add_byok_user(openapi_hub, notes_servers["byok"], "alice", "key-alice")
    caplog.set_level(logging.DEBUG)
    async with shttp_session(f"{openapi_hub.url}/mcp/notes", key) as session:
        assert structured(await call(session, "whoamiSigned")) == {"user": "alice"}
    assert any("/signed" in record.getMessage() for record in caplog.records)
    assert "key-alice" not in caplog.text


async def test_a_row_without_its_document_fails_alone_until_refreshed(
    openapi_hub: RunningHub, rest_api: RestApi
) -> None:
    """Rows made before OpenAPI support (spec_location set, no stored document): that server reports
    what to do, the others keep working, and a refresh brings it up."""
    server = await openapi_hub.add_server(
        "notes", transport="http", spec_location=rest_api.spec_url, access="public"
    )
    await openapi_hub.add_server("files", transport="http", spec_location=rest_api.spec_url, access="public")
    app_hub: Hub = openapi_hub.app.state.hub
    async with transaction(app_hub.sessions) as session:
        row = await session.get(McpServer, server["id"])
        assert row is not None
        row.spec_document = None
    async with shttp_session(f"{openapi_hub.url}/mcp/notes", None) as session:
        with pytest.raises(MCPError, match="misconfigured"):
            await session.list_tools()
    key = await openapi_hub.add_key(await openapi_hub.add_user("uma"))
    async with shttp_session(f"{openapi_hub.url}/mcp", key) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
    assert "files__whoami" in names and not any(name.startswith("notes__") for name in names)
    assert (await openapi_hub.admin.post(f"/v1/servers/{server['id']}/refresh")).status_code == 200
    async with shttp_session(f"{openapi_hub.url}/mcp/notes", None) as session:
        assert "whoami" in [tool.name for tool in (await session.list_tools()).tools]


async def test_concurrent_calls_on_one_session(
    openapi_hub: RunningHub, rest_api: RestApi, notes_servers: dict[str, str]
) -> None:
    key = await add_byok_user(openapi_hub, notes_servers["byok"], "alice", "key-alice")
    results: dict[int, Any] = {}
    async with shttp_session(f"{openapi_hub.url}/mcp/notes", key) as session:

        async def one(index: int) -> None:
            results[index] = structured(await call(session, "getFile", {"name": f"f{index}"}))["name"]

        async with anyio.create_task_group() as tg:
            for index in range(20):
                tg.start_soon(one, index)
    assert results == {index: f"f{index}" for index in range(20)}


async def test_an_oauth_server_takes_its_endpoints_from_the_spec(
    openapi_hub: RunningHub, rest_api: RestApi
) -> None:
    """No MCP URL to discover from: the spec's oauth2 scheme gives the authorize and token endpoints,
    and a user's connect flow starts there."""
    server = await openapi_hub.add_server(
        "notes-oauth",
        transport="http",
        spec_location=rest_api.spec_url,
        auth_type="oauth2",
        client_id="notes-client",
    )
    assert (server["authorization_url"], server["token_url"]) == (
        "https://auth.example/authorize",
        "https://auth.example/token",
    )
    key = await openapi_hub.add_key(await openapi_hub.add_user("carol"))
    started = await openapi_hub.admin.get(
        f"/v1/servers/{server['id']}/oauth/authorize",
        headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
    )
    assert started.status_code == 200, started.text
    url = started.json()["authorization_url"]
    assert url.startswith("https://auth.example/authorize?") and "client_id=notes-client" in url
    # An admin's own endpoints win over the spec's.
    own = await openapi_hub.add_server(
        "notes-own",
        alias="own",
        transport="http",
        spec_location=rest_api.spec_url,
        auth_type="oauth2",
        authorization_url="https://login.example.com/auth",
        token_url="https://login.example.com/token",
    )
    assert (own["authorization_url"], own["token_url"]) == (
        "https://login.example.com/auth",
        "https://login.example.com/token",
    )


async def test_testing_unsaved_forms_shares_one_pooled_client(
    openapi_hub: RunningHub, rest_api: RestApi
) -> None:
    """Each test of an unsaved form runs under a fresh server id; a pooled client per id would be kept
    for as long as the hub runs. They share one client, and a saved server still gets its own."""
    runtime: OpenApiRuntime = openapi_hub.app.state.gateway.openapi
    form = {"transport": "http", "spec_location": rest_api.spec_url}
    for _ in range(3):
        tested = await openapi_hub.admin.post("/v1/servers/test", json=form)
        assert tested.status_code == 200, tested.text
        assert "whoami" in [tool["name"] for tool in tested.json()["tools"]]
    assert set(runtime._clients) == {SPEC_CLIENT, UNSAVED_CLIENT}
    saved = await openapi_hub.add_server("notes", access="public", **form)
    assert (await openapi_hub.admin.post(f"/v1/servers/{saved['id']}/test")).status_code == 200
    assert set(runtime._clients) == {SPEC_CLIENT, UNSAVED_CLIENT, saved["id"]}


async def test_a_refused_oauth_token_is_refreshed_and_the_call_sent_again(
    openapi_hub: RunningHub, rest_api: RestApi
) -> None:
    """The API answers 401 to a token its authorization server revoked early: the hub refreshes it (the
    one resolver's refresh, as for MCP upstreams) and the call goes through with the new token. A BYOK
    key the API refuses is an error result with the API's own words; nothing is retried."""
    token_app = FastAPI()
    grants: list[dict[str, str]] = []

    @token_app.post("/token")
    async def token(request: Request) -> dict[str, Any]:
        grants.append(dict(await request.form()))
        return {"access_token": "token-carol", "token_type": "Bearer", "expires_in": 3600}

    async with serve_app(token_app) as token_url:
        server = await openapi_hub.add_server(
            "notes",
            transport="http",
            spec_location=rest_api.spec_url,
            auth_type="oauth2",
            client_id="notes-client",
            authorization_url=f"{token_url}/authorize",
            token_url=f"{token_url}/token",
        )
        key = await add_oauth_user(openapi_hub, server["id"], "carol", "token-revoked", refresh_token="r-1")
        async with shttp_session(f"{openapi_hub.url}/mcp/notes", key) as session:
            assert structured(await call(session, "whoami")) == {"user": "carol"}
            assert structured(await call(session, "whoami")) == {"user": "carol"}
    assert [(grant["grant_type"], grant["refresh_token"]) for grant in grants] == [("refresh_token", "r-1")]

    byok = await openapi_hub.add_server(
        "bnotes", transport="http", spec_location=rest_api.spec_url, auth_type="byok"
    )
    bad_key = await add_byok_user(openapi_hub, byok["id"], "mallory", "key-unknown")
    async with shttp_session(f"{openapi_hub.url}/mcp/bnotes", bad_key) as session:
        refused = await call(session, "whoami")
    assert refused.is_error
    assert refused.content[0].text == 'HTTP 401 Unauthorized: {"detail":"unknown key or token"}'  # type: ignore[union-attr]
