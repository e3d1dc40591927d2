"""End to end with real parts on loopback: the hub under uvicorn, the `mcp` SDK's OAuthClientProvider
connecting from nothing, Debian Chromium signing in and consenting, a real upstream MCP server.

From nothing: 401 with the resource-metadata challenge → discovery → registration (dynamic, or a client
ID metadata document) → PKCE → browser sign-in and consent → token → a tool call as that user → refresh
→ revoke → 401."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from sqlalchemy import func, select

from mcp_hub.store.engine import transaction
from mcp_hub.store.models import OAuthClient, OAuthCode
from mcp_hub.store.models import OAuthToken as TokenRow
from tests.authserver.conftest import ClientSite, Person, add_person, chromium_consent, hub_of
from tests.gateway.conftest import RunningHub


@pytest.fixture
def access_token_seconds() -> int:
    return 2  # so the refresh step happens within the test


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def oauth_provider(
    hub: RunningHub,
    site: ClientSite,
    person: Person,
    storage: MemoryStorage,
    seen: dict[str, Any],
    *,
    client_metadata_url: str | None = None,
) -> OAuthClientProvider:
    async def redirect_handler(authorization_url: str) -> None:
        seen["authorization_url"] = authorization_url
        seen["browser"] = await chromium_consent(authorization_url, site.callback, person)

    async def callback_handler() -> AuthorizationCodeResult:
        params = await site.wait_callback()
        seen["callback"] = params
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    return OAuthClientProvider(
        server_url=f"{hub.url}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="E2E test client",
            redirect_uris=[site.callback],  # type: ignore[list-item]  # pydantic parses the str
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=client_metadata_url,
    )


async def whoami_through_hub(
    hub: RunningHub, auth: httpx2.Auth, path: str = "/mcp", tool: str = "vault__whoami"
) -> dict[str, str]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=120)) as http,
        streamable_http_client(f"{hub.url}{path}", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool(tool, {})
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    headers: dict[str, str] = json.loads(block.text)
    return headers


async def setup_vault(hub: RunningHub, echo_http: str, *people: Person) -> None:
    """A per-user (BYOK) upstream: each user's own key reaches it, so a call shows whose it was."""
    server = await hub.add_server(
        "vault",
        transport="http",
        url=echo_http,
        auth_type="byok",
        byok_name="X-User-Key",
        byok_template="{key}",
    )
    for person in people:
        response = await hub.admin.put(
            f"/v1/servers/{server['id']}/credential",
            json={"key": f"upstream-key-of-{person.name}"},
            headers={"Authorization": f"Bearer {person.api_key}"},
        )
        assert response.status_code == 200, response.text


