"""The hub's own MCP server: handlers that aggregate (on `/mcp`) or pass through (on `/mcp/{server}`)
the upstreams a caller may use.

Every handler starts from the AuthContext attached to the HTTP request that carried its message
(`ctx.request`), so the right user is seen even when many users' sessions run at once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.server.connection import allowed_log_levels
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.inbound import MCP_PARAM_HEADER_PREFIX, validate_mcp_param_headers
from mcp.shared.message import ServerMessageMetadata
from mcp_types.methods import serialize_server_result, validate_client_request
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, TypeAdapter, ValidationError

from mcp_hub.auth.context import AuthContext, access_generation, auth_context_of
from mcp_hub.errors import HubError, NotConnectedError, UpstreamError, UpstreamTimeoutError
from mcp_hub.gateway.connect import (
    CONNECT_TOOL,
    URL_ELICITATION_ERROR_VERSIONS,
    connect_elicitation,
    connect_result,
    connect_tool,
    connect_url_of,
    elicited_connect_result,
    is_connect_tool,
    not_connected_error,
    supports_url_elicitation,
    url_elicitation_required,
)
from mcp_hub.gateway.listen import CHANGE_NOTIFICATIONS, ChangeKind, ChangeListeners
from mcp_hub.gateway.naming import Entry, build_catalog, public_uri, split_public_uri
from mcp_hub.runtime import Hub
from mcp_hub.store.models import McpServer
from mcp_hub.upstream.credentials import ResolvedCredential
from mcp_hub.upstream.pool import ForwardingSession, PooledSession, PoolKey, UpstreamPool, forwardable
from mcp_hub.upstream.session import Era, era_of, forwarded_meta
from mcp_hub.upstream.target import UpstreamTarget, target_from_row

log = logging.getLogger(__name__)
# Header names arrive lowercased (ASGI).
MCP_PARAM_PREFIX = MCP_PARAM_HEADER_PREFIX.lower()
# How long a closed listen stream may take to unsubscribe its resources upstream.
RELEASE_DEADLINE_SECONDS = 10.0
# Resources one listen request may subscribe (the rest are left out of its acknowledgment).
MAX_LISTEN_RESOURCES = 64

T = TypeVar("T")
ListKind = str  # "tools" | "resources" | "templates" | "prompts"

MAX_PAGES = 100
# Memoized tool catalogs (one per distinct set of servers, allowlists and listings in use).
MAX_CATALOGS = 256
LIST_CHANGED_COALESCE_SECONDS = 0.2
DOWNSTREAM_FORGET_SECONDS = 3600.0
SESSION_HEADER = "mcp-session-id"
SESSIONLESS_PREFIX = "request:"

Ctx = ServerRequestContext[Any, Any]


@dataclass(frozen=True)
class GatewaySettings:
    list_deadline_seconds: float = 5.0
    listing_cache_seconds: float = 300.0
    default_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class ForwardRoute:
    """Where a `tools/call` on `/mcp` goes as plain HTTP (`Gateway.forward_route`)."""

    server: McpServer
    target: UpstreamTarget
    credential: ResolvedCredential
    tool_name: str  # the upstream's own name
    session: ForwardingSession  # the upstream session it joins


@dataclass
class _Listing:
    items: list[Any]
    fetched_at: float


@dataclass
class _Downstream:
    """What the hub remembers about one downstream MCP session, to send it unsolicited notifications."""

    session: ServerSession
    aggregate: bool
    aliases: dict[str, str] = field(default_factory=dict)  # server id -> alias
    subscriptions: set[tuple[str, str]] = field(default_factory=set)  # (server id, upstream uri)
    pending: set[ChangeKind] = field(default_factory=set)
    flush_scheduled: bool = False
    last_seen: float = field(default_factory=time.monotonic)


def owner_of(ctx: Ctx) -> str:
    """The downstream session a request belongs to: the streamable-HTTP session id, the SSE session id,
    or (sessionless) the request itself."""
    request = ctx.request
    headers = getattr(request, "headers", None)
    if headers is not None:
        session_id = headers.get(SESSION_HEADER)
        if session_id:
            return f"shttp:{session_id}"
    query = getattr(request, "query_params", None)
    if query is not None and query.get("session_id"):
        return f"sse:{query.get('session_id')}"
    return f"{SESSIONLESS_PREFIX}{id(ctx.session)}"


class CallRelay:
    """Relays an upstream's requests and log messages about one call to the client that made it, on
    that call's own response stream."""

    def __init__(self, ctx: Ctx, owner: str) -> None:
        self._ctx = ctx
        self._owner = owner

    @property
    def owner(self) -> str:
        return self._owner

    def _metadata(self) -> ServerMessageMetadata:
        return ServerMessageMetadata(related_request_id=self._ctx.request_id)

    async def _ask(self, request: types.ServerRequest, result_type: type[T]) -> T | types.ErrorData:
        try:
            return await self._ctx.session.send_request(request, result_type, metadata=self._metadata())  # type: ignore[type-var]
        except MCPError as exc:
            return exc.error
        except NoBackChannelError:
            return types.ErrorData(
                code=types.INVALID_REQUEST, message="the client cannot receive requests here"
            )
        except ValidationError:
            return types.ErrorData(
                code=types.INTERNAL_ERROR, message="the client answered with an invalid result"
            )

    async def create_message(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        return await self._ask(types.CreateMessageRequest(params=params), types.CreateMessageResult)

    async def elicit(self, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        return await self._ask(types.ElicitRequest(params=params), types.ElicitResult)

    async def list_roots(self) -> types.ListRootsResult | types.ErrorData:
        return await self._ask(types.ListRootsRequest(), types.ListRootsResult)

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        # 2026-07-28 clients opt in to log messages per request (and per level); older ones get all.
        if params.level not in allowed_log_levels(self._ctx.protocol_version, self._ctx.meta):
            return
        try:
            await self._ctx.session.send_notification(
                types.LoggingMessageNotification(params=params), related_request_id=self._ctx.request_id
            )
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            log.debug("log message for a client that is gone")


class HubServer(Server[Any]):
    """Advertises list_changed for tools, resources and prompts: the hub relays the upstreams' ones
    (on 2026-07-28 through `subscriptions/listen`, which also carries resource subscriptions)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options
            or NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True),
            experimental_capabilities,
            extensions,
        )


class Gateway:
    """Handlers of the hub's MCP server, and the state they share (listing caches, downstream sessions)."""

    def __init__(self, hub: Hub, pool: UpstreamPool, settings: GatewaySettings) -> None:
        self.hub = hub
        self.pool = pool
        self.settings = settings
        self._targets: dict[str, tuple[datetime, UpstreamTarget]] = {}
        self._listings: dict[tuple[ListKind, PoolKey], _Listing] = {}
        self._catalogs: dict[Any, tuple[dict[str, tuple[Entry, Any]], list[Any]]] = {}
        self._public_tool_lists: dict[int, tuple[dict[str, tuple[Entry, Any]], list[dict[str, Any]]]] = {}
        self._wire_tool_lists: dict[tuple[int, str], tuple[dict[str, tuple[Entry, Any]], dict[str, Any]]] = {}
        self._downstream: dict[str, _Downstream] = {}
        self._upstream_subscribers: dict[tuple[PoolKey, str], set[str]] = {}
        self.listeners = ChangeListeners()
        self._tg: anyio.abc.TaskGroup | None = None
        pool.sink = self._on_upstream_notification
        pool.on_open = self._restore_subscriptions
        self.server = HubServer(
            "mcp-hub",
            version="0.1.0",
            instructions="mcp-hub: every MCP server your organisation connected, through one endpoint.",
            on_list_tools=self._list_tools,
            on_call_tool=_asking_to_connect(self._call_tool),
            on_list_resources=_asking_to_connect(self._list_resources),
            on_list_resource_templates=_asking_to_connect(self._list_resource_templates),
            on_read_resource=_asking_to_connect(self._read_resource),
            on_subscribe_resource=_asking_to_connect(self._subscribe),
            on_unsubscribe_resource=self._unsubscribe,
            on_list_prompts=_asking_to_connect(self._list_prompts),
            on_get_prompt=_asking_to_connect(self._get_prompt),
            on_completion=_asking_to_connect(self._complete),
            # Without this the SDK checks a 2026-07-28 call's Mcp-Param headers against a whole
            # `tools/list` run through the hub's handler on every call; `_call_tool` checks them
            # against the tool it routes to instead (`_check_param_headers`).
            get_tool_input_schema=_schema_checked_by_call_tool,
        )
        self.server.middleware.append(self._listing_shortcut)
        # Registered apart from the constructor: the SDK warns that logging is deprecated in 2026-07-28,
        # but clients on 2025 revisions still use it and the hub relays it.
        self.server.add_request_handler(
            "logging/setLevel", types.SetLevelRequestParams, self._set_logging_level
        )
        self.server.add_request_handler(
            "subscriptions/listen", types.SubscriptionsListenRequestParams, self._listen
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Gateway]:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    # --- context --------------------------------------------------------------------------------------

    def _auth(self, ctx: Ctx) -> AuthContext:
        auth = auth_context_of(ctx.request)
        if auth is None:
            # Only reachable if a transport was mounted without the auth wrapper: fail closed.
            raise MCPError(code=types.INVALID_REQUEST, message="request is not authenticated")
        return auth

    def target_of(self, server: McpServer) -> UpstreamTarget:
        """The upstream target of a server row (secrets decrypted once per row version)."""
        return self._target(server)

    def _target(self, server: McpServer) -> UpstreamTarget:
        cached = self._targets.get(server.id)
        if cached is not None and cached[0] == server.updated_at:
            return cached[1]
        try:
            target = target_from_row(self.hub.keyring, server, self.settings.default_timeout_seconds)
        except HubError as exc:
            # e.g. its secrets were written under a key that is no longer configured: this server
            # fails, the others are still served.
            log.error("upstream %s: %s", server.name, exc.message)
            raise MCPError(
                code=types.INTERNAL_ERROR, message=f"server {server.name!r} is misconfigured"
            ) from None
        self._targets[server.id] = (server.updated_at, target)
        return target

    def _touch(self, ctx: Ctx, auth: AuthContext, servers: Iterable[McpServer]) -> _Downstream:
        owner = owner_of(ctx)
        downstream = self._downstream.get(owner)
        if downstream is None:
            downstream = _Downstream(session=ctx.session, aggregate=auth.path_server is None)
            # A sessionless request (2026-07-28, stateless HTTP) has no channel to notify later, so
            # remembering it would only grow this map by one entry per request.
            if not owner.startswith(SESSIONLESS_PREFIX):
                self._downstream[owner] = downstream
                self._forget_stale_downstream()
        downstream.session = ctx.session
        downstream.last_seen = time.monotonic()
        for server in servers:
            downstream.aliases[server.id] = server.alias
        return downstream

    def _forget_stale_downstream(self) -> None:
        cutoff = time.monotonic() - DOWNSTREAM_FORGET_SECONDS
        for owner, downstream in list(self._downstream.items()):
            if downstream.last_seen < cutoff:
                del self._downstream[owner]

    # --- upstream access ---------------------------------------------------------------------------------

    async def _upstream(
        self,
        target: UpstreamTarget,
        auth: AuthContext,
        operation: Callable[[ClientSession], Awaitable[T]],
        *,
        relay: CallRelay | None = None,
        deadline_seconds: float | None = None,
        era: Era = "handshake",
    ) -> T:
        try:
            return await self.pool.call(
                target, auth.user_id, operation, relay=relay, deadline_seconds=deadline_seconds, era=era
            )
        except UpstreamTimeoutError as exc:
            raise MCPError(code=types.REQUEST_TIMEOUT, message=exc.message) from None
        except UpstreamError as exc:
            raise MCPError(code=types.INTERNAL_ERROR, message=exc.message) from None
        except NotConnectedError as exc:
            raise not_connected_error(exc) from None
        except HubError as exc:
            # From the credential resolver. The message says what to do; it never carries a secret.
            raise MCPError(code=types.INVALID_REQUEST, message=exc.message) from None

    async def _key_for(self, target: UpstreamTarget, auth: AuthContext, era: Era) -> PoolKey:
        try:
            return await self.pool.key_for(target, auth.user_id, era)
        except NotConnectedError as exc:
            raise not_connected_error(exc) from None
        except HubError as exc:
            raise MCPError(code=types.INVALID_REQUEST, message=exc.message) from None

    async def _fetch(
        self, kind: ListKind, server: McpServer, auth: AuthContext, era: Era, *, aggregate: bool
    ) -> list[Any]:
        target = self._target(server)
        deadline = min(target.timeout_seconds, self.settings.list_deadline_seconds) if aggregate else None
        items = await self._upstream(target, auth, _LISTERS[kind], deadline_seconds=deadline, era=era)
        if kind == "tools":
            self.pool.health.listed_tools(server.id, len(items))
        key = await self._key_for(target, auth, era)
        self._listings[(kind, key)] = _Listing(items, time.monotonic())
        return items

    async def _cached(
        self, kind: ListKind, server: McpServer, auth: AuthContext, era: Era
    ) -> list[Any] | None:
        key = await self._key_for(self._target(server), auth, era)
        listing = self._listings.get((kind, key))
        if listing is None or time.monotonic() - listing.fetched_at > self.settings.listing_cache_seconds:
            return None
        return listing.items

    async def _gather(
        self,
        kind: ListKind,
        servers: Sequence[McpServer],
        auth: AuthContext,
        era: Era,
        *,
        use_cache: bool,
    ) -> dict[str, list[Any]]:
        """Listings of every server, fetched concurrently; an upstream that fails or misses the listing
        deadline is logged and left out (fail open)."""
        results: dict[str, list[Any]] = {}
        missing: list[McpServer] = []
        # Cached listings first, without a task each: every tools/call on /mcp routes through here, and
        # a task group per call cost more than the lookups.
        for server in servers:
            try:
                cached = await self._cached(kind, server, auth, era) if use_cache else None
            except MCPError:
                cached = None  # reported by `one` below, which meets the same error
            if cached is not None:
                results[server.id] = cached
            else:
                missing.append(server)
        if not missing:
            return results

        async def one(server: McpServer) -> None:
            try:
                pending = self.pool.restart_pending(await self._key_for(self._target(server), auth, era))
                if pending > 0:
                    # It failed a moment ago: waiting for it would hold up every other upstream's answer.
                    log.warning(
                        "listing %s: upstream %s skipped, retried in %.1fs", kind, server.name, pending
                    )
                    return
                results[server.id] = await self._fetch(kind, server, auth, era, aggregate=True)
            except MCPError as exc:
                url = connect_url_of(exc)
                if url is not None:
                    if kind == "tools":
                        results[server.id] = [connect_tool(server, url)]
                    return
                log.warning("listing %s of upstream %s failed: %s", kind, server.name, exc.message)

        async with anyio.create_task_group() as tg:
            for server in missing:
                tg.start_soon(one, server)
        return results

    def _single(self, auth: AuthContext) -> McpServer | None:
        """The server of `/mcp/{server}`; None on the aggregate endpoint."""
        if auth.path_server is None:
            return None
        return auth.servers[auth.path_server]

    # --- tools ---------------------------------------------------------------------------------------

    def _tool_catalog(
        self, auth: AuthContext, listings: dict[str, list[Any]]
    ) -> dict[str, tuple[Entry, Any]]:
        """Public name -> (entry, upstream tool), memoized: every `tools/call` on `/mcp` routes through
        it, and rebuilding it costs time in proportion to every tool of every server. The memo key names
        the listing lists themselves (they are replaced, never changed, when an upstream is listed
        again) and everything the allowlists depend on; the entry keeps those lists alive, so their ids
        cannot be reused while it exists."""
        key_tools = auth.caller.allowed_tools if auth.caller else None
        memo_key = (
            tuple(
                (
                    s.id,
                    s.alias,
                    s.name,
                    None if s.allowed_tools is None else tuple(s.allowed_tools),
                    id(listings.get(s.id)),
                )
                for s in auth.servers.values()
            ),
            None if key_tools is None else tuple(key_tools),
        )
        memo = self._catalogs.get(memo_key)
        if memo is not None:
            return memo[0]
        catalog = self._build_tool_catalog(auth, listings)
        if len(self._catalogs) >= MAX_CATALOGS:
            self._catalogs.pop(next(iter(self._catalogs)))
        self._catalogs[memo_key] = (catalog, [listings.get(s.id) for s in auth.servers.values()])
        return catalog

    def _build_tool_catalog(
        self, auth: AuthContext, listings: dict[str, list[Any]]
    ) -> dict[str, tuple[Entry, Any]]:
        entries: dict[Entry, Any] = {}
        for server in auth.servers.values():
            for tool in listings.get(server.id, []):
                if is_connect_tool(tool) or auth.tool_allowed(server, tool.name):
                    entries[Entry(server.id, server.alias, tool.name)] = tool
        return {name: (entry, entries[entry]) for name, entry in build_catalog(entries).items()}

    async def _list_tools(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        auth = self._auth(ctx)
        single = self._single(auth)
        if single is not None:
            self._touch(ctx, auth, [single])
            try:
                tools = await self._fetch(
                    "tools", single, auth, era_of(ctx.protocol_version), aggregate=False
                )
            except MCPError as exc:
                url = connect_url_of(exc)
                if url is None:
                    raise
                return types.ListToolsResult(tools=[connect_tool(single, url)])
            return types.ListToolsResult(
                tools=[tool for tool in tools if auth.tool_allowed(single, tool.name)]
            )
        catalog = await self._aggregate_catalog(ctx, auth)
        return cast(types.ListToolsResult, self._tool_listing(catalog))

    async def _aggregate_catalog(self, ctx: Ctx, auth: AuthContext) -> dict[str, tuple[Entry, Any]]:
        """The tool catalog of every server the caller may use on `/mcp`."""
        servers = list(auth.servers.values())
        self._touch(ctx, auth, servers)
        # Listings come from the cache: it is per upstream session (pool key), dropped when the upstream
        # says its tools changed (list_changed) or a new session to it opens, and otherwise kept for
        # `listing_cache_seconds`. Only upstreams missing from it are asked, all at once.
        listings = await self._gather("tools", servers, auth, era_of(ctx.protocol_version), use_cache=True)
        return self._tool_catalog(auth, listings)

    def _tool_listing(self, catalog: dict[str, tuple[Entry, Any]]) -> dict[str, Any]:
        # Handed to the SDK in its wire form (its runner accepts a mapping as a handler's result): with
        # a thousand tools, dumping the models again on every listing was the largest part of it.
        # The envelope (result type, cache fields of newer revisions) is the model's own defaults.
        envelope = types.ListToolsResult(tools=[]).model_dump(by_alias=True, mode="json", exclude_none=True)
        return {**envelope, "tools": self._public_tools(catalog)}

    async def _listing_shortcut(self, ctx: Ctx, call_next: CallNext) -> HandlerResult:
        """Server middleware: an aggregate `tools/list` that `_wire_tool_listing` can answer gets that
        answer; every other message goes through the SDK's runner as usual."""
        if ctx.method == "tools/list" and ctx.request_id is not None:
            wire = await self._wire_tool_listing(ctx)
            if wire is not None:
                return wire
        return await call_next(ctx)

    async def _wire_tool_listing(self, ctx: Ctx) -> dict[str, Any] | None:
        """An aggregate `tools/list` of a handshake-revision session in its final wire form, memoized
        per catalog and revision. The SDK's runner validates and dumps every result against the
        revision's schema (the "sieve"); for a thousand tools that was three quarters of the hub's
        time per listing, for a result that only changes with the catalog. So the sieve runs once per
        catalog here, the SDK's own function, and a short-circuiting middleware's result is passed on
        as it is (the runner's documented contract). None, for the runner to answer as usual, where
        its checks could say otherwise: a 2026-07-28 request (its results are stamped), a session
        not initialized yet, params it would refuse, `/mcp/{server}`, a result it would refuse."""
        version = ctx.protocol_version
        if version in MODERN_PROTOCOL_VERSIONS or ctx.session.client_params is None:
            return None
        try:
            # The params check the runner makes (a cursor that is a string, a well-formed `_meta`).
            validate_client_request("tools/list", version, ctx.params or {})
        except (ValueError, KeyError, ValidationError):
            return None
        auth = self._auth(ctx)
        if auth.path_server is not None:
            return None
        catalog = await self._aggregate_catalog(ctx, auth)
        key = (id(catalog), version)
        cached = self._wire_tool_lists.pop(key, None)
        if cached is not None and cached[0] is catalog:
            self._wire_tool_lists[key] = cached  # most recently used last: evicted last
            return cached[1]
        if any(entry.name == CONNECT_TOOL for entry, _ in catalog.values()):
            # A server the caller has not connected lists a `connect` tool made afresh on every listing,
            # so its catalog is new each time: memoizing it would only push out everyone else's.
            return None
        try:
            wire = serialize_server_result("tools/list", version, self._tool_listing(catalog))
        except ValidationError:
            return None  # the runner reports an invalid result as the hub's error, not the client's
        if len(self._wire_tool_lists) >= MAX_CATALOGS:
            self._wire_tool_lists.pop(next(iter(self._wire_tool_lists)))
        self._wire_tool_lists[key] = (catalog, wire)
        return wire

    def _public_tools(self, catalog: dict[str, tuple[Entry, Any]]) -> list[dict[str, Any]]:
        """The catalog's tools under their public names, as wire dicts (memoized with the catalog)."""
        cached = self._public_tool_lists.get(id(catalog))
        if cached is not None and cached[0] is catalog:
            return cached[1]
        tools = [
            {**tool.model_dump(by_alias=True, mode="json", exclude_none=True), "name": name}
            for name, (_, tool) in catalog.items()
        ]
        if len(self._public_tool_lists) >= MAX_CATALOGS:
            self._public_tool_lists.pop(next(iter(self._public_tool_lists)))
        self._public_tool_lists[id(catalog)] = (catalog, tools)
        return tools

    async def _resolve_prompt(self, auth: AuthContext, era: Era, name: str) -> Entry | None:
        """The entry of a public prompt name (tools go through `_resolve_tool`)."""
        servers = list(auth.servers.values())
        for use_cache in (True, False):
            listings = await self._gather("prompts", servers, auth, era, use_cache=use_cache)
            entries = [Entry(s.id, s.alias, item.name) for s in servers for item in listings.get(s.id, [])]
            entry = build_catalog(entries).get(name)
            if entry is not None:
                return entry
        return None

    async def _resolve_tool(self, auth: AuthContext, era: Era, name: str) -> tuple[Entry, Any] | None:
        """The catalog entry of a public tool name, and the upstream tool it stands for."""
        servers = list(auth.servers.values())
        for use_cache in (True, False):
            listings = await self._gather("tools", servers, auth, era, use_cache=use_cache)
            found = self._tool_catalog(auth, listings).get(name)
            if found is not None:
                return found
        return None

    async def _route_tool(self, auth: AuthContext, era: Era, name: str) -> tuple[McpServer, str, Any | None]:
        """Server, upstream tool name, and the upstream tool where routing listed it (on `/mcp`; on
        `/mcp/{server}` the name is the upstream's own and nothing is listed)."""
        single = self._single(auth)
        if single is not None:
            if name != CONNECT_TOOL and not auth.tool_allowed(single, name):
                raise MCPError(
                    code=types.INVALID_PARAMS, message=f"Tool {name!r} is not allowed for this API key"
                )
            return single, name, None
        found = await self._resolve_tool(auth, era, name)
        if found is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}")
        entry, tool = found
        server = _server_by_id(auth, entry.server_id)
        # Checked again at call time: the listing may be older than a change of the allowlists.
        if entry.name != CONNECT_TOOL and not auth.tool_allowed(server, entry.name):
            raise MCPError(
                code=types.INVALID_PARAMS, message=f"Tool {name!r} is not allowed for this API key"
            )
        return server, entry.name, tool

    async def forward_route(
        self,
        auth: AuthContext,
        name: str,
        arguments: dict[str, Any],
        headers: Mapping[str, str],
        era: Era,
        owner: str | None = None,
    ) -> ForwardRoute | None:
        """Where a `tools/call` of `name` on `/mcp` may go as plain HTTP (see mcp_hub.gateway.
        call_forward): the listings are cached (the catalog is the one `_gather` would build), the
        tool is in it and allowed, a 2026-07-28 call's `Mcp-Param-*` headers agree with the
        arguments, and its upstream is a streamable-HTTP server with a session of the call's era up
        for this caller's credential. A handshake-era call names its downstream session (`owner`),
        which must be one the hub knows, on `/mcp`, whose client declared none of sampling,
        elicitation and roots (the upstream's requests in the middle of a call are then answered
        without it). None when any of that does not hold; the call is then served here, which also
        gives every error its usual answer. Never waits for an upstream."""
        downstream = self._downstream.get(owner) if owner is not None else None
        if owner is not None and (
            downstream is None or not downstream.aggregate or _asks_back(downstream.session)
        ):
            return None
        listings: dict[str, list[Any]] = {}
        try:
            for server in auth.servers.values():
                try:
                    cached = await self._cached("tools", server, auth, era)
                except MCPError as exc:
                    url = connect_url_of(exc)
                    if url is None:
                        return None
                    cached = [connect_tool(server, url)]  # as `_gather` lists a server not connected
                if cached is not None:
                    listings[server.id] = cached
                elif not self.pool.restart_pending(await self._key_for(self._target(server), auth, era)):
                    return None  # it would be listed first; an upstream in its restart backoff is left out
            found = self._tool_catalog(auth, listings).get(name)
            if found is None or found[0].name == CONNECT_TOOL:
                return None
            entry, tool = found  # the catalog holds only the tools the allowlists leave
            server = _server_by_id(auth, entry.server_id)
            if (
                era == "modern"
                and validate_mcp_param_headers(tool.input_schema, arguments, headers) is not None
            ):
                return None
            target = self._target(server)
            if not forwardable(target):
                return None
            credential = await self.pool.resolver.resolve(auth.user_id, target)
        except (MCPError, HubError):
            return None
        session = self.pool.forwarding_session(target, credential, era)
        if session is None:
            return None
        if downstream is not None:  # what `_touch` records for a call served here
            downstream.last_seen = time.monotonic()
            downstream.aliases[server.id] = server.alias
        return ForwardRoute(server, target, credential, entry.name, session)

    async def _check_param_headers(
        self,
        ctx: Ctx,
        auth: AuthContext,
        era: Era,
        server: McpServer,
        tool_name: str,
        tool: Any | None,
        params: types.CallToolRequestParams,
    ) -> None:
        """A 2026-07-28 call's `Mcp-Param-*` headers must agree with its arguments, as the tool's schema
        declares them (`x-mcp-header`): the check the SDK would make before dispatch, with the same
        error (HEADER_MISMATCH, HTTP 400), made against the upstream tool the call is routed to
        (`tool`, when routing listed it)."""
        headers = ctx.request.headers if ctx.request is not None else {}
        if not params.arguments and not any(name.startswith(MCP_PARAM_PREFIX) for name in headers):
            return
        if tool is None:
            # `/mcp/{server}`: the cached listing, or one within the listing deadline; unchecked if the
            # upstream cannot list, as the SDK does when its listing fails.
            listing = await self._cached("tools", server, auth, era)
            if listing is None:
                try:
                    listing = await self._fetch("tools", server, auth, era, aggregate=True)
                except MCPError as exc:
                    log.warning("Mcp-Param headers of a call to %s not checked: %s", server.name, exc.message)
                    return
            tool = next((item for item in listing if item.name == tool_name), None)
            if tool is None:
                return  # the upstream will answer for a tool it does not list
        rejection = validate_mcp_param_headers(tool.input_schema, params.arguments or {}, headers)
        if rejection is not None:
            raise MCPError(code=rejection.code, message=rejection.message, data=rejection.data)

    async def _call_tool(
        self, ctx: Ctx, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        auth = self._auth(ctx)
        era = era_of(ctx.protocol_version)
        server, tool_name, tool = await self._route_tool(auth, era, params.name)
        if era == "modern":
            await self._check_param_headers(ctx, auth, era, server, tool_name, tool, params)
        self._touch(ctx, auth, [server])
        if tool_name == CONNECT_TOOL:
            try:
                await self._key_for(self._target(server), auth, era)
            except MCPError as exc:
                url = connect_url_of(exc)
                if url is None:
                    raise
                return await _ask_to_connect(ctx, server, url)
            # Connected by now: a `connect` tool of the upstream's own is called as usual.
        relay = CallRelay(ctx, owner_of(ctx))
        wants_progress = _progress_token(ctx) is not None

        async def forward_progress(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        request = types.CallToolRequest(
            params=types.CallToolRequestParams(
                name=tool_name,
                arguments=params.arguments,
                input_responses=params.input_responses,
                request_state=params.request_state,
                _meta=forwarded_meta(ctx.protocol_version, ctx.meta),
            )
        )

        async def call(session: ClientSession) -> types.CallToolResult | types.InputRequiredResult:
            # Sent raw rather than with `call_tool`, which would also validate the result against the
            # tool's output schema: a proxy passes results on as they are and leaves that to the client.
            return await session.send_request(
                request, _CALL_TOOL_RESULT, progress_callback=forward_progress if wants_progress else None
            )

        result = _deliverable(
            ctx, await self._upstream(self._target(server), auth, call, relay=relay, era=era)
        )
        if auth.path_server is not None or isinstance(result, types.InputRequiredResult):
            return result
        return result.model_copy(
            update={"content": [_wrap_block(server.alias, block) for block in result.content]}
        )

    # --- resources -----------------------------------------------------------------------------------

    async def _list_resources(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        auth = self._auth(ctx)
        single = self._single(auth)
        if single is not None:
            self._touch(ctx, auth, [single])
            return types.ListResourcesResult(
                resources=await self._fetch(
                    "resources", single, auth, era_of(ctx.protocol_version), aggregate=False
                )
            )
        servers = list(auth.servers.values())
        self._touch(ctx, auth, servers)
        listings = await self._gather(
            "resources", servers, auth, era_of(ctx.protocol_version), use_cache=False
        )
        resources = [
            resource.model_copy(update={"uri": public_uri(server.alias, str(resource.uri))})
            for server in servers
            for resource in listings.get(server.id, [])
        ]
        return types.ListResourcesResult(resources=resources)

    async def _list_resource_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        auth = self._auth(ctx)
        single = self._single(auth)
        if single is not None:
            self._touch(ctx, auth, [single])
            templates = await self._fetch(
                "templates", single, auth, era_of(ctx.protocol_version), aggregate=False
            )
            return types.ListResourceTemplatesResult(resource_templates=templates)
        servers = list(auth.servers.values())
        self._touch(ctx, auth, servers)
        listings = await self._gather(
            "templates", servers, auth, era_of(ctx.protocol_version), use_cache=False
        )
        templates = [
            template.model_copy(update={"uri_template": public_uri(server.alias, template.uri_template)})
            for server in servers
            for template in listings.get(server.id, [])
        ]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    def _route_uri(self, auth: AuthContext, uri: str) -> tuple[McpServer, str]:
        single = self._single(auth)
        if single is not None:
            return single, uri
        parts = split_public_uri(uri)
        server = auth.server_by_alias(parts[0]) if parts else None
        if parts is None or server is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource: {uri}")
        return server, parts[1]

    async def _read_resource(
        self, ctx: Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        auth = self._auth(ctx)
        server, uri = self._route_uri(auth, str(params.uri))
        self._touch(ctx, auth, [server])

        request = types.ReadResourceRequest(
            params=types.ReadResourceRequestParams(
                uri=uri,
                input_responses=params.input_responses,
                request_state=params.request_state,
                _meta=forwarded_meta(ctx.protocol_version, ctx.meta),
            )
        )

        async def read(session: ClientSession) -> types.ReadResourceResult | types.InputRequiredResult:
            return await session.send_request(request, _READ_RESOURCE_RESULT)

        result = _deliverable(
            ctx,
            await self._upstream(
                self._target(server),
                auth,
                read,
                relay=CallRelay(ctx, owner_of(ctx)),
                era=era_of(ctx.protocol_version),
            ),
        )
        if auth.path_server is not None or isinstance(result, types.InputRequiredResult):
            return result
        contents = [
            item.model_copy(update={"uri": public_uri(server.alias, str(item.uri))})
            for item in result.contents
        ]
        return result.model_copy(update={"contents": contents})

    async def _subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        auth = self._auth(ctx)
        server, uri = self._route_uri(auth, str(params.uri))
        downstream = self._touch(ctx, auth, [server])
        await self._hold(auth, server, uri, owner_of(ctx))
        downstream.subscriptions.add((server.id, uri))
        return types.EmptyResult()

    async def _unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        auth = self._auth(ctx)
        server, uri = self._route_uri(auth, str(params.uri))
        downstream = self._touch(ctx, auth, [server])
        downstream.subscriptions.discard((server.id, uri))
        await self._release(auth, server, uri, owner_of(ctx))
        return types.EmptyResult()

    async def _hold(self, auth: AuthContext, server: McpServer, uri: str, owner: str) -> PoolKey:
        """`owner` (a downstream session, or a 2026-07-28 listen stream) wants updates of `uri`: the
        upstream is subscribed on the first holder's behalf. Always on a handshake session, the one
        revision with `resources/subscribe`; its updates reach `_relay_resource_updated` by server."""
        target = self._target(server)
        key = await self._key_for(target, auth, "handshake")
        if not self._upstream_subscribers.get((key, uri)):
            subscribe = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri))
            await self._upstream(target, auth, lambda s: s.send_request(subscribe, types.EmptyResult))
        # Looked up again after the wait: holders that came meanwhile share one set and one pin.
        subscribers = self._upstream_subscribers.setdefault((key, uri), set())
        if not subscribers:
            # An idle upstream session would otherwise be closed, and its updates with it.
            self.pool.pin(key)
        subscribers.add(owner)
        return key

    async def _release(self, auth: AuthContext, server: McpServer, uri: str, owner: str) -> None:
        """`owner` no longer wants updates of `uri`; the last one out unsubscribes the upstream."""
        key = await self._key_for(self._target(server), auth, "handshake")
        if self._drop_holder(key, uri, owner):
            await self._unsubscribe_upstream(auth, server, uri)

    def _drop_holder(self, key: PoolKey, uri: str, owner: str) -> bool:
        """Forgets `owner` as a holder of `uri` on the session `key`; True if it was the last one, so
        the upstream should be unsubscribed."""
        subscribers = self._upstream_subscribers.get((key, uri))
        if subscribers is None or owner not in subscribers:
            return False
        subscribers.discard(owner)
        if subscribers:
            return False
        del self._upstream_subscribers[(key, uri)]
        self.pool.unpin(key)
        return True

    async def _unsubscribe_upstream(self, auth: AuthContext, server: McpServer, uri: str) -> None:
        unsubscribe = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))
        await self._upstream(
            self._target(server), auth, lambda s: s.send_request(unsubscribe, types.EmptyResult)
        )

    async def _restore_subscriptions(self, pooled: PooledSession, session: ClientSession) -> None:
        """A replacement upstream session (after a crash, a restart, an idle close) starts with no
        subscriptions; the ones clients still hold are made again. Its listings may differ from what
        the cache holds (a restarted upstream may have new tools), so those are dropped too."""
        for cache_key in [k for k in self._listings if k[1] == pooled.key]:
            del self._listings[cache_key]
        uris = sorted(
            uri for (key, uri), owners in self._upstream_subscribers.items() if key == pooled.key and owners
        )
        for uri in uris:
            await session.send_request(
                types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri)), types.EmptyResult
            )
        if uris:
            log.info("upstream %s: restored %d resource subscription(s)", pooled.target.name, len(uris))

    # --- prompts and completions -------------------------------------------------------------------------

    async def _list_prompts(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        auth = self._auth(ctx)
        single = self._single(auth)
        if single is not None:
            self._touch(ctx, auth, [single])
            return types.ListPromptsResult(
                prompts=await self._fetch(
                    "prompts", single, auth, era_of(ctx.protocol_version), aggregate=False
                )
            )
        servers = list(auth.servers.values())
        self._touch(ctx, auth, servers)
        listings = await self._gather("prompts", servers, auth, era_of(ctx.protocol_version), use_cache=False)
        prompts = {
            entry: prompt
            for s in servers
            for prompt in listings.get(s.id, [])
            for entry in [Entry(s.id, s.alias, prompt.name)]
        }
        catalog = build_catalog(prompts)
        return types.ListPromptsResult(
            prompts=[prompts[entry].model_copy(update={"name": name}) for name, entry in catalog.items()]
        )

    async def _route_prompt(self, auth: AuthContext, era: Era, name: str) -> tuple[McpServer, str]:
        single = self._single(auth)
        if single is not None:
            return single, name
        entry = await self._resolve_prompt(auth, era, name)
        if entry is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {name}")
        return _server_by_id(auth, entry.server_id), entry.name

    async def _get_prompt(
        self, ctx: Ctx, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        auth = self._auth(ctx)
        era = era_of(ctx.protocol_version)
        server, name = await self._route_prompt(auth, era, params.name)
        self._touch(ctx, auth, [server])
        request = types.GetPromptRequest(
            params=types.GetPromptRequestParams(
                name=name,
                arguments=params.arguments,
                input_responses=params.input_responses,
                request_state=params.request_state,
                _meta=forwarded_meta(ctx.protocol_version, ctx.meta),
            )
        )
        result = _deliverable(
            ctx,
            await self._upstream(
                self._target(server),
                auth,
                lambda s: s.send_request(request, _GET_PROMPT_RESULT),
                relay=CallRelay(ctx, owner_of(ctx)),
                era=era,
            ),
        )
        if auth.path_server is not None or isinstance(result, types.InputRequiredResult):
            return result
        messages = [
            message.model_copy(update={"content": _wrap_block(server.alias, message.content)})
            for message in result.messages
        ]
        return result.model_copy(update={"messages": messages})

    async def _complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        auth = self._auth(ctx)
        era = era_of(ctx.protocol_version)
        ref = params.ref
        server: McpServer
        if isinstance(ref, types.PromptReference):
            server, name = await self._route_prompt(auth, era, ref.name)
            upstream_ref: types.PromptReference | types.ResourceTemplateReference = ref.model_copy(
                update={"name": name}
            )
        else:
            server, uri = self._route_uri(auth, ref.uri)
            upstream_ref = ref.model_copy(update={"uri": uri})
        self._touch(ctx, auth, [server])
        # Built afresh rather than copied: the client's `_meta` may carry its own protocol envelope,
        # which the upstream session (its own protocol revision) must not see.
        request = types.CompleteRequest(
            params=types.CompleteRequestParams(
                ref=upstream_ref,
                argument=params.argument,
                context=params.context,
                _meta=forwarded_meta(ctx.protocol_version, ctx.meta),
            )
        )
        # With a relay like any call: on 2026-07-28 the client's log level travels with the request, and
        # the upstream's log messages about it must reach this client only.
        return await self._upstream(
            self._target(server),
            auth,
            lambda s: s.send_request(request, types.CompleteResult),
            relay=CallRelay(ctx, owner_of(ctx)),
            era=era,
        )

    # --- logging ---------------------------------------------------------------------------------------

    async def _set_logging_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        """Sets the level on every upstream in scope that supports logging. Upstream sessions are shared
        per credential, so the level applies to everyone using the same upstream session."""
        auth = self._auth(ctx)
        single = self._single(auth)
        servers = [single] if single is not None else list(auth.servers.values())
        self._touch(ctx, auth, servers)
        request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=params.level))

        async def set_level(session: ClientSession) -> None:
            capabilities = session.server_capabilities
            if capabilities is not None and capabilities.logging is not None:
                await session.send_request(request, types.EmptyResult)

        async def one(server: McpServer) -> None:
            try:
                await self._upstream(self._target(server), auth, set_level)
            except MCPError as exc:
                if single is not None:
                    raise
                log.warning("logging/setLevel on upstream %s failed: %s", server.name, exc.message)

        async with anyio.create_task_group() as tg:
            for server in servers:
                tg.start_soon(one, server)
        return types.EmptyResult()

    # --- unsolicited upstream notifications --------------------------------------------------------------

    async def _listen(
        self, ctx: Ctx, params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """A 2026-07-28 client's listen stream. Its resource subscriptions (at most
        MAX_LISTEN_RESOURCES) are held upstream for as long as the stream lasts, as a 2025 session's
        `resources/subscribe` would be; a URI the caller may not use, or that its upstream will not
        subscribe, is left out of the acknowledgment."""
        auth = self._auth(ctx)
        # Taken before the upstream round trips: an access change during them ends the stream.
        generation = access_generation()
        self.listeners.admit(auth)
        owner = f"listen:{uuid.uuid4().hex}"
        # (server id, upstream URI) -> (the URI as the client named it, its server, the session holding it)
        holds: dict[tuple[str, str], tuple[str, McpServer, PoolKey]] = {}

        async def hold(public: str) -> None:
            try:
                server, uri = self._route_uri(auth, public)
                key = await self._hold(auth, server, uri, owner)
            except MCPError as exc:
                log.info("listen: resource %s not subscribed: %s", public, exc.message)
                return
            holds[(server.id, uri)] = (public, server, key)

        try:
            async with anyio.create_task_group() as tg:
                for public in (params.notifications.resource_subscriptions or [])[:MAX_LISTEN_RESOURCES]:
                    tg.start_soon(hold, public)
            held = {held_at: public for held_at, (public, _, _) in holds.items()}
            return await self.listeners.serve(ctx, auth, params, resources=held, generation=generation)
        finally:
            # Also when the client went away (the stream's task is cancelled then): the bookkeeping at
            # once, then the upstreams told, together and within a deadline.
            last = [
                (server, uri)
                for (_, uri), (_, server, key) in holds.items()
                if self._drop_holder(key, uri, owner)
            ]
            if last:
                with anyio.CancelScope(shield=True), anyio.move_on_after(RELEASE_DEADLINE_SECONDS):
                    async with anyio.create_task_group() as tg:
                        for server, uri in last:
                            tg.start_soon(self._unsubscribe_quietly, auth, server, uri)

    async def _unsubscribe_quietly(self, auth: AuthContext, server: McpServer, uri: str) -> None:
        try:
            await self._unsubscribe_upstream(auth, server, uri)
        except MCPError as exc:
            log.info("listen: resource %s of %s not unsubscribed: %s", uri, server.name, exc.message)

    async def _on_upstream_notification(self, server_id: str, notification: types.ServerNotification) -> None:
        if isinstance(notification, types.ResourceUpdatedNotification):
            await self._relay_resource_updated(server_id, str(notification.params.uri))
            return
        kind = _LIST_CHANGED_KINDS.get(type(notification))
        if kind is None:
            return
        for listing_kind in _CACHE_KINDS[kind]:
            for cache_key in [
                k for k in self._listings if k[0] == listing_kind and k[1].server_id == server_id
            ]:
                del self._listings[cache_key]
        self.listeners.changed(server_id, kind)
        for owner, downstream in list(self._downstream.items()):
            if server_id in downstream.aliases:
                downstream.pending.add(kind)
                if not downstream.flush_scheduled and self._tg is not None:
                    downstream.flush_scheduled = True
                    self._tg.start_soon(self._flush_list_changed, owner, downstream)

    async def _flush_list_changed(self, owner: str, downstream: _Downstream) -> None:
        # Upstreams often change several things at once (or several upstreams restart together): one
        # notification per kind per window is enough for the client to re-list.
        await anyio.sleep(LIST_CHANGED_COALESCE_SECONDS)
        kinds, downstream.pending, downstream.flush_scheduled = set(downstream.pending), set(), False
        for kind in sorted(kinds):
            if not await self._notify_downstream(owner, downstream, CHANGE_NOTIFICATIONS[kind]()):
                return

    async def _relay_resource_updated(self, server_id: str, uri: str) -> None:
        self.listeners.resource_updated(server_id, uri)
        for owner, downstream in list(self._downstream.items()):
            if (server_id, uri) not in downstream.subscriptions:
                continue
            shown = public_uri(downstream.aliases[server_id], uri) if downstream.aggregate else uri
            notification = types.ResourceUpdatedNotification(
                params=types.ResourceUpdatedNotificationParams(uri=shown)
            )
            await self._notify_downstream(owner, downstream, notification)

    async def _notify_downstream(
        self, owner: str, downstream: _Downstream, notification: types.ServerNotification
    ) -> bool:
        try:
            await downstream.session.send_notification(notification)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, NoBackChannelError):
            self._downstream.pop(owner, None)
            return False
        return True


