"""The hub as an OAuth 2.1 client of upstream authorization servers: the authorize flow (PKCE S256,
RFC 8707 `resource`, RFC 9207 `iss`), the callback's token exchange, and refresh (single-flight per
credential). authlib (on httpx2) does the protocol mechanics; this module decides what is allowed."""

from __future__ import annotations

import asyncio
import secrets
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from mcp.shared.auth import OAuthToken
from pydantic import ValidationError
from sqlalchemy import delete, select, update

from mcp_hub.credentials.discovery import (
    CALLBACK_PATH,
    AuthServer,
    OAuthClient,
    authorization_server,
    callback_url,
    oauth_client,
    stored_client,
)
from mcp_hub.credentials.netguard import GuardedTransport
from mcp_hub.credentials.store import put_credential, read_payload, seal_payload
from mcp_hub.crypto import Keyring, RowBinding, secret_hash
from mcp_hub.errors import (
    NeedsReconnectError,
    NotConnectedError,
    OAuthFlowError,
    UpstreamError,
)
from mcp_hub.runtime import Hub
from mcp_hub.store import audit
from mcp_hub.store.engine import transaction
from mcp_hub.store.locks import lock_row
from mcp_hub.store.models import (
    CredentialStatus,
    CredentialType,
    McpServer,
    McpUserCredential,
    OAuthState,
    new_id,
    utcnow,
)

STATE_TTL = timedelta(minutes=10)
STATE_TABLE = "oauth_states"
BROWSER_COOKIE_PREFIX = "mcp_hub_oauth_"
CALLBACK_COOKIE_PATH = CALLBACK_PATH
# RFC 7591's name for "no client authentication" (a public client), not a secret.
PUBLIC_CLIENT = "none"


def browser_cookie_name(state: str) -> str:
    """One cookie per flow (named after the state's hash), so two flows in one browser do not clash."""
    return BROWSER_COOKIE_PREFIX + secret_hash(state)[:16]


def connect_url(hub: Hub, server_id: str) -> str:
    """Where a person connects their own credential for a server: the UI's connect page, which calls
    the REST endpoints with the user's hub key (a plain link cannot carry that key)."""
    return f"{hub.settings.base_url}/ui/servers/{server_id}/connect"


def _verifier_binding(row: OAuthState) -> RowBinding:
    return RowBinding(
        table=STATE_TABLE, row_id=row.id, field="code_verifier", user_id=row.user_id, server_id=row.server_id
    )


def rewrap_state_verifier(keyring: Keyring, row: OAuthState) -> None:
    """Re-encrypts a pending flow's PKCE verifier under the keyring's primary key (key rotation)."""
    verifier = keyring.decrypt(row.code_verifier_encrypted, row.key_id, _verifier_binding(row))
    row.code_verifier_encrypted, row.key_id = keyring.encrypt(verifier, _verifier_binding(row))


def _client(hub: Hub, client: OAuthClient, **kwargs: Any) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method=client.token_endpoint_auth_method,
        transport=GuardedTransport(hub.url_guard),
        trust_env=False,
        follow_redirects=False,
        timeout=hub.settings.oauth_http_timeout_seconds,
        **kwargs,
    )


# --- authorize -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedFlow:
    authorization_url: str
    cookie_name: str
    # A bearer secret for the callback: it goes into the HttpOnly cookie and nowhere else.
    cookie_value: str = field(repr=False)