async def test_sdk_client_connects_from_nothing_with_dcr_and_chromium(
    as_hub: RunningHub, client_site: ClientSite, echo_http: str
) -> None:
    alice = await add_person(as_hub, "alice")
    bob = await add_person(as_hub, "bob")
    await setup_vault(as_hub, echo_http, alice, bob)

    # 1. A request with no credential: 401 and the challenge that starts discovery.
    anonymous = await as_hub.admin.post(
        "/mcp", headers={"Authorization": "", "Accept": "application/json, text/event-stream"}, json={}
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{as_hub.url}/.well-known/oauth-protected-resource/mcp", scope="mcp"'
    )

    # 2. The SDK's OAuth client does the rest: discovery, DCR, PKCE, the browser, the token.
    storage = MemoryStorage()
    seen: dict[str, Any] = {}
    provider = oauth_provider(as_hub, client_site, alice, storage, seen)
    headers = await whoami_through_hub(as_hub, provider)
    assert headers["x-user-key"] == "upstream-key-of-alice"  # the call ran as alice
    # The same token on one server's own endpoint (names unchanged), and the same access rules: bob's key
    # never shows up for alice.
    single = await whoami_through_hub(as_hub, provider, path="/mcp/vault", tool="whoami")
    assert single["x-user-key"] == "upstream-key-of-alice"

    assert seen["browser"]["client"] == "E2E test client"
    assert seen["browser"]["redirectHost"] == client_site.origin.removeprefix("http://")
    assert seen["callback"]["iss"] == as_hub.url
    assert storage.client is not None and storage.client.client_secret is None  # a public client
    assert storage.tokens is not None and storage.tokens.access_token.startswith("mcpat_")
    cookies = {c["name"]: c for c in seen["browser"]["cookies"]}
    for name in ("mcp-hub-session", "mcp-hub-csrf"):
        # Plain-http loopback: no Secure, hence no __Host- prefix (browsers would refuse both).
        assert (
            cookies[name]["httpOnly"] and cookies[name]["sameSite"] == "Lax" and cookies[name]["path"] == "/"
        )

    # Only hashes are stored.
    hub = hub_of(as_hub)
    first_access, first_refresh = storage.tokens.access_token, storage.tokens.refresh_token
    assert first_refresh is not None
    async with transaction(hub.sessions) as session:
        hashes = set((await session.scalars(select(TokenRow.token_hash))).all())
        clients = (await session.scalars(select(OAuthClient))).all()
    assert hashlib.sha256(first_access.encode()).hexdigest() in hashes
    assert first_access not in hashes and first_refresh not in hashes
    assert [c.kind for c in clients] == ["dcr"]

    # 3. The access token expires (2 s in this hub); the SDK refreshes with the rotating refresh token.
    await asyncio.sleep(2.5)
    expired = await as_hub.admin.post(
        "/mcp",
        headers={"Authorization": f"Bearer {first_access}", "Accept": "application/json, text/event-stream"},
        json={},
    )
    assert expired.status_code == 401 and 'error="invalid_token"' in expired.headers["www-authenticate"]
    headers = await whoami_through_hub(as_hub, provider)
    assert headers["x-user-key"] == "upstream-key-of-alice"
    assert storage.tokens.access_token != first_access
    assert storage.tokens.refresh_token not in (None, first_refresh)
    async with transaction(hub.sessions) as session:
        used_codes = await session.scalar(
            select(func.count()).select_from(OAuthCode).where(OAuthCode.used_at.is_not(None))
        )
    assert used_codes == 1  # one sign-in: the second call refreshed, it did not re-authorize

    # 4. Revocation (RFC 7009) ends the grant: the access token gets 401, the refresh token is refused.
    current = storage.tokens
    assert storage.client is not None
    revoked = await as_hub.admin.post(
        "/revoke",
        data={"token": current.access_token, "client_id": storage.client.client_id},
        headers={"Authorization": ""},
    )
    assert revoked.status_code == 200
    after = await as_hub.admin.post(
        "/mcp",
        headers={
            "Authorization": f"Bearer {current.access_token}",
            "Accept": "application/json, text/event-stream",
        },
        json={},
    )
    assert after.status_code == 401 and "revoked" in after.json()["detail"]
    refresh = await as_hub.admin.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": current.refresh_token,
            "client_id": storage.client.client_id,
        },
        headers={"Authorization": ""},
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


async def test_sdk_client_registers_by_client_id_metadata_document(
    as_hub: RunningHub, https_site: ClientSite, client_site: ClientSite, echo_http: str
) -> None:
    carol = await add_person(as_hub, "carol")
    await setup_vault(as_hub, echo_http, carol)
    doc_url = https_site.doc_url("client.json")
    https_site.put_document(
        "client.json",
        {
            "client_id": doc_url,
            "client_name": "Metadata-document client",
            "redirect_uris": [client_site.callback],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        },
    )
    storage = MemoryStorage()
    seen: dict[str, Any] = {}
    provider = oauth_provider(as_hub, client_site, carol, storage, seen, client_metadata_url=doc_url)
    headers = await whoami_through_hub(as_hub, provider)
    assert headers["x-user-key"] == "upstream-key-of-carol"
    assert seen["browser"]["client"] == "Metadata-document client"
    assert storage.client is not None and storage.client.client_id == doc_url
    async with transaction(hub_of(as_hub).sessions) as session:
        kinds = (await session.execute(select(OAuthClient.client_id, OAuthClient.kind))).all()
    assert [tuple(row) for row in kinds] == [(doc_url, "cimd")]  # no dynamic registration happened

    # A second install of the same client (new token storage, new browser): carol approved this client
    # before, so signing in sends Chromium straight back to it (no consent page) and the call works.
    again: dict[str, Any] = {}
    second = oauth_provider(as_hub, client_site, carol, MemoryStorage(), again, client_metadata_url=doc_url)
    headers = await whoami_through_hub(as_hub, second)
    assert headers["x-user-key"] == "upstream-key-of-carol"
    assert again["browser"]["consentShown"] is False and again["callback"]["iss"] == as_hub.url
