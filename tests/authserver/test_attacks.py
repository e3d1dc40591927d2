"""The authorization server against a real hub on loopback, page by page (a form-posting HTTP client in
place of the browser, so every response can be inspected and forms tampered with): metadata, the 401
challenge, registration rules, the claude.ai callback, and the attacks that must fail."""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx2
import pytest
from sqlalchemy import update

from mcp_hub.authserver.clients import delete_client
from mcp_hub.authserver.metadata import AS_METADATA_PATHS
from mcp_hub.authserver.redirects import RedirectUriError, check_registrable
from mcp_hub.authserver.sessions import cookie_name, is_secure
from mcp_hub.settings import DEFAULT_PRIVATE_REDIRECT_URIS, Settings
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import OAuthCode, utcnow
from tests.authserver.conftest import (
    ClientSite,
    FormBrowser,
    Person,
    add_person,
    hidden_fields,
    hub_of,
    pkce_pair,
    query_of,
)
from tests.credentials.conftest import AuthServerProcess
from tests.gateway.conftest import RunningHub, serve_hub

MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}
CLAUDE_CALLBACK = "https://claude.ai/api/mcp/auth_callback"


async def register(hub: RunningHub, redirect_uris: list[str], **extra: Any) -> httpx2.Response:
    body = {"client_name": "Attack test client", "redirect_uris": redirect_uris, **extra}
    return await hub.admin.post("/register", json=body, headers={"Authorization": ""})


async def public_client(hub: RunningHub, redirect_uri: str) -> str:
    response = await register(hub, [redirect_uri], token_endpoint_auth_method="none")
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


@dataclass
class Grant:
    code: str
    verifier: str
    location: str
    client_id: str
    redirect_uri: str


def authorize_params(client_id: str, redirect_uri: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-123",
        **extra,
    }


async def get_code(
    browser: FormBrowser, person: Person, client_id: str, redirect_uri: str, **extra: str
) -> Grant:
    verifier, challenge = pkce_pair()
    page = await browser.open(authorize_params(client_id, redirect_uri, challenge, **extra))
    if page.status_code == 200 and 'action="/authorize"' in page.text:
        page = await browser.sign_in(page, person)
    if page.status_code == 200:
        page = await browser.decide(page)
    assert page.status_code == 302, page.text
    location = page.headers["location"]
    return Grant(query_of(location)["code"], verifier, location, client_id, redirect_uri)


async def exchange(hub: RunningHub, grant: Grant, **override: str) -> httpx2.Response:
    data = {
        "grant_type": "authorization_code",
        "code": grant.code,
        "code_verifier": grant.verifier,
        "client_id": grant.client_id,
        "redirect_uri": grant.redirect_uri,
        **override,
    }
    return await hub.admin.post("/token", data=data, headers={"Authorization": ""})


async def refresh(hub: RunningHub, client_id: str, refresh_token: str) -> httpx2.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return await hub.admin.post("/token", data=data, headers={"Authorization": ""})


async def mcp_status(hub: RunningHub, token: str, path: str = "/mcp") -> int:
    response = await hub.admin.post(
        path,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        headers={"Authorization": f"Bearer {token}", **MCP_ACCEPT},
    )
    return response.status_code


# --- discovery ------------------------------------------------------------------------------------------


async def test_metadata_and_the_401_challenge(as_hub: RunningHub) -> None:
    base = as_hub.url
    documents = [(await as_hub.admin.get(path)).json() for path in AS_METADATA_PATHS]
    assert documents[0] == documents[1]
    meta = documents[0]
    assert meta["issuer"] == base  # no path, no trailing slash
    assert meta["authorization_endpoint"] == f"{base}/authorize"
    assert meta["token_endpoint"] == f"{base}/token"
    assert meta["registration_endpoint"] == f"{base}/register"
    assert meta["revocation_endpoint"] == f"{base}/revoke"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "none" in meta["token_endpoint_auth_methods_supported"]
    assert meta["client_id_metadata_document_supported"] is True
    assert meta["authorization_response_iss_parameter_supported"] is True

    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        prm = (await as_hub.admin.get(path)).json()
        assert prm["resource"] == f"{base}/mcp"
        assert prm["authorization_servers"] == [base]

    challenge = f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp", scope="mcp"'
    await as_hub.add_server("anything", transport="http", url="http://127.0.0.1:9/mcp")
    for method, path in (
        ("POST", "/mcp"),
        ("POST", "/mcp/anything"),
        ("GET", "/sse"),
        ("GET", "/mcp/anything/sse"),
        ("POST", "/sse/messages/"),
        ("POST", "/mcp/anything/messages/"),
    ):
        response = await as_hub.admin.request(method, path, headers={"Authorization": "", **MCP_ACCEPT})
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == challenge, path
    bad = await as_hub.admin.post(
        "/mcp", headers={"Authorization": "Bearer mcpat_nope", **MCP_ACCEPT}, json={}
    )
    assert bad.headers["www-authenticate"] == challenge + ', error="invalid_token"'