async def start_authorization(
    hub: Hub,
    *,
    user_id: str,
    server_id: str,
    redirect_after: str,
    client_id: str | None = None,
    replace: bool = False,
) -> StartedFlow:
    """Starts a flow for the user; `replace` lets its tokens replace a BYOK key of theirs."""
    auth = await authorization_server(hub, server_id)
    if auth.code_challenge_methods is not None and "S256" not in auth.code_challenge_methods:
        raise OAuthFlowError("the authorization server does not offer PKCE with S256, which the hub requires")
    if client_id:
        # A client id given by the caller is a public client of theirs: the stored secret is not its.
        client = OAuthClient(
            client_id=client_id, client_secret=None, token_endpoint_auth_method=PUBLIC_CLIENT
        )
    else:
        client = await oauth_client(hub, auth)
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
    browser = secrets.token_urlsafe(32)
    now = utcnow()
    row = OAuthState(
        id=new_id(),
        state_hash=secret_hash(state),
        browser_hash=secret_hash(browser),
        user_id=user_id,
        server_id=server_id,
        client_id=client.client_id,
        redirect_uri=callback_url(hub),
        redirect_after=redirect_after,
        resource=auth.resource,
        replace_existing=replace,
        created_at=now,
        expires_at=now + STATE_TTL,
    )
    row.code_verifier_encrypted, row.key_id = hub.keyring.encrypt(verifier.encode(), _verifier_binding(row))
    async with transaction(hub.sessions) as session:
        # Expired flows are of no use to anyone; clearing them here keeps the table small without a job.
        await session.execute(delete(OAuthState).where(OAuthState.expires_at < now - STATE_TTL))
        session.add(row)
    extra: dict[str, str] = {}
    if auth.resource:
        extra["resource"] = auth.resource
    oauth = _client(
        hub,
        client,
        redirect_uri=row.redirect_uri,
        scope=" ".join(auth.scopes) or None,
        code_challenge_method="S256",
    )
    async with oauth:
        url, _ = oauth.create_authorization_url(
            auth.authorization_endpoint, state=state, code_verifier=verifier, **extra
        )
    return StartedFlow(authorization_url=url, cookie_name=browser_cookie_name(state), cookie_value=browser)


# --- callback ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackParams:
    state: str | None
    code: str | None
    iss: str | None
    error: str | None
    error_description: str | None


async def _claim_state(
    hub: Hub, state: str, cookies: dict[str, str], bearer_user_id: str | None
) -> tuple[OAuthState, str]:
    """Checks the state belongs to this browser (and user, when the callback carries a hub key), is
    fresh and unused, and marks it used in its own transaction, so it can never be used twice even if
    the token exchange that follows fails."""
    now = utcnow()
    async with transaction(hub.sessions) as session:
        row = await session.scalar(
            select(OAuthState).where(OAuthState.state_hash == secret_hash(state)).with_for_update()
        )
        if row is None:
            raise OAuthFlowError("unknown sign-in state: start connecting again")
        presented = cookies.get(browser_cookie_name(state))
        if presented is None or not secrets.compare_digest(secret_hash(presented), row.browser_hash):
            raise OAuthFlowError(
                "this sign-in was started in another browser (or its cookie expired): start connecting again here"
            )
        if bearer_user_id is not None and bearer_user_id != row.user_id:
            raise OAuthFlowError("this sign-in was started by another user")
        if row.used_at is not None:
            raise OAuthFlowError("this sign-in state was already used: start connecting again")
        if row.expires_at < now:
            raise OAuthFlowError("this sign-in took longer than 10 minutes: start connecting again")
        # Conditional, so two callbacks racing with one state cannot both pass: SQLite ignores FOR UPDATE
        # and reads outside a transaction, so both could have read `used_at` as unset. Sending the code
        # twice would also make the authorization server revoke the grant (RFC 6749 section 4.1.2).
        claimed = await session.scalar(
            update(OAuthState)
            .where(OAuthState.id == row.id, OAuthState.used_at.is_(None))
            .values(used_at=now)
            .returning(OAuthState.id)
            .execution_options(synchronize_session=False)
        )
        if claimed is None:
            raise OAuthFlowError("this sign-in state was already used: start connecting again")
        verifier = hub.keyring.decrypt(
            row.code_verifier_encrypted, row.key_id, _verifier_binding(row)
        ).decode()
    return row, verifier


def _check_issuer(auth: AuthServer, iss: str | None) -> None:
    """RFC 9207: when the server says it sends `iss`, it must be there and name the issuer we expect;
    when it sends one anyway, it must still match (mix-up defence)."""
    if auth.issuer is None:
        return
    if iss is None:
        if auth.iss_parameter_supported:
            raise OAuthFlowError("the authorization response has no `iss` although the server promises one")
        return
    if iss != auth.issuer:
        raise OAuthFlowError("the authorization response came from an unexpected issuer")


def _token_from_response(token: dict[str, Any]) -> OAuthToken:
    if not token.get("access_token"):
        raise OAuthFlowError("the authorization server's token response has no access_token")
    try:
        return OAuthToken.model_validate(dict(token))
    except ValidationError:
        raise OAuthFlowError(
            "the authorization server's token response is not a usable bearer token"
        ) from None


