"""The seam where a caller's upstream credential is resolved.

Every path that opens or uses an upstream session (tools, resources, prompts, completions) asks one
`CredentialResolver`. Today the only credential is the server's static configuration (its headers and
stdio env); the per-user resolver (OAuth2 tokens, BYOK keys from `mcp_user_credentials`) plugs in here
without touching the pool or the gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from mcp_hub.upstream.target import UpstreamTarget

STATIC_IDENTITY = "static"


@dataclass(frozen=True)
class ResolvedCredential:
    """What to present upstream. `identity` keys the session pool: two callers with the same identity
    share upstream sessions, so it must change whenever the secret material does (e.g. a credential row
    id plus its version), and it must never contain the secret itself."""

    identity: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    # Query parameters added to the upstream URL (some APIs take their key that way).
    query: dict[str, str] = field(default_factory=dict, repr=False)
    # Called when the upstream answered 401 to this credential (revoked, or expired early): replaces it
    # for the next resolve (an OAuth refresh), or raises the HubError that tells the user what to do
    # (connect again). None: nothing to replace it with, the call fails as it is.
    on_rejected: Callable[[], Awaitable[None]] | None = field(default=None, repr=False, compare=False)
    # The user's own secret (BYOK key or OAuth2 access token) as it is, for upstreams that place it
    # themselves (OpenAPI security schemes); None for shared credentials.
    secret: str | None = field(default=None, repr=False)
    secret_kind: Literal["byok", "oauth2"] | None = None


class CredentialResolver(Protocol):
    """May raise any HubError (e.g. "connect your account first"); the gateway reports its message to
    the caller as an MCP error for that call only."""

    async def resolve(self, user_id: str | None, target: UpstreamTarget) -> ResolvedCredential: ...


class StaticCredentialResolver:
    """The server's own static headers and env, shared by every caller."""

    async def resolve(self, user_id: str | None, target: UpstreamTarget) -> ResolvedCredential:
        return ResolvedCredential(
            identity=STATIC_IDENTITY, headers=dict(target.headers), env=dict(target.env)
        )