_CALL_TOOL_RESULT: TypeAdapter[types.CallToolResult | types.InputRequiredResult] = TypeAdapter(
    types.CallToolResult | types.InputRequiredResult
)
_READ_RESOURCE_RESULT: TypeAdapter[types.ReadResourceResult | types.InputRequiredResult] = TypeAdapter(
    types.ReadResourceResult | types.InputRequiredResult
)
_GET_PROMPT_RESULT: TypeAdapter[types.GetPromptResult | types.InputRequiredResult] = TypeAdapter(
    types.GetPromptResult | types.InputRequiredResult
)

R = TypeVar("R")


def _schema_checked_by_call_tool(name: str) -> None:
    """For the SDK's pre-dispatch Mcp-Param check: no schema here, so it checks nothing (see
    `Gateway._check_param_headers`)."""
    return None


def _deliverable(ctx: Ctx, result: R) -> R:
    """An upstream's "input required" result (2026-07-28 multi-round requests) is passed on to clients
    that speak that revision; older clients cannot carry it, so they get an error that says why."""
    if isinstance(result, types.InputRequiredResult) and ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        raise MCPError(
            code=types.INTERNAL_ERROR,
            message="the upstream asked for input in a form only 2026-07-28 clients can answer",
        )
    return result


def _wrap_block(alias: str, block: Any) -> Any:
    """Resource links and embedded resources in results name upstream URIs; on `/mcp` they are wrapped
    like listed resources, so a client can read what a tool pointed it at."""
    if isinstance(block, types.ResourceLink):
        return block.model_copy(update={"uri": public_uri(alias, str(block.uri))})
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource.model_copy(update={"uri": public_uri(alias, str(block.resource.uri))})
        return block.model_copy(update={"resource": resource})
    return block


