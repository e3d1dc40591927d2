"""The authorization server's storage on SQLite and PostgreSQL: only hashes stored, codes single-use
under concurrency, idle clients forgotten, passwords hashed with scrypt."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import time
from datetime import timedelta

import pytest
from mcp.server.auth.provider import TokenError
from mcp.shared.auth import OAuthClientInformationFull
from sqlalchemy import select, update

from mcp_hub.authserver import cimd, clients, tokens
from mcp_hub.authserver.cimd import ClientDocumentError
from mcp_hub.authserver.passwords import set_password, verify_password
from mcp_hub.credentials.netguard import UrlGuard
from mcp_hub.runtime import Hub
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import OAuthClient, OAuthCode, OAuthToken, User, UserPassword, utcnow


async def _user(hub: Hub, name: str = "alice") -> str:
    async with transaction(hub.sessions) as session:
        user = User(name=name)
        session.add(user)
        await session.flush()
        return user.id


async def _client(hub: Hub, secret: str | None = None) -> clients.HubClient:
    info = OAuthClientInformationFull.model_validate(
        {
            "client_id": "client-1",
            "client_secret": secret,
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "token_endpoint_auth_method": "client_secret_post" if secret else "none",
        }
    )
    await clients.register_client(hub, info)
    found = await clients.get_client(hub, "client-1", fetch_document=False)
    assert found is not None
    return found


async def _code(hub: Hub, client: clients.HubClient, user_id: str) -> tokens.HubAuthorizationCode:
    code = await tokens.create_code(
        hub,
        client_ref=client.ref,
        user_id=user_id,
        redirect_uri="https://claude.ai/api/mcp/auth_callback",
        redirect_uri_explicit=True,
        code_challenge="c" * 43,
        scopes=["mcp"],
        resource="http://127.0.0.1:4000/mcp",
    )
    loaded = await tokens.load_code(hub, client.ref, code)
    assert loaded is not None
    return loaded


async def test_only_hashes_are_stored(hub: Hub) -> None:
    user_id = await _user(hub)
    client = await _client(hub, secret="s3cret-value-" + "x" * 40)
    code = await _code(hub, client, user_id)
    issued = await tokens.exchange_code(hub, code)
    async with transaction(hub.sessions) as session:
        client_row = await session.scalar(select(OAuthClient))
        token_rows = (await session.scalars(select(OAuthToken))).all()
    assert client_row is not None
    assert client_row.client_secret_hash == hashlib.sha256(("s3cret-value-" + "x" * 40).encode()).hexdigest()
    assert "s3cret" not in str(client_row.metadata_)
    stored = {row.token_hash for row in token_rows}
    assert stored == {tokens.token_hash(issued.access_token), tokens.token_hash(issued.refresh_token or "")}


async def test_a_code_is_exchanged_once_even_when_raced(hub: Hub) -> None:
    user_id = await _user(hub)
    client = await _client(hub)
    code = await _code(hub, client, user_id)
    before = tokens.revocations()
    results = await asyncio.gather(
        *(tokens.exchange_code(hub, code) for _ in range(4)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, TokenError)]
    assert len(winners) == 1 and len(losers) == 3, results
    # The replays revoked what the winner got.
    async with transaction(hub.sessions) as session:
        live = (await session.scalars(select(OAuthToken).where(OAuthToken.revoked_at.is_(None)))).all()
    assert live == []
    # ... and told the gateway's auth cache, so what was cached for those tokens is dropped at once.
    assert tokens.revocations() > before
    before = tokens.revocations()
    assert await clients.delete_client(hub, "client-1")
    assert tokens.revocations() > before


async def test_idle_clients_are_forgotten(hub: Hub) -> None:
    client = await _client(hub)
    async with transaction(hub.sessions) as session:
        await session.execute(
            update(OAuthClient)
            .where(OAuthClient.id == client.ref)
            .values(last_used_at=utcnow() - timedelta(days=91))
        )
    assert await clients.get_client(hub, "client-1", fetch_document=False) is None
    async with transaction(hub.sessions) as session:
        assert await session.scalar(select(OAuthClient.id)) is None


async def test_idle_clients_that_never_come_back_are_forgotten_too(hub: Hub) -> None:
    # A client registered once and never used again is never looked up: registering the next one sweeps
    # it, with what it was issued (registration is open, so the table must not only grow).
    idle = await _client(hub)
    user_id = await _user(hub)
    await tokens.exchange_code(hub, await _code(hub, idle, user_id))
    async with transaction(hub.sessions) as session:
        await session.execute(
            update(OAuthClient)
            .where(OAuthClient.id == idle.ref)
            .values(last_used_at=utcnow() - timedelta(days=91))
        )
    await clients.register_client(
        hub,
        OAuthClientInformationFull.model_validate(
            {
                "client_id": "client-2",
                "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "none",
            }
        ),
    )
    async with transaction(hub.sessions) as session:
        left = (await session.scalars(select(OAuthClient.client_id))).all()
        tokens_left = (await session.scalars(select(OAuthToken.id))).all()
    assert left == ["client-2"] and tokens_left == []


async def test_passwords_are_scrypt_hashes(hub: Hub) -> None:
    user_id = await _user(hub)
    async with transaction(hub.sessions) as session:
        await set_password(session, user_id, "a long enough password")
    async with transaction(hub.sessions) as session:
        stored = await session.scalar(select(UserPassword.password_hash))
    assert stored is not None and stored.startswith("scrypt$") and "a long enough password" not in stored
    assert await verify_password("a long enough password", stored)
    assert not await verify_password("a long enough passwore", stored)


async def test_long_expired_codes_and_tokens_are_swept(hub: Hub) -> None:
    user_id = await _user(hub)
    client = await _client(hub)
    old = await _code(hub, client, user_id)
    await tokens.exchange_code(hub, old)
    long_ago = utcnow() - timedelta(days=2)
    async with transaction(hub.sessions) as session:
        await session.execute(update(OAuthCode).values(expires_at=long_ago))
        await session.execute(update(OAuthToken).values(expires_at=long_ago))
    fresh = await _code(hub, client, user_id)  # issuing a code sweeps
    async with transaction(hub.sessions) as session:
        codes = (await session.scalars(select(OAuthCode.id))).all()
        left = (await session.scalars(select(OAuthToken.id))).all()
    assert codes == [fresh.row_id] and left == []


async def test_metadata_documents_on_internal_addresses_need_the_operator_allowlist(hub: Hub) -> None:
    # This hub has no MCP_HUB_OAUTH_ALLOWED_HOSTS: loopback and private addresses are refused before
    # any connection is made (the port below has nothing listening either way).
    for url in ("https://127.0.0.1:9/client.json", "https://10.0.0.1/client.json", "https://[::1]:9/c.json"):
        with pytest.raises(ClientDocumentError, match="MCP_HUB_OAUTH_ALLOWED_HOSTS"):
            await clients.get_client(hub, url, fetch_document=True)
    with pytest.raises(ClientDocumentError, match="must have a path"):
        await clients.get_client(hub, "https://client.example/", fetch_document=True)
    # Only https URLs are metadata documents: anything else is just an unknown client id.
    assert await clients.get_client(hub, "http://client.example/c.json", fetch_document=True) is None


async def test_a_metadata_document_that_never_arrives_times_out(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listener that accepts and then says nothing; the deadline is shortened from 10 s for the test.
    monkeypatch.setattr(cimd, "FETCH_TIMEOUT_SECONDS", 1.0)
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/client.json"
        trusting = dataclasses.replace(hub, url_guard=UrlGuard.from_list(["127.0.0.1"]))
        started = time.monotonic()
        with pytest.raises(ClientDocumentError, match="longer than"):
            await clients.get_client(trusting, url, fetch_document=True)
        assert time.monotonic() - started < 5
    finally:
        silent.close()