async def test_cors_for_browser_based_clients(as_hub: RunningHub) -> None:
    origin = {"Origin": "https://inspector.example"}
    meta = await as_hub.admin.get(AS_METADATA_PATHS[0], headers=origin)
    assert meta.headers["access-control-allow-origin"] == "*"
    token_error = await as_hub.admin.post(
        "/token", data={"grant_type": "authorization_code"}, headers={**origin, "Authorization": ""}
    )
    assert token_error.status_code in (400, 401) and token_error.headers["access-control-allow-origin"] == "*"
    for path in ("/token", "/register", "/revoke", "/.well-known/oauth-protected-resource/mcp"):
        preflight = await as_hub.admin.options(
            path,
            headers={
                **origin,
                "Access-Control-Request-Method": "POST" if "well" not in path else "GET",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200, path
        assert preflight.headers["access-control-allow-origin"] in ("*", origin["Origin"]), path


async def test_mcp_cors_answers_the_configured_origins_only(as_hub: RunningHub) -> None:
    tuned = as_hub.settings.model_copy(update={"mcp_cors_origins": ["https://app.example"]})
    async with serve_hub(tuned) as hub:

        def preflight(origin: str) -> dict[str, str]:
            return {
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version",
            }

        allowed = await hub.admin.options("/mcp", headers=preflight("https://app.example"))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        refused = await hub.admin.options("/mcp", headers=preflight("https://evil.example"))
        assert "access-control-allow-origin" not in refused.headers
        # The 401 itself: a browser-based client must be able to read the challenge to start discovery.
        challenge = await hub.admin.post(
            "/mcp", json={}, headers={"Origin": "https://app.example", "Authorization": "", **MCP_ACCEPT}
        )
        assert challenge.status_code == 401
        assert challenge.headers["access-control-allow-origin"] == "https://app.example"
        assert "www-authenticate" in challenge.headers["access-control-expose-headers"].lower()


# --- registration and redirect URIs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "file:///etc/passwd",
        "http://example.com/cb",
        "myapp://callback",
        "https://client.example/cb#frag",
    ],
)
async def test_registration_refuses_dangerous_redirect_uris(as_hub: RunningHub, uri: str) -> None:
    response = await register(as_hub, [uri], token_endpoint_auth_method="none")
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")


@pytest.mark.parametrize(
    "uri", ["javascript:alert(1)", "data:text/html,hi", "file:///etc/passwd", "JavaScript:x"]
)
def test_dangerous_schemes_are_refused_even_when_allowlisted(uri: str) -> None:
    # An operator's allowlist cannot let them in: the scheme is refused before the list is consulted.
    with pytest.raises(RedirectUriError, match="never allowed"):
        check_registrable(uri, [uri])
    assert check_registrable("cursor://anysphere.cursor-mcp/oauth/callback", DEFAULT_PRIVATE_REDIRECT_URIS)


async def test_registration_metadata_is_capped(as_hub: RunningHub) -> None:
    # Registration is open and stored: one may not park megabytes per client in the database.
    huge = await register(as_hub, [CLAUDE_CALLBACK], client_name="x" * 20_000)
    assert huge.status_code == 400 and huge.json()["error"] == "invalid_client_metadata"
    assert (await register(as_hub, [CLAUDE_CALLBACK], client_name="x" * 1_000)).status_code == 201


async def test_registration_accepts_claude_loopback_and_allowlisted_cursor(as_hub: RunningHub) -> None:
    for uri in (
        CLAUDE_CALLBACK,
        "http://127.0.0.1/callback",
        "http://localhost:33418/",
        "cursor://anysphere.cursor-mcp/oauth/callback",
    ):
        response = await register(as_hub, [uri])
        assert response.status_code == 201, (uri, response.text)
    confidential = (
        await register(as_hub, [CLAUDE_CALLBACK], token_endpoint_auth_method="client_secret_post")
    ).json()
    assert confidential["client_secret"]  # shown once, stored as a hash (see test_storage)


