"""MCP clients of the hub's authorization server: dynamic registration (RFC 7591) stored with a hashed
secret, client ID metadata documents (an https `client_id` whose document is fetched and cached, see
`cimd`), idle expiry, and client authentication at `/token` and `/revoke`."""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from mcp.server.auth.middleware.client_auth import AuthenticationError as ClientAuthError
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from mcp_hub.authserver import tokens
from mcp_hub.authserver.cimd import ClientDocumentError, fetch_client_document, is_metadata_document_url
from mcp_hub.authserver.metadata import TOKEN_AUTH_METHODS
from mcp_hub.authserver.redirects import RedirectUriError, check_registrable
from mcp_hub.crypto import secret_hash
from mcp_hub.runtime import Hub
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import OAuthClient, utcnow

KIND_DCR = "dcr"
KIND_CIMD = "cimd"
PUBLIC = "none"
# Registration is open to anyone: bound what one registration may store.
MAX_REDIRECT_URIS = 20
# `last_used_at` is written at most this often (it only feeds idle expiry).
TOUCH_PRECISION = timedelta(hours=1)


class HubClient(OAuthClientInformationFull):
    """A client as the SDK's handlers see it, plus the row it came from. `client_secret` is never set
    here: the hub keeps only its hash, and authenticates clients itself (HubClientAuthenticator)."""

    ref: str
    kind: str


def _to_client(row: OAuthClient) -> HubClient:
    return HubClient.model_validate(
        {
            **row.metadata_,
            "client_id": row.client_id,
            "token_endpoint_auth_method": row.token_endpoint_auth_method,
            "ref": row.id,
            "kind": row.kind,
        }
    )


def _registered_metadata(client: OAuthClientInformationFull) -> dict[str, Any]:
    dumped = client.model_dump(mode="json", exclude_none=True)
    return {
        key: value
        for key, value in dumped.items()
        if key not in ("client_id", "client_secret", "token_endpoint_auth_method", "ref", "kind")
    }


def check_redirect_uris(uris: list[str], private_allowlist: list[str]) -> list[str]:
    if not uris:
        raise RegistrationError("invalid_redirect_uri", "at least one redirect URI is required")
    if len(uris) > MAX_REDIRECT_URIS:
        raise RegistrationError("invalid_redirect_uri", f"at most {MAX_REDIRECT_URIS} redirect URIs")
    try:
        return [check_registrable(uri, private_allowlist) for uri in uris]
    except RedirectUriError as exc:
        raise RegistrationError("invalid_redirect_uri", str(exc)) from None


async def register_client(hub: Hub, info: OAuthClientInformationFull) -> None:
    """Stores a dynamically registered client. The SDK's registration handler minted the id and any
    secret; only the secret's hash is kept (the response shows it to the client once)."""
    method = info.token_endpoint_auth_method or PUBLIC
    if method not in TOKEN_AUTH_METHODS:
        raise RegistrationError(
            "invalid_client_metadata",
            f"token_endpoint_auth_method must be one of {', '.join(TOKEN_AUTH_METHODS)}",
        )
    check_redirect_uris(
        [str(uri) for uri in info.redirect_uris or []], hub.settings.oauth_private_redirect_uris
    )
    async with transaction(hub.sessions) as session:
        await _forget_idle(session, hub)
        session.add(
            OAuthClient(
                client_id=info.client_id,
                kind=KIND_DCR,
                client_secret_hash=secret_hash(info.client_secret) if info.client_secret else None,
                token_endpoint_auth_method=method,
                metadata_=_registered_metadata(info),
            )
        )


def _idle_limit(hub: Hub) -> timedelta:
    return timedelta(days=hub.settings.oauth_client_idle_days)


async def _forget_idle(session: AsyncSession, hub: Hub) -> None:
    """Deletes every client idle too long (their codes, tokens and consents go by cascade). Run when a
    client is added: registration is open, and a client that never comes back is never looked up, so
    forgetting it only on lookup would let the table grow without bound."""
    await session.execute(delete(OAuthClient).where(OAuthClient.last_used_at < utcnow() - _idle_limit(hub)))


async def _touch(session: AsyncSession, row: OAuthClient) -> None:
    now = utcnow()
    if row.last_used_at < now - TOUCH_PRECISION:
        await session.execute(update(OAuthClient).where(OAuthClient.id == row.id).values(last_used_at=now))