def _progress_token(ctx: Ctx) -> object | None:
    meta: Any = ctx.meta
    if not meta:
        return None
    # The SDK hands `_meta` over as parsed from the wire; accept either spelling of the key.
    token: object | None = meta.get("progress_token", meta.get("progressToken"))
    return token


def _server_by_id(auth: AuthContext, server_id: str) -> McpServer:
    for server in auth.servers.values():
        if server.id == server_id:
            return server
    raise MCPError(code=types.INVALID_PARAMS, message="that server is not available to this API key")


async def _all_pages(
    fetch: Callable[[str | None], Awaitable[BaseModel]], items_of: Callable[[Any], list[Any]]
) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor)
        items.extend(items_of(page))
        cursor = getattr(page, "next_cursor", None)
        if not cursor:
            return items
    log.warning("upstream listing stopped after %d pages", MAX_PAGES)
    return items


def _paginated(cursor: str | None) -> types.PaginatedRequestParams | None:
    return types.PaginatedRequestParams(cursor=cursor) if cursor else None


async def list_tools_of(session: ClientSession) -> list[Any]:
    capabilities = session.server_capabilities
    if capabilities is not None and capabilities.tools is None:
        return []
    return await _all_pages(
        # Through the session's own `list_tools`: on 2026-07-28 it records each tool's `x-mcp-header`
        # map, without which a later tools/call lacks the Mcp-Param-* headers the upstream requires.
        lambda c: session.list_tools(params=_paginated(c)),
        lambda page: list(page.tools),
    )


