"""Which redirect URIs an MCP client may register, and whether a requested one matches a registered one.

- https: any host (web clients such as claude.ai and ChatGPT call back on their own origin).
- http: loopback only (127.0.0.1, localhost, [::1]); a native client's loopback redirect matches on any
  port (RFC 8252 §7.3), since the port is picked when the client starts.
- private-use schemes (cursor://...): only the exact URIs the operator allows.
- javascript:, data:, file: (and vbscript:, blob:): never, allowlist or not.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
NEVER_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "blob", "about"})
MAX_REDIRECT_URI_CHARS = 2000


class RedirectUriError(ValueError):
    """A redirect URI that may not be registered; the message says why."""


def _is_loopback_http(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def check_registrable(uri: str, private_allowlist: Iterable[str]) -> str:
    """Returns the URI if a client may register it, or raises RedirectUriError."""
    if len(uri) > MAX_REDIRECT_URI_CHARS:
        raise RedirectUriError("redirect URI is too long")
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise RedirectUriError(f"{uri!r} is not a URL") from None
    scheme = parts.scheme.lower()
    if not scheme or scheme in NEVER_SCHEMES:
        raise RedirectUriError(f"redirect URIs with the scheme {scheme or '(none)'}: are never allowed")
    if parts.fragment or "#" in uri:
        raise RedirectUriError("redirect URIs must not contain a fragment")
    if scheme == "https":
        if not parts.hostname:
            raise RedirectUriError(f"{uri!r} has no host")
        return uri
    if scheme == "http":
        if _is_loopback_http(uri):
            return uri
        raise RedirectUriError(
            "http redirect URIs must be on loopback (127.0.0.1, localhost, [::1]); use https"
        )
    if uri in set(private_allowlist):
        return uri
    raise RedirectUriError(
        f"the private-use redirect URI {uri!r} is not allowed on this hub "
        "(an operator can add it to MCP_HUB_OAUTH_PRIVATE_REDIRECT_URIS)"
    )


def matches(requested: str, registered: Iterable[str]) -> bool:
    """Exact string match, except that loopback http URIs match on any port (host, path and query must
    still be equal)."""
    registered = list(registered)
    if requested in registered:
        return True
    if not _is_loopback_http(requested):
        return False
    want = urlsplit(requested)
    for candidate in registered:
        if not _is_loopback_http(candidate):
            continue
        have = urlsplit(candidate)
        if (have.hostname, have.path or "/", have.query) == (want.hostname, want.path or "/", want.query):
            return True
    return False
