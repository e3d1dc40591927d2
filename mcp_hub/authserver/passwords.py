"""User passwords for the sign-in page: scrypt (standard library) with a per-password salt, computed off
the event loop (it is deliberately slow), and the one writer of `user_passwords`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.errors import InvalidInputError
from mcp_hub.store.models import OAuthBrowserSession, UserPassword, utcnow

# RFC 7914 parameters: 2^15 x 8 x 128 bytes = 32 MiB and ~0.1 s per hash on one core.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MAX_MEM = 64 * 1024 * 1024
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAX_MEM, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_password_strength(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInputError(
            f"a password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long"
        )


async def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_scrypt, password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


async def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = await asyncio.to_thread(_scrypt, password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# A fixed hash to verify against when the user has no password, so a missing user or password takes as
# long as a wrong one (no user enumeration by timing).
_DUMMY_SALT = b"mcp-hub-no-user!"


async def spend_equal_time(password: str) -> None:
    await asyncio.to_thread(_scrypt, password, _DUMMY_SALT, SCRYPT_N, SCRYPT_R, SCRYPT_P)


async def set_password(session: AsyncSession, user_id: str, password: str) -> None:
    """Sets the password and signs the user out of every browser: a new password is often set because
    the old one leaked, and a session opened with it must not outlive it."""
    check_password_strength(password)
    password_hash = await hash_password(password)
    row = await session.get(UserPassword, user_id)
    if row is None:
        session.add(UserPassword(user_id=user_id, password_hash=password_hash))
    else:
        row.password_hash = password_hash
        row.updated_at = utcnow()
    await session.execute(delete(OAuthBrowserSession).where(OAuthBrowserSession.user_id == user_id))
    await session.flush()