async def test_claude_ai_callback_gets_code_state_and_iss(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        grant = await get_code(browser, alice, client_id, CLAUDE_CALLBACK)
    assert grant.location.startswith(CLAUDE_CALLBACK + "?")
    params = query_of(grant.location)
    assert params["state"] == "st-123" and params["iss"] == as_hub.url and params["code"].startswith("mcpac_")
    tokens = (await exchange(as_hub, grant)).json()
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "mcp"
    assert await mcp_status(as_hub, tokens["access_token"]) == 200


async def test_loopback_redirect_matches_on_any_port_only(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, "http://127.0.0.1/callback")
    async with FormBrowser(as_hub.url) as browser:
        grant = await get_code(browser, alice, client_id, "http://127.0.0.1:45678/callback")
        assert grant.location.startswith("http://127.0.0.1:45678/callback?")
        for wrong in ("http://127.0.0.1:45678/other", "http://localhost:45678/callback"):
            page = await browser.open(authorize_params(client_id, wrong, pkce_pair()[1]))
            assert page.status_code == 400 and "location" not in page.headers, wrong


# --- sign-in and consent --------------------------------------------------------------------------------


async def test_sign_in_with_api_key_and_consent_is_remembered(as_hub: RunningHub) -> None:
    bob = await add_person(as_hub, "bob")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        page = await browser.open(authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1]))
        assert page.headers["content-security-policy"].count("frame-ancestors 'none'") == 1
        wrong = await browser.http.post(
            "/authorize", data={**hidden_fields(page.text, "/authorize"), "api_key": "mcph_wrong"}
        )
        assert wrong.status_code == 401 and "Wrong user name" in wrong.text
        consent = await browser.http.post(
            "/authorize", data={**hidden_fields(page.text, "/authorize"), "api_key": bob.api_key}
        )
        assert (
            consent.status_code == 200
            and "Attack test client" in consent.text
            and "claude.ai" in consent.text
        )
        first = await browser.decide(consent)
        assert first.status_code == 302
        # Same client again: approved before, so straight back with a code.
        again = await browser.open(authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1]))
        assert again.status_code == 302 and "code" in query_of(again.headers["location"])


async def test_consent_page_lists_upstream_connections_with_connect(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    await as_hub.add_server(
        "calendar",
        transport="http",
        url="http://127.0.0.1:9/mcp",
        auth_type="oauth2",
        authorization_url="http://127.0.0.1:9/authorize",
        token_url="http://127.0.0.1:9/token",
        client_id="hub",
    )
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        page = await browser.open(authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1]))
        consent = await browser.sign_in(page, alice)
        assert "calendar" in consent.text and 'class="connect"' in consent.text
        fields = hidden_fields(consent.text, "/authorize/connect")
        started = await browser.http.post("/authorize/connect", data=fields)
        assert started.status_code == 200
        assert 'http-equiv="refresh"' in started.text and "127.0.0.1:9/authorize" in started.text
        assert any(name.startswith("mcp_hub_oauth_") for name in browser.http.cookies)
        forged = await browser.http.post("/authorize/connect", data={**fields, "csrf": "x" * 43})
        assert forged.status_code == 403


async def test_denied_consent_and_errors_carry_iss_and_state(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        page = await browser.sign_in(
            await browser.open(authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1])), alice
        )
        denied = query_of((await browser.decide(page, "deny")).headers["location"])
        assert denied == {**denied, "error": "access_denied", "state": "st-123", "iss": as_hub.url}
        plain = await browser.open(
            authorize_params(client_id, CLAUDE_CALLBACK, "x" * 43, code_challenge_method="plain")
        )
        assert plain.status_code == 302
        assert query_of(plain.headers["location"]) | {"error_description": ""} == {
            "error": "invalid_request",
            "error_description": "",
            "state": "st-123",
            "iss": as_hub.url,
        }


# --- attacks ---------------------------------------------------------------------------------------------


