"""Hub API keys: generation, hashing, and resolving a presented key to who is calling."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.crypto import secret_hash
from mcp_hub.errors import AuthenticationError
from mcp_hub.store.models import ApiKey, User, utcnow

KEY_PREFIX = "mcph_"
# Characters of the key shown to people (and used by `keys revoke PREFIX`): enough to tell keys apart.
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8
LAST_USED_PRECISION = timedelta(minutes=1)
MAX_KEY_LENGTH = 256
MIN_KEY_LENGTH = 32


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    prefix: str
    key_hash: str


def generate_api_key() -> NewKey:
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(
        plaintext=plaintext, prefix=plaintext[:SHOWN_PREFIX_LENGTH], key_hash=hash_api_key(plaintext)
    )


def hash_api_key(plaintext: str) -> str:
    return secret_hash(plaintext)


@dataclass(frozen=True)
class Caller:
    """Who presented a valid key, and what that key allows."""

    user_id: str
    user_name: str
    key_id: str
    is_admin: bool
    allowed_servers: frozenset[str] | None  # server names; None means no key-level restriction
    allowed_tools: frozenset[str] | None  # tool names (upstream names or `server.tool`)


async def authenticate_key(session: AsyncSession, presented: str) -> Caller:
    """Resolves a presented key, or raises AuthenticationError with a reason a person can act on."""
    if len(presented) > MAX_KEY_LENGTH:
        raise AuthenticationError("not a hub API key")
    row = (
        await session.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.key_hash == hash_api_key(presented))
        )
    ).first()
    if row is None:
        raise AuthenticationError("unknown API key")
    key, user = row.tuple()
    if key.revoked_at is not None:
        raise AuthenticationError("this API key has been revoked")
    if user.disabled:
        raise AuthenticationError("this user is disabled")
    now = utcnow()
    # Writing on every call would serialise all traffic on SQLite; a minute's precision is enough.
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_PRECISION:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return Caller(
        user_id=user.id,
        user_name=user.name,
        key_id=key.id,
        is_admin=key.is_admin,
        allowed_servers=frozenset(key.allowed_servers) if key.allowed_servers is not None else None,
        allowed_tools=frozenset(key.allowed_tools) if key.allowed_tools is not None else None,
    )


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