def _expiry(token: OAuthToken, now: datetime) -> datetime | None:
    return now + timedelta(seconds=token.expires_in) if token.expires_in is not None else None


def _payload(
    token: OAuthToken, client_id: str, resource: str | None, previous_refresh: str | None
) -> dict[str, Any]:
    return {
        "access_token": token.access_token,
        "token_type": token.token_type,
        # A server that does not rotate keeps the old refresh token valid: keep it.
        "refresh_token": token.refresh_token or previous_refresh,
        "scope": token.scope,
        "client_id": client_id,
        "resource": resource,
    }


async def complete_authorization(
    hub: Hub, params: CallbackParams, *, cookies: dict[str, str], bearer_user_id: str | None
) -> str:
    """Finishes a flow; returns the UI path to send the browser back to."""
    if not params.state:
        raise OAuthFlowError("the callback has no state: start connecting again")
    row, verifier = await _claim_state(hub, params.state, cookies, bearer_user_id)
    if params.error:
        detail = f": {params.error_description}" if params.error_description else ""
        raise OAuthFlowError(f"the authorization server refused: {params.error}{detail}")
    auth = await authorization_server(hub, row.server_id)
    _check_issuer(auth, params.iss)
    if not params.code:
        raise OAuthFlowError("the callback has no authorization code")
    client = await _client_for_state(hub, auth, row.client_id)
    extra: dict[str, str] = {"resource": row.resource} if row.resource else {}
    oauth = _client(hub, client, redirect_uri=row.redirect_uri, code_challenge_method="S256")
    async with oauth:
        try:
            async with asyncio.timeout(hub.settings.oauth_http_timeout_seconds):
                raw = await oauth.fetch_token(
                    auth.token_endpoint,
                    grant_type="authorization_code",
                    code=params.code,
                    code_verifier=verifier,
                    **extra,
                )
        except OAuthError as exc:
            raise OAuthFlowError(f"the authorization server refused the code: {exc.error}") from None
        except (httpx2.HTTPError, ValueError, TimeoutError) as exc:
            raise UpstreamError(f"token exchange failed: {type(exc).__name__}") from None
    token = _token_from_response(raw)
    now = utcnow()
    async with transaction(hub.sessions) as session:
        credential = await put_credential(
            session,
            hub.keyring,
            user_id=row.user_id,
            server_id=row.server_id,
            type=CredentialType.oauth2,
            payload=_payload(token, client.client_id, row.resource, None),
            expires_at=_expiry(token, now),
            replace=row.replace_existing,
        )
        audit.record(
            session,
            None,
            "credential.oauth.connect",
            target_type="credential",
            target_id=credential.id,
            detail={"user_id": row.user_id, "server_id": row.server_id},
        )
    return row.redirect_after


async def _client_for_state(hub: Hub, auth: AuthServer, client_id: str) -> OAuthClient:
    """The client a flow or a token was issued to. Never registers a new one: tokens belong to the
    client that obtained them. A client id other than the stored one is the caller's public client."""
    stored = await stored_client(hub, auth.server_id)
    if stored is not None and stored.client_id == client_id:
        return stored
    return OAuthClient(client_id=client_id, client_secret=None, token_endpoint_auth_method=PUBLIC_CLIENT)


# --- refresh -------------------------------------------------------------------------------------------

# One lock per credential in this process; the database row lock covers other processes.
_refresh_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _needs_refresh(row: McpUserCredential, skew: timedelta, now: datetime) -> bool:
    return row.expires_at is not None and row.expires_at - skew <= now


async def oauth_access_token(
    hub: Hub, server: McpServer, row: McpUserCredential
) -> tuple[str, McpUserCredential]:
    """A usable access token for the credential, refreshed first when it expires within the skew.
    Concurrent callers for one credential share one refresh: an in-process lock, then `SELECT ... FOR
    UPDATE` (PostgreSQL) so another hub process waits and then sees the refreshed row."""
    skew = timedelta(seconds=hub.settings.oauth_refresh_skew_seconds)
    if row.status == CredentialStatus.needs_reconnect.value:
        raise _reconnect(hub, server)
    if not _needs_refresh(row, skew, utcnow()):
        return str(read_payload(hub.keyring, row)["access_token"]), row
    async with _refresh_lock(row.id):
        return await _refresh_locked(hub, server, row.id, skew)