async def test_reused_code_fails_and_revokes_what_it_issued(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        grant = await get_code(browser, alice, client_id, CLAUDE_CALLBACK)
    first = await exchange(as_hub, grant)
    assert first.status_code == 200
    assert await mcp_status(as_hub, first.json()["access_token"]) == 200
    second = await exchange(as_hub, grant)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert await mcp_status(as_hub, first.json()["access_token"]) == 401


async def test_code_with_wrong_verifier_or_redirect_fails(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        grant = await get_code(browser, alice, client_id, CLAUDE_CALLBACK)
    wrong = await exchange(as_hub, grant, code_verifier=pkce_pair()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    other_client = await public_client(as_hub, CLAUDE_CALLBACK)
    stolen = await exchange(as_hub, grant, client_id=other_client)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"


async def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(as_hub: RunningHub) -> None:
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        page = await browser.open(authorize_params(client_id, "https://evil.example/cb", pkce_pair()[1]))
        assert page.status_code == 400 and "location" not in page.headers
        assert "not one this client registered" in page.text
        unknown = await browser.open(authorize_params("no-such-client", CLAUDE_CALLBACK, pkce_pair()[1]))
        assert unknown.status_code == 400 and "invalid_client" in unknown.text


async def test_metadata_documents_that_must_be_refused(as_hub: RunningHub, https_site: ClientSite) -> None:
    good_redirect = CLAUDE_CALLBACK
    mismatch = https_site.put_document(
        "mismatch.json", {"client_id": "https://other.example/client.json", "redirect_uris": [good_redirect]}
    )
    big = https_site.put_document(
        "big.json",
        {"client_id": https_site.doc_url("big.json"), "redirect_uris": [good_redirect], "pad": "x" * 6000},
    )
    secret = https_site.put_document(
        "secret.json",
        {
            "client_id": https_site.doc_url("secret.json"),
            "redirect_uris": [good_redirect],
            "token_endpoint_auth_method": "client_secret_post",
        },
    )
    # The same size without a Content-Length: the hub stops reading past 5 KB rather than trusting a header.
    unsized = https_site.put_document(
        "unsized.json",
        {
            "client_id": https_site.doc_url("unsized.json"),
            "redirect_uris": [good_redirect],
            "pad": "x" * 6000,
        },
    )
    https_site.unsized.add("unsized.json")
    cases = {
        mismatch: "client_id is not its own URL",
        big: "larger than 5 KB",
        unsized: "larger than 5 KB",
        secret: "public client",
        "https://169.254.169.254/latest/client.json": "link-local",
        "https://[::ffff:169.254.169.254]/client.json": "link-local",
    }
    async with FormBrowser(as_hub.url) as browser:
        for client_id, reason in cases.items():
            page = await browser.open(authorize_params(client_id, good_redirect, pkce_pair()[1]))
            assert page.status_code == 400 and "location" not in page.headers, client_id
            assert reason in page.text, (client_id, page.text)


async def test_token_for_another_resource_is_refused(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        asked = await browser.open(
            authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1], resource="https://other.example/mcp")
        )
        assert asked.status_code == 302 and query_of(asked.headers["location"])["error"] == "invalid_target"
        grant = await get_code(browser, alice, client_id, CLAUDE_CALLBACK)
    other = await exchange(as_hub, grant, resource="https://other.example/mcp")
    assert other.status_code == 400 and other.json()["error"] == "invalid_target"
    token = (await exchange(as_hub, grant, resource=f"{as_hub.url}/mcp")).json()["access_token"]
    assert await mcp_status(as_hub, token) == 200
    # The same database behind a hub with another public URL: the token names the old resource.
    moved = as_hub.settings.model_copy(
        update={"public_base_url": "https://hub.example", "mcp_auth_cache_seconds": 0.0}
    )
    async with serve_hub(moved) as second:
        response = await second.admin.post(
            "/mcp", json={}, headers={"Authorization": f"Bearer {token}", "Host": "hub.example", **MCP_ACCEPT}
        )
        assert response.status_code == 401 and "another resource" in response.json()["detail"]


async def test_consent_forged_without_the_csrf_token_is_refused(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        page = await browser.sign_in(
            await browser.open(authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1])), alice
        )
        for forged in ({"csrf": None}, {"csrf": "y" * 43}):
            response = await browser.decide(page, **forged)  # type: ignore[arg-type]
            assert response.status_code == 403 and "location" not in response.headers
    # Another site's page posting with only the form's values: no cookie comes along (SameSite=Lax).
    async with FormBrowser(as_hub.url) as attacker:
        response = await attacker.http.post(
            "/authorize/consent",
            data={**hidden_fields(page.text, "/authorize/consent"), "decision": "approve"},
        )
        assert response.status_code == 403


async def test_refresh_rotation_grace_and_replay(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        grant = await get_code(browser, alice, client_id, CLAUDE_CALLBACK)
    r1 = (await exchange(as_hub, grant)).json()["refresh_token"]
    first = (await refresh(as_hub, client_id, r1)).json()
    r2 = first["refresh_token"]
    assert r2 != r1
    # The previous token still works until its successor is used (the client may have lost the answer).
    retry = await refresh(as_hub, client_id, r1)
    assert retry.status_code == 200
    r3 = retry.json()["refresh_token"]
    latest = (await refresh(as_hub, client_id, r3)).json()
    assert await mcp_status(as_hub, latest["access_token"]) == 200
    # r3's successor exists and r3 was used: r1 (and its other successor r2) are rotated out. Replaying
    # one fails and revokes the grant, including the legitimate latest tokens.
    replay = await refresh(as_hub, client_id, r1)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert await mcp_status(as_hub, latest["access_token"]) == 401
    assert (await refresh(as_hub, client_id, latest["refresh_token"])).status_code == 400


async def test_deleted_client_gets_invalid_client(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        grant = await get_code(browser, alice, client_id, CLAUDE_CALLBACK)
        tokens = (await exchange(as_hub, grant)).json()
        assert await delete_client(hub_of(as_hub), client_id)
        assert await mcp_status(as_hub, tokens["access_token"]) == 401
        refused = await refresh(as_hub, client_id, tokens["refresh_token"])
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
        page = await browser.open(authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1]))
        assert page.status_code == 400 and "invalid_client" in page.text


async def test_secrets_stay_out_of_logs_and_pages(
    as_hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = await add_person(as_hub, "alice")
    registered = (
        await register(as_hub, [CLAUDE_CALLBACK], token_endpoint_auth_method="client_secret_post")
    ).json()
    async with FormBrowser(as_hub.url) as browser:
        verifier, challenge = pkce_pair()
        page = await browser.open(authorize_params(registered["client_id"], CLAUDE_CALLBACK, challenge))
        wrong = await browser.http.post(
            "/authorize",
            data={
                **hidden_fields(page.text, "/authorize"),
                "username": "alice",
                "password": "not-the-password!",
            },
        )
        assert "not-the-password!" not in wrong.text
        page = await browser.decide(await browser.sign_in(page, alice))
        code = query_of(page.headers["location"])["code"]
    grant = Grant(code, verifier, "", registered["client_id"], CLAUDE_CALLBACK)
    no_secret = await exchange(as_hub, grant)
    assert no_secret.status_code == 401 and no_secret.json()["error"] == "invalid_client"
    wrong_basic = await as_hub.admin.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
        headers={"Authorization": ""},
        auth=httpx2.BasicAuth(registered["client_id"], "not-the-secret"),
    )
    assert wrong_basic.status_code == 401 and wrong_basic.json()["error"] == "invalid_client"
    # HTTP Basic works for any client with a secret (RFC 6749 §2.3.1), whatever it registered.
    by_basic = await as_hub.admin.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": CLAUDE_CALLBACK,
        },
        headers={"Authorization": ""},
        auth=httpx2.BasicAuth(registered["client_id"], registered["client_secret"]),
    )
    assert by_basic.status_code == 200, by_basic.text
    tokens = by_basic.json()
    secrets_seen = [
        code,
        tokens["access_token"],
        tokens["refresh_token"],
        registered["client_secret"],
        alice.password,
        "not-the-password!",
    ]
    # The capture does see the hub's own records (else the checks below could not fail).
    assert "authorization sign-in refused" in caplog.text
    for secret in secrets_seen:
        assert secret not in caplog.text