async def get_client(hub: Hub, client_id: str, *, fetch_document: bool) -> HubClient | None:
    """The client, or None when unknown, deleted or idle too long (forgotten then: its tokens go too).

    A metadata-document client is (re)fetched when `fetch_document` and the cached copy is older than
    MCP_HUB_OAUTH_CIMD_CACHE_SECONDS; at `/token` the cached copy is used. Raises ClientDocumentError
    when a document cannot be used."""
    if len(client_id) > 2048:
        return None
    async with transaction(hub.sessions) as session:
        row = await session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        if row is not None and row.last_used_at < utcnow() - _idle_limit(hub):
            await session.execute(delete(OAuthClient).where(OAuthClient.id == row.id))
            row = None
        if row is not None and not (row.kind == KIND_CIMD and fetch_document and _stale(hub, row)):
            await _touch(session, row)
            return _to_client(row)
    if not (fetch_document and is_metadata_document_url(client_id)):
        return None
    document = await fetch_client_document(hub, client_id)
    metadata = {key: value for key, value in document.metadata.items() if key != "client_id"}
    try:
        check_redirect_uris(document.redirect_uris, hub.settings.oauth_private_redirect_uris)
        HubClient.model_validate({**metadata, "client_id": client_id, "ref": "-", "kind": KIND_CIMD})
    except RegistrationError as exc:
        raise ClientDocumentError(f"client metadata document: {exc.error_description}") from None
    except ValidationError as exc:
        fields = ", ".join(sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]}))
        raise ClientDocumentError(f"client metadata document: invalid fields ({fields})") from None
    try:
        return await _store_document(hub, client_id, metadata)
    except IntegrityError:
        # Another request stored the same client's first fetch a moment ago: update that row instead.
        return await _store_document(hub, client_id, metadata)


async def _store_document(hub: Hub, client_id: str, metadata: dict[str, Any]) -> HubClient:
    async with transaction(hub.sessions) as session:
        row = await session.scalar(
            select(OAuthClient).where(OAuthClient.client_id == client_id).with_for_update()
        )
        now = utcnow()
        if row is None:
            await _forget_idle(session, hub)
            row = OAuthClient(
                client_id=client_id,
                kind=KIND_CIMD,
                client_secret_hash=None,
                token_endpoint_auth_method=PUBLIC,
                metadata_=metadata,
                fetched_at=now,
            )
            session.add(row)
        elif row.kind != KIND_CIMD:
            raise ClientDocumentError("this client_id is already registered another way")
        else:
            row.metadata_ = metadata
            row.fetched_at = now
            row.last_used_at = now
        await session.flush()
        return _to_client(row)


def _stale(hub: Hub, row: OAuthClient) -> bool:
    fetched = row.fetched_at
    return fetched is None or fetched < utcnow() - timedelta(seconds=hub.settings.oauth_cimd_cache_seconds)


async def delete_client(hub: Hub, client_id: str) -> bool:
    """Forgets a client and, by cascade, its codes, tokens and consents."""
    async with transaction(hub.sessions) as session:
        result = await session.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))
    deleted = bool(getattr(result, "rowcount", 0))
    if deleted:
        tokens.note_revocation()  # its tokens went by cascade
    return deleted


async def list_clients(hub: Hub, limit: int = 1000) -> list[OAuthClient]:
    async with transaction(hub.sessions) as session:
        return list((await session.scalars(select(OAuthClient).order_by(OAuthClient.id).limit(limit))).all())


def basic_credentials(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ClientAuthError("malformed Basic authorization header") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise ClientAuthError("malformed Basic authorization header")
    return unquote(client_id), unquote(secret)


class HubClientAuthenticator(ClientAuthenticator):
    """Authenticates `/token` and `/revoke` callers against the stored hash of their secret (the SDK's
    authenticator compares a stored plaintext secret, which the hub does not keep)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        form = await request.form()
        basic = basic_credentials(request.headers.get("authorization", ""))
        raw_id = form.get("client_id")
        client_id = raw_id if isinstance(raw_id, str) and raw_id else (basic[0] if basic else None)
        if not client_id:
            raise ClientAuthError("client_id is missing")
        if basic is not None and basic[0] != client_id:
            raise ClientAuthError("client_id differs between the form and the Basic header")
        client = await get_client(self.hub, client_id, fetch_document=False)
        if client is None:
            raise ClientAuthError("unknown client_id: register again (unused clients are forgotten)")
        method = client.token_endpoint_auth_method or PUBLIC
        if method == PUBLIC:
            return client
        raw_secret = form.get("client_secret")
        # Basic is accepted whatever the registered method (RFC 6749 §2.3.1: a server MUST support it for
        # clients issued a password); a client that omitted the method at registration, whose RFC 7591
        # default is client_secret_basic, gets client_secret_post from the SDK's handler.
        presented = basic[1] if basic else raw_secret
        if not isinstance(presented, str) or not presented:
            raise ClientAuthError("this client must authenticate with its client secret")
        async with transaction(self.hub.sessions) as session:
            stored = await session.scalar(
                select(OAuthClient.client_secret_hash).where(OAuthClient.id == client.ref)
            )
        if stored is None or not hmac.compare_digest(stored, secret_hash(presented)):
            raise ClientAuthError("invalid client credentials")
        return client