def _refresh_lock(credential_id: str) -> asyncio.Lock:
    lock = _refresh_locks.get(credential_id)
    if lock is None:
        lock = _refresh_locks.setdefault(credential_id, asyncio.Lock())
    return lock


async def oauth_token_rejected(hub: Hub, server: McpServer, credential_id: str, version: datetime) -> None:
    """The upstream answered 401 to the access token of `version` (the row's `updated_at` when it was
    read): refresh it now, whatever its expiry says. Single-flight like expiry refreshes, and only once
    per rejected token: callers that got the same 401 find the row already replaced. A revoked grant
    ends in NeedsReconnectError, and the credential is marked so."""
    skew = timedelta(seconds=hub.settings.oauth_refresh_skew_seconds)
    async with _refresh_lock(credential_id):
        await _refresh_locked(hub, server, credential_id, skew, rejected_version=version)


def _reconnect(hub: Hub, server: McpServer) -> NeedsReconnectError:
    return NeedsReconnectError(
        f"your connection to {server.name!r} is no longer accepted upstream: connect again at "
        f"{connect_url(hub, server.id)}",
        server_id=server.id,
        connect_url=connect_url(hub, server.id),
    )


async def _refresh_locked(
    hub: Hub,
    server: McpServer,
    credential_id: str,
    skew: timedelta,
    *,
    rejected_version: datetime | None = None,
) -> tuple[str, McpUserCredential]:
    invalid_grant = False
    async with transaction(hub.sessions) as session:
        # A second hub process (PostgreSQL row lock, SQLite database write lock) waits here and then
        # reads the refreshed row.
        await lock_row(session, McpUserCredential, credential_id)
        row = await session.scalar(
            select(McpUserCredential).where(McpUserCredential.id == credential_id).with_for_update()
        )
        if row is None or row.type != CredentialType.oauth2.value:
            raise NotConnectedError(
                f"you have not connected {server.name!r}: connect at {connect_url(hub, server.id)}",
                server_id=server.id,
                connect_url=connect_url(hub, server.id),
            )
        if row.status == CredentialStatus.needs_reconnect.value:
            raise _reconnect(hub, server)
        payload = read_payload(hub.keyring, row)
        stale = (
            row.updated_at == rejected_version
            if rejected_version is not None
            else _needs_refresh(row, skew, utcnow())
        )
        if not stale:
            return str(payload["access_token"]), row  # another caller (or process) refreshed it meanwhile
        refresh_token = payload.get("refresh_token")
        if refresh_token:
            new_token = await _refresh_grant(hub, server, payload, str(refresh_token))
        else:
            new_token = None
        if new_token is None:
            row.status = CredentialStatus.needs_reconnect.value
            row.updated_at = utcnow()
            invalid_grant = True
        else:
            now = utcnow()
            seal_payload(
                hub.keyring,
                row,
                _payload(new_token, str(payload["client_id"]), payload.get("resource"), str(refresh_token)),
            )
            row.expires_at = _expiry(new_token, now)
            row.updated_at = now
    if invalid_grant:
        # Raised after the transaction, so the status change is committed.
        raise _reconnect(hub, server)
    return new_token.access_token if new_token else "", row


async def _refresh_grant(
    hub: Hub, server: McpServer, payload: dict[str, Any], refresh_token: str
) -> OAuthToken | None:
    """The refreshed token, or None when the grant is gone (`invalid_grant`)."""
    auth = await authorization_server(hub, server.id)
    client = await _client_for_state(hub, auth, str(payload["client_id"]))
    extra: dict[str, str] = {"resource": str(payload["resource"])} if payload.get("resource") else {}
    oauth = _client(hub, client)
    async with oauth:
        try:
            async with asyncio.timeout(hub.settings.oauth_http_timeout_seconds):
                raw = await oauth.refresh_token(auth.token_endpoint, refresh_token=refresh_token, **extra)
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                return None
            raise UpstreamError(f"token refresh for {server.name!r} failed: {exc.error}") from None
        except (httpx2.HTTPError, ValueError, TimeoutError) as exc:
            raise UpstreamError(f"token refresh for {server.name!r} failed: {type(exc).__name__}") from None
    try:
        return _token_from_response(raw)
    except OAuthFlowError as exc:
        raise UpstreamError(f"token refresh for {server.name!r} failed: {exc.message}") from None