async def _list_resources_of(session: ClientSession) -> list[Any]:
    capabilities = session.server_capabilities
    if capabilities is not None and capabilities.resources is None:
        return []
    return await _all_pages(
        lambda c: session.send_request(
            types.ListResourcesRequest(params=_paginated(c)), types.ListResourcesResult
        ),
        lambda page: list(page.resources),
    )


async def _list_templates_of(session: ClientSession) -> list[Any]:
    capabilities = session.server_capabilities
    if capabilities is not None and capabilities.resources is None:
        return []
    return await _all_pages(
        lambda c: session.send_request(
            types.ListResourceTemplatesRequest(params=_paginated(c)), types.ListResourceTemplatesResult
        ),
        lambda page: list(page.resource_templates),
    )


async def _list_prompts_of(session: ClientSession) -> list[Any]:
    capabilities = session.server_capabilities
    if capabilities is not None and capabilities.prompts is None:
        return []
    return await _all_pages(
        lambda c: session.send_request(
            types.ListPromptsRequest(params=_paginated(c)), types.ListPromptsResult
        ),
        lambda page: list(page.prompts),
    )


_LISTERS: dict[ListKind, Callable[[ClientSession], Awaitable[list[Any]]]] = {
    "tools": list_tools_of,
    "resources": _list_resources_of,
    "templates": _list_templates_of,
    "prompts": _list_prompts_of,
}