async def authorize_page_behind(as_hub: RunningHub, public_base_url: str) -> httpx2.Response:
    """The first authorize page of a hub on the same database with another public URL."""
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    moved = as_hub.settings.model_copy(update={"public_base_url": public_base_url})
    async with serve_hub(moved) as hub:
        params = authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1])
        host = public_base_url.split("://", 1)[1]
        return await hub.admin.get("/authorize", params=params, headers={"Host": host})


async def test_cookies_are_host_prefixed_and_secure_behind_https(as_hub: RunningHub) -> None:
    page = await authorize_page_behind(as_hub, "https://hub.example")
    assert page.status_code == 200, page.text
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-mcp-hub-csrf=")
    for attribute in ("HttpOnly", "Path=/", "SameSite=lax", "Secure"):
        assert attribute in cookie, cookie
    assert "Domain" not in cookie
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("base", "secure"),
    [
        ("http://127.0.0.1:4000", False),
        ("http://localhost:4000", False),
        ("http://[::1]:4000", False),
        ("https://hub.example", True),
        ("http://hub.lan:4000", True),
    ],
)
def test_cookies_are_secure_except_on_plain_http_loopback(base: str, secure: bool) -> None:
    settings = Settings(public_base_url=base)
    assert is_secure(settings) is secure
    assert cookie_name(settings, "mcp-hub-csrf") == ("__Host-mcp-hub-csrf" if secure else "mcp-hub-csrf")


