"""The one credential resolver: what to present to a server's upstream on behalf of one user. Every path
(tools, resources, prompts, completions, OpenAPI tools, admin test endpoints) asks here, so they cannot
drift apart. A per-user server never falls back to a shared or another user's credential: without the
user's own credential the answer is NotConnectedError with the URL where they connect."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Literal

from sqlalchemy import select

from mcp_hub.credentials.oauth import connect_url, oauth_access_token, oauth_token_rejected
from mcp_hub.credentials.store import find_credential, read_payload
from mcp_hub.errors import ConfigError, NotConnectedError, NotFoundError
from mcp_hub.runtime import Hub
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import PER_USER_AUTH_TYPES, AuthType, ByokMode, CredentialType, McpServer
from mcp_hub.store.servers import read_secrets
from mcp_hub.upstream.credentials import ResolvedCredential, StaticCredentialResolver
from mcp_hub.upstream.target import UpstreamTarget

AuthKind = Literal["none", "static", "byok", "oauth2"]
DEFAULT_BYOK_HEADER = "Authorization"
DEFAULT_BYOK_TEMPLATE = "Bearer {key}"


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class UpstreamAuth:
    """What to present upstream. Secrets live only in `headers`, `query` and `env` (never in repr).
    `identity` keys an upstream session pool: it differs between users and changes whenever the secret
    material changes (a refreshed token), and it never contains the secret itself."""

    kind: AuthKind
    identity: str
    credential_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=_empty, repr=False)
    query: Mapping[str, str] = field(default_factory=_empty, repr=False)
    env: Mapping[str, str] = field(default_factory=_empty, repr=False)
    # For OAuth tokens: what to do when the upstream answers 401 to this one (refresh, or "reconnect").
    on_rejected: Callable[[], Awaitable[None]] | None = field(default=None, repr=False, compare=False)
    # The BYOK key or OAuth2 access token itself, for callers that place it per their own rules
    # (OpenAPI security schemes); None for shared credentials.
    secret: str | None = field(default=None, repr=False)


def _fingerprint(*material: object) -> str:
    return hashlib.sha256(json.dumps(material, separators=(",", ":"), default=str).encode()).hexdigest()[:16]


def byok_delivery(server: McpServer, key: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(headers, query, env) carrying a BYOK key the way the server's settings say."""
    mode = server.byok_mode or ByokMode.header.value
    if mode == ByokMode.header.value:
        template = server.byok_template or DEFAULT_BYOK_TEMPLATE
        # str.replace, not str.format: a template must not be able to reach attributes of the key.
        return {server.byok_name or DEFAULT_BYOK_HEADER: template.replace("{key}", key)}, {}, {}
    if not server.byok_name:
        raise ConfigError(
            f"server {server.name!r} delivers BYOK keys by {mode} but names no parameter (byok_name)"
        )
    if mode == ByokMode.query.value:
        return {}, {server.byok_name: key}, {}
    if mode == ByokMode.env.value:
        return {}, {}, {server.byok_name: key}
    raise ConfigError(f"server {server.name!r} has an unknown byok_mode {mode!r}")


def not_connected(hub: Hub, server: McpServer) -> NotConnectedError:
    url = connect_url(hub, server.id)
    return NotConnectedError(
        f"you have not connected your account for {server.name!r}: connect it at {url}",
        server_id=server.id,
        connect_url=url,
    )


async def resolve(hub: Hub, user_id: str | None, server: McpServer | str) -> UpstreamAuth:
    """The upstream auth for `user_id` on `server` (a row, or its id).

    - `none` / `static` servers: the server's own headers and env, shared by every caller.
    - `byok`: the user's key, as a header (template), query parameter or stdio env variable.
    - `oauth2`: `Authorization: Bearer <the user's access token>`, refreshed first when it is about to
      expire (one refresh per credential, even across hub processes on PostgreSQL).

    Raises NotConnectedError (no credential of the user's own; also for anonymous callers of a per-user
    server), NeedsReconnectError (the grant was revoked upstream), NotFoundError (unknown server id),
    UpstreamError (the authorization server failed other than by revoking the grant)."""
    async with transaction(hub.sessions) as session:
        if isinstance(server, str):
            row = await session.scalar(select(McpServer).where(McpServer.id == server))
            if row is None:
                raise NotFoundError(f"no server with id {server!r}")
            server = row
        credential = (
            await find_credential(session, user_id, server.id)
            if user_id is not None and server.auth_type in PER_USER_AUTH_TYPES
            else None
        )
    shared = read_secrets(hub.keyring, server)
    if server.auth_type not in PER_USER_AUTH_TYPES:
        kind: AuthKind = "static" if server.auth_type == AuthType.static.value else "none"
        return UpstreamAuth(
            kind=kind,
            identity="static",
            headers=MappingProxyType(dict(shared.headers)),
            env=MappingProxyType(dict(shared.env)),
        )
    if credential is None or credential.type != server.auth_type:
        raise not_connected(hub, server)
    if credential.type == CredentialType.byok.value:
        secret = str(read_payload(hub.keyring, credential)["key"])
        headers, query, env = byok_delivery(server, secret)
        on_rejected = None
    else:
        secret, credential = await oauth_access_token(hub, server, credential)
        headers, query, env = {"Authorization": f"Bearer {secret}"}, {}, {}
        on_rejected = partial(oauth_token_rejected, hub, server, credential.id, credential.updated_at)
    # updated_at changes with every new key or refreshed token; no secret-derived value goes in here.
    version = _fingerprint(credential.updated_at)
    return UpstreamAuth(
        kind="byok" if credential.type == CredentialType.byok.value else "oauth2",
        identity=f"user:{credential.user_id}:{credential.id}:{version}",
        credential_id=credential.id,
        # The user's own credential wins over a shared header of the same name.
        headers=MappingProxyType({**shared.headers, **headers}),
        query=MappingProxyType(query),
        env=MappingProxyType({**shared.env, **env}),
        on_rejected=on_rejected,
        secret=secret,
    )


class UserCredentialResolver:
    """Plugs `resolve` into the upstream pool's seam, so every gateway path presents the calling user's
    own credential (or the server's shared one, for servers that are not per-user)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._shared = StaticCredentialResolver()

    async def resolve(self, user_id: str | None, target: UpstreamTarget) -> ResolvedCredential:
        if not target.per_user:
            # The target already carries the row's decrypted shared headers and env: the pool asks on
            # every call, and a database round trip here would sit on the hot path for nothing.
            return await self._shared.resolve(user_id, target)
        auth = await resolve(self._hub, user_id, target.server_id)
        return ResolvedCredential(
            identity=auth.identity,
            headers=dict(auth.headers),
            env=dict(auth.env),
            query=dict(auth.query),
            on_rejected=auth.on_rejected,
            secret=auth.secret,
            secret_kind="oauth2" if auth.kind == "oauth2" else "byok",
        )
