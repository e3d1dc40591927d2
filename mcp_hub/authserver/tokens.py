"""Authorization codes and tokens the hub issues to MCP clients, stored only as SHA-256 hashes.

- Codes: single-use (claimed by an UPDATE that only succeeds once) and short-lived. Replaying a code
  revokes every token issued from it (RFC 6749 §4.1.2): its id is their `grant_id`.
- Access tokens: opaque, bound to the hub's `/mcp` resource, checked on every MCP request.
- Refresh tokens rotate. The previous one stays valid until its successor is first used (a client that
  lost the response can retry), then it is superseded; presenting a superseded one is a replay and
  revokes the whole grant.
- Revocation revokes the grant: the access and refresh tokens of that authorization.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from mcp.server.auth.provider import AuthorizationCode, RefreshToken, TokenError
from mcp.shared.auth import OAuthToken as OAuthTokenResponse
from pydantic import AnyUrl
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.auth.keys import Caller
from mcp_hub.crypto import secret_hash
from mcp_hub.errors import AuthenticationError
from mcp_hub.runtime import Hub
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import OAuthCode, OAuthToken, User, new_id, utcnow

# Prefixes make the hub's secrets recognisable (secret scanners, and the gateway tells an access token
# from an API key without a second lookup).
CODE_PREFIX = "mcpac_"
ACCESS_PREFIX = "mcpat_"
REFRESH_PREFIX = "mcprt_"
KIND_ACCESS = "access"
KIND_REFRESH = "refresh"
MAX_TOKEN_CHARS = 256


def token_hash(value: str) -> str:
    return secret_hash(value)


def _new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


class HubAuthorizationCode(AuthorizationCode):
    row_id: str
    client_ref: str
    user_id: str


class HubRefreshToken(RefreshToken):
    row_id: str
    client_ref: str
    user_id: str
    grant_id: str


async def create_code(
    hub: Hub,
    *,
    client_ref: str,
    user_id: str,
    redirect_uri: str,
    redirect_uri_explicit: bool,
    code_challenge: str,
    scopes: list[str],
    resource: str,
) -> str:
    code = _new_secret(CODE_PREFIX)
    async with transaction(hub.sessions) as session:
        await _sweep(session)
        session.add(
            OAuthCode(
                code_hash=token_hash(code),
                client_ref=client_ref,
                user_id=user_id,
                redirect_uri=redirect_uri,
                redirect_uri_explicit=redirect_uri_explicit,
                code_challenge=code_challenge,
                scopes=scopes,
                resource=resource,
                expires_at=utcnow() + timedelta(seconds=hub.settings.oauth_code_seconds),
            )
        )
    return code


# Rows past this age after expiry are deleted: long enough to answer a late replay as `invalid_grant`.
SWEEP_AFTER = timedelta(days=1)


async def _sweep(session: AsyncSession) -> None:
    """Deletes codes and tokens that expired a while ago (both by their `expires_at` index). Run when a
    code is issued, so the tables stay proportional to live grants without a background job."""
    cutoff = utcnow() - SWEEP_AFTER
    await session.execute(delete(OAuthCode).where(OAuthCode.expires_at < cutoff))
    await session.execute(delete(OAuthToken).where(OAuthToken.expires_at < cutoff))


async def load_code(hub: Hub, client_ref: str, code: str) -> HubAuthorizationCode | None:
    if len(code) > MAX_TOKEN_CHARS:
        return None
    async with transaction(hub.sessions) as session:
        row = await session.scalar(
            select(OAuthCode).where(
                OAuthCode.code_hash == token_hash(code), OAuthCode.client_ref == client_ref
            )
        )
    if row is None:
        return None
    # Returned even when used: the exchange step tells a replay apart and revokes what it issued.
    return HubAuthorizationCode(
        code=code,
        scopes=row.scopes,
        expires_at=row.expires_at.timestamp(),
        client_id="",  # filled by the provider, which knows the client
        code_challenge=row.code_challenge,
        redirect_uri=AnyUrl(row.redirect_uri),
        redirect_uri_provided_explicitly=row.redirect_uri_explicit,
        resource=row.resource,
        subject=row.user_id,
        row_id=row.id,
        client_ref=row.client_ref,
        user_id=row.user_id,
    )


@dataclass(frozen=True)
class _Grant:
    grant_id: str
    client_ref: str
    user_id: str
    scopes: list[str]
    resource: str


async def _issue(
    hub: Hub, session: AsyncSession, grant: _Grant, *, parent_id: str | None
) -> OAuthTokenResponse:
    now = utcnow()
    access = _new_secret(ACCESS_PREFIX)
    refresh = _new_secret(REFRESH_PREFIX)
    access_ttl = hub.settings.oauth_access_token_seconds
    rows = [
        OAuthToken(
            id=new_id(),
            token_hash=token_hash(access),
            kind=KIND_ACCESS,
            expires_at=now + timedelta(seconds=access_ttl),
            parent_id=None,
            **_grant_columns(grant),
        ),
        OAuthToken(
            id=new_id(),
            token_hash=token_hash(refresh),
            kind=KIND_REFRESH,
            expires_at=now + timedelta(seconds=hub.settings.oauth_refresh_token_seconds),
            parent_id=parent_id,
            **_grant_columns(grant),
        ),
    ]
    session.add_all(rows)
    await session.flush()
    return OAuthTokenResponse(
        access_token=access,
        token_type="Bearer",  # noqa: S106 - the scheme name, not a secret
        expires_in=access_ttl,
        refresh_token=refresh,
        scope=" ".join(grant.scopes),
    )


def _grant_columns(grant: _Grant) -> dict[str, object]:
    return {
        "grant_id": grant.grant_id,
        "client_ref": grant.client_ref,
        "user_id": grant.user_id,
        "scopes": grant.scopes,
        "resource": grant.resource,
    }


_revocations = 0


def revocations() -> int:
    """How many revocations this process has committed. The gateway's auth cache (auth/context.py) drops
    its entries when this changes, so a revoked token fails on the next request, not a TTL later (other
    processes of the hub still wait out their TTL)."""
    return _revocations


def note_revocation() -> None:
    # Called after the revoking transaction commits: bumped earlier, a request in between could re-cache
    # the old state under the new count.
    global _revocations
    _revocations += 1


async def _revoke_grant(session: AsyncSession, grant_id: str) -> None:
    await session.execute(
        update(OAuthToken)
        .where(OAuthToken.grant_id == grant_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def _require_active_user(session: AsyncSession, user_id: str) -> None:
    disabled = await session.scalar(select(User.disabled).where(User.id == user_id))
    if disabled is None or disabled:
        raise TokenError("invalid_grant", "the user of this grant is disabled or deleted")


async def exchange_code(hub: Hub, code: HubAuthorizationCode) -> OAuthTokenResponse:
    async with transaction(hub.sessions) as session:
        claimed = await session.execute(
            update(OAuthCode)
            .where(OAuthCode.id == code.row_id, OAuthCode.used_at.is_(None))
            .values(used_at=utcnow())
        )
        if getattr(claimed, "rowcount", 0) != 1:
            await _revoke_grant(session, code.row_id)
            replayed = True
        else:
            replayed = False
            await _require_active_user(session, code.user_id)
            grant = _Grant(code.row_id, code.client_ref, code.user_id, code.scopes, code.resource or "")
            tokens = await _issue(hub, session, grant, parent_id=None)
    if replayed:
        note_revocation()
        # Raised after the transaction so the revocation is committed.
        raise TokenError("invalid_grant", "this authorization code was already used")
    return tokens


async def load_refresh_token(hub: Hub, client_ref: str, token: str) -> HubRefreshToken | None:
    if not token.startswith(REFRESH_PREFIX) or len(token) > MAX_TOKEN_CHARS:
        return None
    replayed = False
    async with transaction(hub.sessions) as session:
        row = await session.scalar(
            select(OAuthToken).where(
                OAuthToken.token_hash == token_hash(token),
                OAuthToken.kind == KIND_REFRESH,
                OAuthToken.client_ref == client_ref,
            )
        )
        if row is None:
            return None
        if row.revoked_at is not None:
            if row.superseded_at is not None:
                # A rotated-out token came back after its successor was used: someone holds a copy.
                await _revoke_grant(session, row.grant_id)
                replayed = True
        elif row.expires_at <= utcnow():
            return None
    if replayed:
        note_revocation()
    if row.revoked_at is not None:
        return None
    return HubRefreshToken(
        token=token,
        client_id="",
        scopes=row.scopes,
        expires_at=int(row.expires_at.timestamp()),
        resource=row.resource,
        subject=row.user_id,
        row_id=row.id,
        client_ref=row.client_ref,
        user_id=row.user_id,
        grant_id=row.grant_id,
    )


async def rotate_refresh_token(hub: Hub, token: HubRefreshToken, scopes: list[str]) -> OAuthTokenResponse:
    async with transaction(hub.sessions) as session:
        row = await session.scalar(select(OAuthToken).where(OAuthToken.id == token.row_id).with_for_update())
        if row is None or row.revoked_at is not None:
            raise TokenError("invalid_grant", "this refresh token is no longer valid")
        await _require_active_user(session, row.user_id)
        now = utcnow()
        if row.used_at is None:
            row.used_at = now
            if row.parent_id is not None:
                # This token's first use retires its predecessor and any other successor of it.
                await session.execute(
                    update(OAuthToken)
                    .where(
                        or_(
                            OAuthToken.id == row.parent_id,
                            (OAuthToken.parent_id == row.parent_id) & (OAuthToken.id != row.id),
                        ),
                        OAuthToken.revoked_at.is_(None),
                    )
                    .values(revoked_at=now, superseded_at=now)
                )
        grant = _Grant(row.grant_id, row.client_ref, row.user_id, scopes, row.resource)
        return await _issue(hub, session, grant, parent_id=row.id)


async def revoke_grant(hub: Hub, grant_id: str) -> None:
    async with transaction(hub.sessions) as session:
        await _revoke_grant(session, grant_id)
    note_revocation()


def is_access_token(presented: str) -> bool:
    return presented.startswith(ACCESS_PREFIX)


async def authenticate_access_token(session: AsyncSession, presented: str, *, resource: str) -> Caller:
    """The user an access token acts for, as a Caller with no key-level restrictions (the user's own
    access rules apply, as for their API keys). `key_id` is the grant, so a refreshed token keeps the
    MCP sessions the previous one opened. Raises AuthenticationError with the reason."""
    if len(presented) > MAX_TOKEN_CHARS:
        raise AuthenticationError("not a hub access token")
    row = (
        await session.execute(
            select(OAuthToken, User)
            .join(User, User.id == OAuthToken.user_id)
            .where(OAuthToken.token_hash == token_hash(presented), OAuthToken.kind == KIND_ACCESS)
        )
    ).first()
    if row is None:
        raise AuthenticationError("unknown access token")
    token, user = row
    if token.revoked_at is not None:
        raise AuthenticationError("this access token has been revoked")
    if token.expires_at <= utcnow():
        raise AuthenticationError("this access token has expired: refresh it")
    if token.resource != resource:
        raise AuthenticationError(f"this access token was issued for another resource, not {resource}")
    if user.disabled:
        raise AuthenticationError("this user is disabled")
    return Caller(
        user_id=user.id,
        user_name=user.name,
        key_id=token.grant_id,
        is_admin=False,
        allowed_servers=None,
        allowed_tools=None,
    )


async def revoke_presented(hub: Hub, client_ref: str, presented: str) -> None:
    """RFC 7009: revokes the grant of an access or refresh token of this client; anything else (unknown,
    another client's) is silently ignored, as the RFC asks."""
    if len(presented) > MAX_TOKEN_CHARS:
        return
    async with transaction(hub.sessions) as session:
        grant_id = await session.scalar(
            select(OAuthToken.grant_id).where(
                OAuthToken.token_hash == token_hash(presented), OAuthToken.client_ref == client_ref
            )
        )
        if grant_id is not None:
            await _revoke_grant(session, grant_id)
    if grant_id is not None:
        note_revocation()
