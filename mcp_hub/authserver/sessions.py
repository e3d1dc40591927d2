"""The browser side of the sign-in and consent pages: the signed-in session cookie (its hash in
`oauth_browser_sessions`) and the CSRF token (a double-submit cookie the forms must repeat).

Cookies are `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` and `__Host-`-prefixed (no subdomain can set
or read them), except on plain-http loopback, where a browser may refuse `Secure` and `__Host-`, so the
names there have no prefix. A hub on plain http elsewhere does not serve the pages at all
(`pages_allowed`): passwords and keys would cross the network in clear, and browsers drop Secure cookies
there."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from starlette.requests import Request
from starlette.responses import Response

from mcp_hub.authserver.tokens import token_hash
from mcp_hub.runtime import Hub
from mcp_hub.settings import Settings
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import OAuthBrowserSession, User, utcnow

SESSION_COOKIE = "mcp-hub-session"
CSRF_COOKIE = "mcp-hub-csrf"
CSRF_FIELD = "csrf"
MAX_COOKIE_CHARS = 128


def _plain_http_loopback(settings: Settings) -> bool:
    parts = urlsplit(settings.base_url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_secure(settings: Settings) -> bool:
    return not _plain_http_loopback(settings)


def pages_allowed(settings: Settings) -> bool:
    """Whether the sign-in and consent pages may be served: on https, or plain http on loopback only."""
    return settings.base_url.startswith("https://") or _plain_http_loopback(settings)


def cookie_name(settings: Settings, base: str) -> str:
    return f"__Host-{base}" if is_secure(settings) else base


def _set_cookie(response: Response, settings: Settings, base: str, value: str, max_age: int) -> None:
    response.set_cookie(
        cookie_name(settings, base),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=is_secure(settings),
        samesite="lax",
    )


def csrf_token(request: Request, settings: Settings) -> tuple[str, bool]:
    """The browser's CSRF token, and whether it is new (then `set_csrf_cookie` must send it)."""
    current = request.cookies.get(cookie_name(settings, CSRF_COOKIE), "")
    if 20 <= len(current) <= MAX_COOKIE_CHARS:
        return current, False
    return secrets.token_urlsafe(32), True


def set_csrf_cookie(response: Response, settings: Settings, value: str) -> None:
    _set_cookie(response, settings, CSRF_COOKIE, value, settings.oauth_session_seconds)


def csrf_ok(request: Request, settings: Settings, submitted: object) -> bool:
    cookie = request.cookies.get(cookie_name(settings, CSRF_COOKIE), "")
    return (
        isinstance(submitted, str)
        and bool(cookie)
        and len(cookie) <= MAX_COOKIE_CHARS
        and hmac.compare_digest(cookie.encode(), submitted.encode())
    )


async def start_session(hub: Hub, response: Response, user_id: str) -> None:
    value = secrets.token_urlsafe(32)
    ttl = hub.settings.oauth_session_seconds
    async with transaction(hub.sessions) as session:
        # Expired sessions are few and small; they are swept when someone signs in.
        await session.execute(delete(OAuthBrowserSession).where(OAuthBrowserSession.expires_at < utcnow()))
        session.add(
            OAuthBrowserSession(
                session_hash=token_hash(value),
                user_id=user_id,
                expires_at=utcnow() + timedelta(seconds=ttl),
            )
        )
    _set_cookie(response, hub.settings, SESSION_COOKIE, value, ttl)


async def session_user(hub: Hub, request: Request) -> User | None:
    value = request.cookies.get(cookie_name(hub.settings, SESSION_COOKIE), "")
    if not value or len(value) > MAX_COOKIE_CHARS:
        return None
    async with transaction(hub.sessions) as session:
        row = (
            await session.execute(
                select(OAuthBrowserSession, User)
                .join(User, User.id == OAuthBrowserSession.user_id)
                .where(OAuthBrowserSession.session_hash == token_hash(value))
            )
        ).first()
    if row is None:
        return None
    browser_session, user = row
    if browser_session.expires_at <= utcnow() or user.disabled:
        return None
    return user
