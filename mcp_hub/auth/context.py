"""Who is calling an MCP endpoint, and what they may reach.

`extract_mcp_auth_context(request)` runs once per HTTP request on `/mcp`, `/mcp/{server}` and the SSE
endpoints, before the SDK transport sees the request. `set_auth_context` attaches the result to that
request's ASGI scope. Handlers read it back from the request that carried their message
(`ctx.request`), never from a contextvar: in stateful streamable HTTP the SDK runs handlers in the
session's own task, where a contextvar set by a later HTTP request of another user is not visible, and
one set by an earlier request would be stale.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from mcp_hub.auth.keys import Caller, authenticate_key, bearer_token, hash_api_key
from mcp_hub.authserver.metadata import canonical_resource
from mcp_hub.authserver.tokens import authenticate_access_token, is_access_token, revocations
from mcp_hub.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from mcp_hub.runtime import Hub
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import Access, McpServer, McpServerUser

log = logging.getLogger(__name__)

HUB_KEY_HEADER = "x-mcp-hub-key"
SCOPE_KEY = "mcp_hub.auth"
# Servers are few and admin-managed; the bound only keeps a misconfigured table from being read whole.
MAX_SERVERS = 1000


@dataclass(frozen=True)
class AuthContext:
    """The outcome of authenticating one MCP request.

    `servers` are the enabled servers this caller may use, by name (on `/mcp/{server}` only that one).
    `caller` is None for a keyless request, which can only reach public servers."""

    caller: Caller | None
    servers: dict[str, McpServer] = field(default_factory=dict)
    path_server: str | None = None

    @property
    def user_id(self) -> str | None:
        return self.caller.user_id if self.caller else None

    @property
    def principal(self) -> str:
        """Stable identity of the presented credential (downstream sessions are bound to it)."""
        return self.caller.key_id if self.caller else "anonymous"

    def server_by_alias(self, alias: str) -> McpServer | None:
        for server in self.servers.values():
            if server.alias == alias:
                return server
        return None

    def tool_allowed(self, server: McpServer, tool: str) -> bool:
        if server.allowed_tools is not None and tool not in server.allowed_tools:
            return False
        key_tools = self.caller.allowed_tools if self.caller else None
        return key_tools is None or tool in key_tools or f"{server.name}.{tool}" in key_tools


def presented_key(connection: HTTPConnection) -> str | None:
    token = bearer_token(connection.headers.get("authorization"))
    if token is not None:
        return token
    value = connection.headers.get(HUB_KEY_HEADER, "").strip()
    return value or None


def server_visible_to(server: McpServer, caller: Caller | None, listed_for_user: set[str]) -> bool:
    """The access rule of one enabled server for one caller."""
    if (
        caller is not None
        and caller.allowed_servers is not None
        and server.name not in caller.allowed_servers
    ):
        return False
    if server.access == Access.public.value:
        return True
    if caller is None:
        return False
    if server.access == Access.all_users.value:
        return True
    return server.id in listed_for_user


async def _listed_server_ids(session: AsyncSession, user_id: str, server_ids: Iterable[str]) -> set[str]:
    ids = list(server_ids)
    if not ids:
        return set()
    rows = await session.scalars(
        select(McpServerUser.server_id).where(
            McpServerUser.user_id == user_id, McpServerUser.server_id.in_(ids)
        )
    )
    return set(rows.all())


async def _enabled_servers(session: AsyncSession, name: str | None) -> list[McpServer]:
    query = select(McpServer).where(McpServer.enabled.is_(True)).order_by(McpServer.name).limit(MAX_SERVERS)
    if name is not None:
        query = query.where(McpServer.name == name)
    servers = list((await session.scalars(query)).all())
    if name is None and len(servers) == MAX_SERVERS:
        log.warning(
            "more than %d enabled servers: only the first %d are served on /mcp", MAX_SERVERS, MAX_SERVERS
        )
    return servers


async def authenticate_bearer(session: AsyncSession, presented: str, hub: Hub) -> Caller:
    """A hub API key or an access token the hub issued to an MCP client (OAuth): both resolve to the
    same user, to whom the same access rules then apply. The prefix says which one it is."""
    if is_access_token(presented):
        return await authenticate_access_token(session, presented, resource=canonical_resource(hub.settings))
    return await authenticate_key(session, presented)


async def servers_for_caller(session: AsyncSession, caller: Caller) -> list[McpServer]:
    """The enabled servers this caller may use (the rule of `/mcp`), by name."""
    servers = await _enabled_servers(session, None)
    listed = await _listed_server_ids(session, caller.user_id, (s.id for s in servers))
    return [server for server in servers if server_visible_to(server, caller, listed)]


async def extract_mcp_auth_context(request: HTTPConnection, hub: Hub | None = None) -> AuthContext:
    """Authenticates the hub key or OAuth access token (`Authorization: Bearer`, or a key in
    `x-mcp-hub-key`) and works out which servers
    and tools it may use. The path parameter `server` names the one server of `/mcp/{server}`.

    Raises AuthenticationError (401) for a bad key, or no key where one is needed; NotFoundError (404)
    for an unknown or disabled server; PermissionDeniedError (403) for a server the key may not use."""
    hub = hub or request.app.state.hub
    path_server: str | None = request.path_params.get("server")
    presented = presented_key(request)
    async with transaction(hub.sessions) as session:
        caller = await authenticate_bearer(session, presented, hub) if presented is not None else None
        servers = await _enabled_servers(session, path_server)
        listed = (
            await _listed_server_ids(session, caller.user_id, (s.id for s in servers)) if caller else set()
        )
    if path_server is not None and not servers:
        if caller is None:
            # Do not tell an anonymous caller which server names exist.
            raise AuthenticationError("send a hub API key as `Authorization: Bearer <key>`")
        raise NotFoundError(f"no enabled MCP server named {path_server!r}")
    visible = {server.name: server for server in servers if server_visible_to(server, caller, listed)}
    if caller is None and (path_server is None or not visible):
        raise AuthenticationError("send a hub API key as `Authorization: Bearer <key>`")
    if path_server is not None and not visible:
        raise PermissionDeniedError(f"this API key may not use the server {path_server!r}")
    return AuthContext(caller=caller, servers=visible, path_server=path_server)


_access_changes = 0


def access_changed() -> None:
    """An admin changed servers, users or keys in this process (called once the change is committed):
    the auth cache starts afresh, so a new server or a revoked key applies on the next MCP request here
    (other hub processes still wait out their TTL)."""
    global _access_changes
    _access_changes += 1


def access_generation() -> tuple[int, int]:
    """Changes when this process revokes an OAuth grant or an admin changes access: whatever was decided
    about a caller before may no longer hold (long-lived listen streams check it)."""
    return revocations(), _access_changes


class AuthCache:
    """Recent successful AuthContexts, by (hash of the presented key, path server), for `ttl` seconds.

    Authenticating costs a database transaction per MCP request, more than proxying the message itself;
    a short TTL removes it from the hot path. The price: revoking a key, disabling a server or changing
    an allowlist takes up to `ttl` seconds to apply to MCP requests. `ttl=0` turns caching off. Failures
    are never cached. OAuth grants revoked by this process (`/revoke`, a replayed code or refresh token,
    a deleted client) and admin changes made through it (servers, users, keys) empty the cache at once:
    a client that revokes and retries must get its 401, an admin who adds a server must see it listed.

    Requests that miss the same entry while it is being read wait for that one read: when an entry
    expires under load, every connection of the caller misses it at once, and each reading it again
    cost a database transaction apiece (at 8 connections, about 8% of the hub's CPU on `/mcp/{server}`)."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str | None], tuple[float, AuthContext]] = {}
        self._reads: dict[tuple[str, str | None], asyncio.Task[AuthContext]] = {}
        self._generation = access_generation()

    async def authenticate(self, request: HTTPConnection, hub: Hub) -> AuthContext:
        if self.ttl <= 0:
            return await extract_mcp_auth_context(request, hub)
        presented = presented_key(request)
        key = (hash_api_key(presented) if presented is not None else "", request.path_params.get("server"))
        generation = access_generation()
        if generation != self._generation:
            self._generation = generation
            self._entries = {}
            self._reads = {}  # a read begun before the change may be stale: later requests read afresh
        cached = self._entries.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        read = self._reads.get(key)
        if read is None:
            read = asyncio.ensure_future(self._read(request, hub, key, generation))
            read.add_done_callback(_retrieved)
            self._reads[key] = read
        # Shielded: one waiting request that goes away does not cancel the read the others wait for.
        return await asyncio.shield(read)

    async def _read(
        self, request: HTTPConnection, hub: Hub, key: tuple[str, str | None], generation: tuple[int, int]
    ) -> AuthContext:
        began = time.monotonic()
        try:
            auth = await extract_mcp_auth_context(request, hub)
        finally:
            if self._reads.get(key) is asyncio.current_task():
                del self._reads[key]
        if access_generation() != generation:
            # A revocation or an access change committed while this was being read: it may be stale.
            return auth
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if began - v[0] < self.ttl}
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (began, auth)
        return auth


def _retrieved(read: asyncio.Task[AuthContext]) -> None:
    """Marks a shared read's failure as seen: every request that waited for it has it, and when all of
    them left first, nobody is left to be told (asyncio would log it as never retrieved)."""
    if not read.cancelled():
        read.exception()


def set_auth_context(scope: MutableMapping[str, Any], auth: AuthContext) -> None:
    """Attaches `auth` to the request's scope (where handlers find it through `ctx.request`) and binds
    the SDK's session ownership to the presented key, so one key's MCP session id is useless to
    another key (the SDK answers 404 as if the session did not exist)."""
    scope[SCOPE_KEY] = auth
    scope["user"] = AuthenticatedUser(
        AccessToken(token=auth.principal, client_id=auth.principal, scopes=[], subject=auth.user_id)
    )


def auth_context_of(request: Any) -> AuthContext | None:
    """The AuthContext attached to an HTTP request (a Starlette Request or an ASGI scope)."""
    scope = getattr(request, "scope", request)
    if isinstance(scope, MutableMapping):
        auth = scope.get(SCOPE_KEY)
        if isinstance(auth, AuthContext):
            return auth
    return None