async def test_plain_http_off_loopback_serves_no_sign_in_page(as_hub: RunningHub) -> None:
    # Browsers drop Secure cookies on plain http, and a password would cross the network in clear: the
    # hub says what to fix instead of showing a form that cannot work.
    page = await authorize_page_behind(as_hub, "http://hub.lan:4000")
    assert page.status_code == 400 and "https only" in page.text, page.text
    assert "set-cookie" not in page.headers and 'name="password"' not in page.text


async def test_a_key_limited_to_some_servers_cannot_sign_in(as_hub: RunningHub) -> None:
    frank = await add_person(as_hub, "frank")
    limited = await as_hub.add_key(frank.user_id, allowed_servers=["one"])
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        page = await browser.open(authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1]))
        refused = await browser.http.post(
            "/authorize", data={**hidden_fields(page.text, "/authorize"), "api_key": limited}
        )
        assert refused.status_code == 401 and "limited to some servers" in refused.text
        allowed = await browser.http.post(
            "/authorize", data={**hidden_fields(page.text, "/authorize"), "api_key": frank.api_key}
        )
        assert allowed.status_code == 200 and 'id="approve"' in allowed.text


async def test_connect_button_runs_the_upstream_flow_and_returns_to_consent(
    as_hub: RunningHub, oidc_as: AuthServerProcess
) -> None:
    alice = await add_person(as_hub, "alice")
    await as_hub.add_server("notes", transport="http", url=oidc_as.resource, auth_type="oauth2")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    # The upstream authorization server (npm oidc-provider) signs in whoever its X-Test-User names.
    async with FormBrowser(as_hub.url, headers={"X-Test-User": "alice"}) as browser:
        page = await browser.open(authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1]))
        consent = await browser.sign_in(page, alice)
        assert "<b>notes</b>: not connected" in consent.text
        moving_on = await browser.http.post(
            "/authorize/connect", data=hidden_fields(consent.text, "/authorize/connect")
        )
        url = html.unescape(re.search(r'id="continue" href="([^"]+)"', moving_on.text).group(1))  # type: ignore[union-attr]
        assert url.startswith(oidc_as.issuer)
        for _ in range(12):  # login and consent at the upstream, until it sends the browser back to the hub
            response = await browser.http.get(url)
            assert response.status_code in (302, 303), response.text[:300]
            url = urljoin(url, response.headers["location"])
            if url.startswith(f"{as_hub.url}/v1/oauth/callback"):
                break
        back = await browser.http.get(url)
        assert back.status_code == 302 and back.headers["location"].startswith("/authorize?")
        again = await browser.http.get(back.headers["location"])
        assert "<b>notes</b>: connected" in again.text and 'class="connect"' not in again.text
        done = await browser.decide(again)
        assert done.status_code == 302 and query_of(done.headers["location"])["code"]


async def test_password_guessing_is_throttled(as_hub: RunningHub) -> None:
    gina = await add_person(as_hub, "gina")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        page = await browser.open(authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1]))
        fields = hidden_fields(page.text, "/authorize")
        for attempt in range(10):
            wrong = await browser.http.post(
                "/authorize", data={**fields, "username": "gina", "password": f"guess-{attempt}"}
            )
            assert wrong.status_code == 401
        # Even the right password is refused now, from this address, for this name.
        right = await browser.http.post(
            "/authorize", data={**fields, "username": "gina", "password": gina.password}
        )
        assert right.status_code == 429 and "Too many wrong passwords" in right.text
        # The API key still works (its entropy makes guessing pointless).
        by_key = await browser.http.post("/authorize", data={**fields, "api_key": gina.api_key})
        assert by_key.status_code == 200 and 'id="approve"' in by_key.text


