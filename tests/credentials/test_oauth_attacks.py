"""Attacks on the OAuth connect flow that must fail: replayed, foreign or missing state, a wrong issuer,
redirects off the hub's origin, hostile discovery or registration answers (internal addresses, file: and
javascript: URLs), a token response without access_token, an authorization server without S256."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from mcp_hub.credentials.netguard import UrlGuard
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import McpServer, McpUserCredential, OAuthState, utcnow
from tests.credentials.conftest import ADMIN, HUB_ORIGIN, AuthServerProcess, FakeOAuthPeer, hub_of


async def credential_count(app: FastAPI) -> int:
    async with transaction(hub_of(app).sessions) as session:
        return int(await session.scalar(select(func.count()).select_from(McpUserCredential)) or 0)


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


@pytest.fixture
async def oauth_server(make_server, oidc_as: AuthServerProcess) -> dict:
    return await make_server("notes", url=oidc_as.resource, auth_type="oauth2")


async def test_replayed_state_is_refused(app: FastAPI, oauth_server, make_user, browsers) -> None:
    alice = await make_user("alice")
    browser = browsers(alice)
    start = await browser.start(oauth_server["id"])
    callback = await browser.consent(start.headers["location"])
    flow_cookies = [
        (c.name, c.value) for c in browser.http.cookies.jar if c.name.startswith("mcp_hub_oauth_")
    ]
    assert len(flow_cookies) == 1
    assert (await browser.http.get(callback)).status_code == 302
    # The hub clears the flow cookie; put it back so only single use of the state can stop the replay.
    name, value = flow_cookies[0]
    assert name not in {c.name for c in browser.http.cookies.jar}
    browser.http.cookies.set(name, value, domain="127.0.0.1", path="/v1/oauth/callback")
    replay = await browser.http.get(callback)
    assert replay.status_code == 400
    assert "already used" in replay.text
    assert replay.headers["content-type"].startswith("text/plain")


async def test_another_users_state_is_refused(app: FastAPI, oauth_server, make_user, browsers) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    alice_browser, bob_browser = browsers(alice), browsers(bob)
    start = await alice_browser.start(oauth_server["id"])
    callback = await alice_browser.consent(start.headers["location"])

    # Alice's callback URL opened in Bob's browser: no flow cookie there.
    stolen = await bob_browser.http.get(callback)
    assert stolen.status_code == 400 and "another browser" in stolen.text
    # Alice's browser, but Bob's hub key on the callback: another user.
    mixed = await alice_browser.http.get(callback, headers=bob.auth)
    assert mixed.status_code == 400 and "another user" in mixed.text
    assert await credential_count(app) == 0

    # Neither attempt used the state up: Alice herself still completes her flow.
    done = await alice_browser.http.get(callback)
    assert done.status_code == 302, done.text
    async with transaction(hub_of(app).sessions) as session:
        owners = list((await session.scalars(select(McpUserCredential.user_id))).all())
    assert owners == [alice.id]


async def test_missing_or_unknown_state_is_refused(client: httpx2.AsyncClient, app: FastAPI) -> None:
    missing = await client.get("/v1/oauth/callback", params={"code": "abc"})
    assert missing.status_code == 400 and "no state" in missing.text
    unknown = await client.get("/v1/oauth/callback", params={"code": "abc", "state": "forged"})
    assert unknown.status_code == 400 and "unknown" in unknown.text
    assert await credential_count(app) == 0


async def test_wrong_or_missing_iss_is_refused(
    app: FastAPI, oauth_server, make_user, browsers, oidc_as: AuthServerProcess
) -> None:
    alice = await make_user("alice")
    browser = browsers(alice)
    for iss, message in (("https://evil.example", "unexpected issuer"), (None, "no `iss`")):
        oidc_as.reset()
        start = await browser.start(oauth_server["id"])
        callback = await browser.consent(start.headers["location"])
        response = await browser.http.get(with_query(callback, iss=iss))
        assert response.status_code == 400 and message in response.text, response.text
        assert oidc_as.counts()["grants"] == {}  # the code was never sent to the token endpoint
    assert await credential_count(app) == 0


async def test_wrong_iss_is_refused_with_endpoints_an_admin_stored(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server, browsers, oidc_as: AuthServerProcess
) -> None:
    """Endpoints saved from the form (after the discover action) skip discovery; the issuer saved with
    them still checks `iss`, so the mix-up defence does not depend on how the endpoints were set."""
    found = (await client.post("/v1/oauth/discover", json={"url": oidc_as.resource}, headers=ADMIN)).json()
    server = await make_server(
        "stored",
        url=oidc_as.resource,
        auth_type="oauth2",
        authorization_url=found["authorization_url"],
        token_url=found["token_url"],
        registration_url=found["registration_url"],
        issuer=found["issuer"],
        scopes=found["scopes"],
    )
    assert server["issuer"] == oidc_as.issuer  # exactly as discovered: no trailing "/" added
    alice = await make_user("alice")
    browser = browsers(alice)
    oidc_as.reset()
    start = await browser.start(server["id"])
    callback = await browser.consent(start.headers["location"])
    response = await browser.http.get(with_query(callback, iss="https://evil.example"))
    assert response.status_code == 400 and "unexpected issuer" in response.text, response.text
    assert oidc_as.counts()["grants"] == {}
    assert sum(n for path, n in oidc_as.counts()["paths"].items() if path.startswith("/.well-known/")) == 0
    done = await browser.connect(server["id"])  # the real `iss` passes
    assert done.status_code == 302, done.text
    assert await credential_count(app) == 1


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/ui",
        "//evil.example/ui",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/ui\r\nSet-Cookie: x=y",
        "",
    ],
)
async def test_post_login_redirect_off_origin_is_refused(
    client: httpx2.AsyncClient, oauth_server, make_user, target: str
) -> None:
    alice = await make_user("alice")
    response = await client.get(
        f"/v1/servers/{oauth_server['id']}/oauth/authorize", params={"redirect": target}, headers=alice.auth
    )
    assert response.status_code == 422, response.text
    assert "set-cookie" not in response.headers


async def test_error_from_the_authorization_server_is_shown_plainly(
    app: FastAPI, oauth_server, make_user, browsers
) -> None:
    alice = await make_user("alice")
    browser = browsers(alice)
    start = await browser.start(oauth_server["id"])
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    response = await browser.http.get(
        f"{HUB_ORIGIN}/v1/oauth/callback",
        params={"state": state, "error": "access_denied", "error_description": "<b>The user said no</b>"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert "access_denied: <b>The user said no</b>" in response.text
    assert await credential_count(app) == 0


# --- hostile discovery and registration answers ---------------------------------------------------------


async def _start(client: httpx2.AsyncClient, server_id: str, headers: dict[str, str]) -> httpx2.Response:
    return await client.get(f"/v1/servers/{server_id}/oauth/authorize", headers=headers)


async def test_loopback_upstream_refused_without_allowlist(
    app: FastAPI, client: httpx2.AsyncClient, oauth_server, make_user, oidc_as: AuthServerProcess
) -> None:
    hub_of(app).url_guard = UrlGuard()  # the operator allowlist removed
    alice = await make_user("alice")
    oidc_as.reset()
    response = await _start(client, oauth_server["id"], alice.auth)
    assert response.status_code == 502
    assert "private, loopback or reserved" in response.json()["detail"]
    assert oidc_as.counts()["paths"] == {"/test/counts": 1}  # nothing but this question reached it


@pytest.mark.parametrize(
    ("prm_servers", "metadata_overrides", "expected"),
    [
        (["http://169.254.169.254/latest"], {}, "link-local or a metadata address"),
        (["http://10.1.2.3/"], {}, "private, loopback or reserved"),
        (["file:///etc/passwd"], {}, "only http and https"),
        (None, {"authorization_endpoint": "javascript:alert(1)"}, "only http and https"),
        (None, {"token_endpoint": "http://[::ffff:169.254.169.254]/token"}, "link-local"),
        (None, {"token_endpoint": "http://[2002:a00:1::]/token"}, "private, loopback or reserved"),
        (None, {"registration_endpoint": "http://[64:ff9b::a9fe:a9fe]/reg"}, "link-local"),
        (None, {"registration_endpoint": "http://metadata.internal/reg"}, "link-local"),
        (None, {"token_endpoint": "http://user:pw@127.0.0.1/token"}, "credentials"),
    ],
)
async def test_hostile_discovery_answers_are_refused(
    app: FastAPI,
    client: httpx2.AsyncClient,
    make_user,
    make_server,
    fake_peer: FakeOAuthPeer,
    prm_servers: list[str] | None,
    metadata_overrides: dict[str, str],
    expected: str,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        # Never the real DNS: the only name in these documents resolves to the metadata service.
        assert host == "metadata.internal", host
        return ["169.254.169.254"]

    # The allowlist admits loopback (where the fake peer runs) and even metadata.internal by name.
    hub_of(app).url_guard = UrlGuard.from_list(["127.0.0.1", "metadata.internal"], resolver=resolver)
    fake_peer.json(
        "/mcp",
        {"error": "invalid_token"},
        status=401,
        headers={
            "www-authenticate": f'Bearer resource_metadata="{fake_peer.origin}/.well-known/oauth-protected-resource/mcp"'
        },
    )
    fake_peer.json(
        "/.well-known/oauth-protected-resource/mcp",
        {"resource": f"{fake_peer.origin}/mcp", "authorization_servers": prm_servers or [fake_peer.origin]},
    )
    fake_peer.json("/.well-known/oauth-authorization-server", fake_peer.metadata(**metadata_overrides))
    alice = await make_user("alice")
    server = await make_server("hostile", url=f"{fake_peer.origin}/mcp", auth_type="oauth2")
    response = await _start(client, server["id"], alice.auth)
    assert response.status_code == 502, response.text
    assert expected in response.json()["detail"]
    assert "/register" not in fake_peer.requests
    async with transaction(hub_of(app).sessions) as session:
        row = await session.get(McpServer, server["id"])
        assert row is not None and row.authorization_url is None and row.client_id is None


async def test_registration_answer_without_client_id_is_refused(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server, fake_peer: FakeOAuthPeer
) -> None:
    fake_peer.json("/.well-known/oauth-authorization-server", fake_peer.metadata())
    fake_peer.json("/register", {"redirect_uris": [f"{HUB_ORIGIN}/v1/oauth/callback"]}, status=201)
    alice = await make_user("alice")
    server = await make_server("hostile", url=f"{fake_peer.origin}/mcp", auth_type="oauth2")
    response = await _start(client, server["id"], alice.auth)
    assert response.status_code == 400, response.text
    assert "client_id" in response.json()["detail"]


async def test_authorization_server_without_s256_is_refused(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server, fake_peer: FakeOAuthPeer
) -> None:
    fake_peer.json(
        "/.well-known/oauth-authorization-server",
        fake_peer.metadata(code_challenge_methods_supported=["plain"]),
    )
    alice = await make_user("alice")
    server = await make_server("plain-pkce", url=f"{fake_peer.origin}/mcp", auth_type="oauth2")
    response = await _start(client, server["id"], alice.auth)
    assert response.status_code == 400 and "S256" in response.json()["detail"]
    assert "/register" not in fake_peer.requests


async def test_metadata_without_code_challenge_methods_is_refused(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server, fake_peer: FakeOAuthPeer
) -> None:
    # MCP authorization 2025-11-25: an absent code_challenge_methods_supported means no PKCE: refuse.
    metadata = fake_peer.metadata()
    del metadata["code_challenge_methods_supported"]
    fake_peer.json("/.well-known/oauth-authorization-server", metadata)
    alice = await make_user("alice")
    server = await make_server("no-pkce", url=f"{fake_peer.origin}/mcp", auth_type="oauth2")
    response = await _start(client, server["id"], alice.auth)
    assert response.status_code == 400 and "S256" in response.json()["detail"]
    assert "/register" not in fake_peer.requests


async def test_token_response_without_access_token_is_refused(
    app: FastAPI, make_user, make_server, browsers, fake_peer: FakeOAuthPeer
) -> None:
    fake_peer.json("/token", {"token_type": "Bearer", "expires_in": 3600, "refresh_token": "r1"})
    alice = await make_user("alice")
    server = await make_server(
        "no-token",
        url=f"{fake_peer.origin}/mcp",
        auth_type="oauth2",
        authorization_url=f"{fake_peer.origin}/authorize",
        token_url=f"{fake_peer.origin}/token",
        client_id="stored-client",
    )
    browser = browsers(alice)
    start = await browser.start(server["id"])
    assert start.status_code == 302
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    response = await browser.http.get(
        f"{HUB_ORIGIN}/v1/oauth/callback", params={"state": state, "code": "c1"}
    )
    assert response.status_code == 400 and "no access_token" in response.text
    assert fake_peer.requests.count("/token") == 1
    assert await credential_count(app) == 0


async def test_state_older_than_ten_minutes_is_refused(
    app: FastAPI, oauth_server, make_user, browsers
) -> None:
    alice = await make_user("alice")
    browser = browsers(alice)
    start = await browser.start(oauth_server["id"])
    callback = await browser.consent(start.headers["location"])
    async with transaction(hub_of(app).sessions) as session:
        await session.execute(update(OAuthState).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = await browser.http.get(callback)
    assert response.status_code == 400 and "10 minutes" in response.text
    assert await credential_count(app) == 0


async def test_callback_with_a_bad_hub_key_is_refused(
    app: FastAPI, oauth_server, make_user, browsers
) -> None:
    alice = await make_user("alice")
    browser = browsers(alice)
    start = await browser.start(oauth_server["id"])
    callback = await browser.consent(start.headers["location"])
    response = await browser.http.get(
        callback, headers={"Authorization": "Bearer mcph_not_a_key_" + "x" * 30}
    )
    assert response.status_code == 401
    assert (await browser.http.get(callback)).status_code == 302  # the state was not used up


async def test_protected_resource_metadata_for_another_resource_is_refused(
    app: FastAPI, client: httpx2.AsyncClient, make_user, make_server, fake_peer: FakeOAuthPeer
) -> None:
    fake_peer.json(
        "/.well-known/oauth-protected-resource/mcp",
        {"resource": "https://other.example/mcp", "authorization_servers": [fake_peer.origin]},
    )
    fake_peer.json("/.well-known/oauth-authorization-server", fake_peer.metadata())
    alice = await make_user("alice")
    server = await make_server("mismatch", url=f"{fake_peer.origin}/mcp", auth_type="oauth2")
    response = await _start(client, server["id"], alice.auth)
    assert response.status_code == 400 and "not" in response.json()["detail"]
    assert "/.well-known/oauth-authorization-server" not in fake_peer.requests