_LIST_CHANGED_KINDS: dict[type, ChangeKind] = {
    types.ToolListChangedNotification: "tools",
    types.ResourceListChangedNotification: "resources",
    types.PromptListChangedNotification: "prompts",
}
_CACHE_KINDS: dict[str, tuple[ListKind, ...]] = {
    "tools": ("tools",),
    "resources": ("resources", "templates"),
    "prompts": ("prompts",),
}


P = TypeVar("P")


def _asking_to_connect(handler: Callable[[Ctx, P], Awaitable[R]]) -> Callable[[Ctx, P], Awaitable[R]]:
    """A request that needs a per-user server the caller has not connected fails with the connect URL.
    For a 2025-11-25 client that declared URL-mode elicitation, that failure is the spec's
    URLElicitationRequiredError (-32042), which the client can present as "open this page" and then
    retry; other clients get the hub's usual error."""

    async def handle(ctx: Ctx, params: P) -> R:
        try:
            return await handler(ctx, params)
        except MCPError as exc:
            url = connect_url_of(exc)
            if url is None or not _url_elicitation_error_allowed(ctx):
                raise
            raise url_elicitation_required(exc, url) from None

    return handle


def _asks_back(session: ServerSession) -> bool:
    """Whether a handshake-era client declared it answers requests from servers (sampling,
    elicitation, roots), which an upstream may send it in the middle of a call."""
    capabilities = session.client_capabilities
    return capabilities is not None and (
        capabilities.sampling is not None
        or capabilities.elicitation is not None
        or capabilities.roots is not None
    )


def _url_elicitation_error_allowed(ctx: Ctx) -> bool:
    return ctx.protocol_version in URL_ELICITATION_ERROR_VERSIONS and supports_url_elicitation(
        ctx.session.client_capabilities
    )


async def _ask_to_connect(ctx: Ctx, server: McpServer, url: str) -> types.CallToolResult:
    """The `connect` tool: a client that supports URL-mode elicitation is asked to open the connect page
    for the user (with their consent); any other client gets the URL in the result."""
    if not supports_url_elicitation(ctx.session.client_capabilities):
        return connect_result(server, url)
    elicitation = connect_elicitation(server.name, url)
    try:
        answer = await ctx.session.elicit_url(
            elicitation.message, url, str(elicitation.elicitation_id), related_request_id=ctx.request_id
        )
    except (MCPError, NoBackChannelError, ValidationError):
        # The client could not be asked here (no back channel, or it failed the request): the URL in
        # the result still lets the user connect.
        return connect_result(server, url)
    return elicited_connect_result(server, url, answer.action)