async def test_tokens_follow_the_same_access_rules_as_api_keys(as_hub: RunningHub, echo_http: str) -> None:
    alice = await add_person(as_hub, "alice")
    bob = await add_person(as_hub, "bob")
    await as_hub.add_server(
        "private", transport="http", url=echo_http, access="listed_users", allowed_users=[bob.user_id]
    )
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    tokens: dict[str, str] = {}
    for person in (alice, bob):
        async with FormBrowser(as_hub.url) as browser:
            grant = await get_code(browser, person, client_id, CLAUDE_CALLBACK)
        tokens[person.name] = (await exchange(as_hub, grant)).json()["access_token"]
    assert await mcp_status(as_hub, tokens["bob"], "/mcp/private") == 200
    assert await mcp_status(as_hub, bob.api_key, "/mcp/private") == 200
    assert await mcp_status(as_hub, tokens["alice"], "/mcp/private") == 403
    assert await mcp_status(as_hub, alice.api_key, "/mcp/private") == 403


async def test_an_expired_code_is_refused(as_hub: RunningHub) -> None:
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    async with FormBrowser(as_hub.url) as browser:
        grant = await get_code(browser, alice, client_id, CLAUDE_CALLBACK)
    async with transaction(hub_of(as_hub).sessions) as session:
        await session.execute(update(OAuthCode).values(expires_at=utcnow()))
    late = await exchange(as_hub, grant)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    assert "expired" in late.json()["error_description"]


async def test_a_user_sets_their_own_password_with_their_key(as_hub: RunningHub) -> None:
    user_id = await as_hub.add_user("hana")
    key = await as_hub.add_key(user_id)
    limited = await as_hub.add_key(user_id, allowed_servers=["one"])

    async def put(password: str, bearer: str) -> httpx2.Response:
        return await as_hub.admin.put(
            "/v1/me/password", json={"password": password}, headers={"Authorization": f"Bearer {bearer}"}
        )

    short = await put("short-pw", key)
    assert short.status_code == 422 and "short-pw" not in short.text
    assert (await put("a password for hana", limited)).status_code == 403
    assert (await put("a password for hana", "mcph_not_a_key")).status_code == 401
    assert (await put("a password for hana", key)).status_code == 204
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    hana = Person(name="hana", user_id=user_id, api_key=key, password="a password for hana")
    async with FormBrowser(as_hub.url) as browser:
        grant = await get_code(browser, hana, client_id, CLAUDE_CALLBACK)
        assert (await exchange(as_hub, grant)).status_code == 200
        # Signed in and approved: the next request goes straight back with a code ...
        params = authorize_params(client_id, CLAUDE_CALLBACK, pkce_pair()[1])
        assert (await browser.open(params)).status_code == 302
        # ... until the password changes, which signs every browser out.
        assert (await put("another password for hana", key)).status_code == 204
        again = await browser.open(params)
        assert again.status_code == 200 and 'name="password"' in again.text


async def test_revocation_applies_at_once_despite_the_auth_cache(as_hub: RunningHub) -> None:
    # The gateway reuses an MCP request's authentication for MCP_HUB_MCP_AUTH_CACHE_SECONDS; a revoked
    # grant must not ride on that (the client revokes, retries, and must get its 401).
    alice = await add_person(as_hub, "alice")
    client_id = await public_client(as_hub, CLAUDE_CALLBACK)
    cached = as_hub.settings.model_copy(update={"mcp_auth_cache_seconds": 300.0})
    async with serve_hub(cached) as hub:
        async with FormBrowser(hub.url) as browser:
            grant = await get_code(browser, alice, client_id, CLAUDE_CALLBACK)
        tokens = (await exchange(hub, grant)).json()
        assert await mcp_status(hub, tokens["access_token"]) == 200  # now in the cache
        revoked = await hub.admin.post(
            "/revoke",
            data={"token": tokens["refresh_token"], "client_id": client_id},
            headers={"Authorization": ""},
        )
        assert revoked.status_code == 200
        assert await mcp_status(hub, tokens["access_token"]) == 401
