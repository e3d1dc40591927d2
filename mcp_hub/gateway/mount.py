"""Mounting the hub's MCP server: streamable HTTP at `/mcp` and `/mcp/{server}`, legacy SSE at `/sse`
and `/mcp/{server}/sse` (messages posted to `/sse/messages/` and `/mcp/{server}/messages/`).

Every request is authenticated first (`extract_mcp_auth_context`), its AuthContext attached to its
scope, and only then handed to the SDK transport. `open_gateway` builds and runs the long-lived parts
(upstream pool, session manager) inside the app's lifespan.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    MODERN_PROTOCOL_VERSIONS,
    SUPPORTED_PROTOCOL_VERSIONS,
)
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mcp_hub.auth.context import AuthCache, AuthContext, presented_key, set_auth_context
from mcp_hub.authserver.metadata import www_authenticate
from mcp_hub.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from mcp_hub.gateway.call_forward import CallForwarder
from mcp_hub.gateway.json_first import JsonFirstSessionManager
from mcp_hub.gateway.passthrough import PassThrough, error_body, request_id_of, send_json
from mcp_hub.gateway.server import Gateway, GatewaySettings
from mcp_hub.openapi.runtime import OpenApiRuntime, openapi_runtime
from mcp_hub.runtime import Hub
from mcp_hub.settings import Settings
from mcp_hub.upstream.credentials import CredentialResolver, StaticCredentialResolver
from mcp_hub.upstream.pool import PoolSettings, UpstreamPool

log = logging.getLogger(__name__)

SSE_MESSAGE_PATH = "/messages/"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass
class GatewayRuntime:
    gateway: Gateway
    pool: UpstreamPool
    manager: JsonFirstSessionManager
    sse: SseServerTransport
    hub: Hub
    auth_cache: AuthCache
    openapi: OpenApiRuntime
    passthrough: PassThrough
    forwarder: CallForwarder


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: Host must name the hub as configured (host:port, the loopback names
    when it listens on loopback, the public base URL) and a browser Origin must be one of those."""
    hosts: set[str] = set()
    bind_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    if bind_host not in ("0.0.0.0", "[::]"):  # noqa: S104 - comparing, not binding
        hosts.add(f"{bind_host}:{settings.port}")
    if bind_host in LOOPBACK_HOSTS or bind_host in ("0.0.0.0", "[::]"):  # noqa: S104 - comparing, not binding
        hosts.update(f"{name}:{settings.port}" for name in LOOPBACK_HOSTS)
    origins = {f"http://{host}" for host in hosts}
    if settings.public_base_url:
        parts = urlsplit(settings.public_base_url)
        if parts.hostname:
            netloc = parts.netloc.rpartition("@")[2]
            hosts.add(netloc)
            default_port = {"http": 80, "https": 443}.get(parts.scheme)
            if parts.port is None or parts.port == default_port:
                host_only = netloc.rsplit(":", 1)[0] if parts.port else netloc
                hosts.update({host_only, f"{host_only}:{default_port}"})
            origins.add(f"{parts.scheme}://{netloc}")
    # Browser-based MCP clients the operator trusts (CORS on /mcp answers the same list).
    origins.update(settings.mcp_cors_origins)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=sorted(hosts), allowed_origins=sorted(origins)
    )


@asynccontextmanager
async def open_gateway(hub: Hub, resolver: CredentialResolver | None = None) -> AsyncIterator[GatewayRuntime]:
    settings = hub.settings
    openapi = openapi_runtime(hub)
    resolver = resolver or StaticCredentialResolver()
    pool = UpstreamPool(
        resolver,
        PoolSettings(
            connect_timeout=settings.upstream_connect_timeout_seconds,
            idle_seconds=settings.upstream_idle_seconds,
            backoff_max=settings.upstream_restart_backoff_max_seconds,
        ),
        openapi=openapi,
    )
    gateway = Gateway(
        hub,
        pool,
        GatewaySettings(
            list_deadline_seconds=settings.upstream_list_deadline_seconds,
            default_timeout_seconds=settings.upstream_timeout_seconds,
        ),
    )
    security = transport_security(settings)
    manager = JsonFirstSessionManager(
        app=gateway.server,
        security_settings=security,
        max_request_body_size=settings.max_request_bytes,
        session_idle_timeout=settings.mcp_session_idle_seconds,
        max_sessions=settings.max_mcp_sessions,
    )
    sse = SseServerTransport(
        SSE_MESSAGE_PATH, security_settings=security, max_request_body_size=settings.max_request_bytes
    )
    passthrough = PassThrough(
        lambda: pool.resolver,
        gateway.target_of,
        security,
        max_body=settings.max_request_bytes,
        session_idle_seconds=settings.mcp_session_idle_seconds,
        wire=pool.wire,
    )
    async with AsyncExitStack() as stack:
        # Entered in this order so they close the other way round: downstream sessions first, then the
        # gateway's background work, then the upstream sessions and stdio processes, then the HTTP
        # clients OpenAPI sessions call through.
        stack.push_async_callback(openapi.aclose)
        await stack.enter_async_context(pool.run())
        await stack.enter_async_context(gateway.run())
        await stack.enter_async_context(manager.run())
        forwarder = CallForwarder(gateway, passthrough)
        stack.push_async_callback(forwarder.aclose)
        manager.forwarder = forwarder
        yield GatewayRuntime(
            gateway=gateway,
            pool=pool,
            manager=manager,
            sse=sse,
            hub=hub,
            auth_cache=AuthCache(settings.mcp_auth_cache_seconds),
            openapi=openapi,
            passthrough=passthrough,
            forwarder=forwarder,
        )


def runtime_settings(scope: Scope) -> Settings:
    hub: Hub = scope["app"].state.hub
    return hub.settings


def _runtime(scope: Scope) -> GatewayRuntime:
    runtime: GatewayRuntime = scope["app"].state.gateway
    return runtime


async def _authenticate(scope: Scope, receive: Receive, send: Send) -> AuthContext | None:
    """The caller's AuthContext, or None after answering 401/403/404 itself."""
    request = Request(scope, receive)
    try:
        runtime = _runtime(scope)
        return await runtime.auth_cache.authenticate(request, runtime.hub)
    except AuthenticationError as exc:
        # The challenge names the protected-resource metadata (RFC 9728), from which OAuth-only clients
        # discover the hub's authorization server; a credential that was presented and refused is an
        # `invalid_token` (RFC 6750), which tells them to refresh or sign in again.
        presented = presented_key(request) is not None
        challenge = www_authenticate(runtime_settings(scope), error="invalid_token" if presented else None)
        response = JSONResponse(
            {"detail": exc.message}, status_code=401, headers={"WWW-Authenticate": challenge}
        )
    except (PermissionDeniedError, NotFoundError) as exc:
        response = JSONResponse({"detail": exc.message}, status_code=exc.status_code)
    await response(scope, receive, send)
    return None


class StreamableHttpEndpoint:
    """`/mcp` and `/mcp/{server}`: `/mcp/{server}` of a streamable-HTTP upstream is forwarded by the
    pass-through, and so is a 2026-07-28 `tools/call` on `/mcp` to one (call_forward); everything else
    is served by the hub's own MCP server (the terminating path)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        auth = await _authenticate(scope, receive, send)
        if auth is None:
            return
        runtime = _runtime(scope)
        if auth.path_server is not None and await runtime.passthrough.handle(scope, receive, send, auth):
            return
        # RFC 9110 §5.5: whitespace around a field value is not part of it. h11 trims it, httptools
        # (uvicorn's faster parser) keeps trailing whitespace, and the SDK compares `Mcp-Name` exactly.
        scope["headers"] = [(name, value.strip(b" \t")) for name, value in scope["headers"]]
        if await _refused_protocol_version(scope, receive, send, runtime.passthrough):
            return
        if auth.path_server is None:
            rest = await runtime.forwarder.handle(scope, receive, send, auth)
            if rest is None:
                return
            receive = rest
        set_auth_context(scope, auth)
        await runtime.manager.handle_request(scope, receive, send)


async def _refused_protocol_version(
    scope: Scope, receive: Receive, send: Send, passthrough: PassThrough
) -> bool:
    """Answers a request whose `MCP-Protocol-Version` the hub does not speak (400, as the spec asks)
    with the versions it does, and says whether it did. The SDK sends every version it cannot name to
    its 2026-07-28 handler, which then complains of the request's missing 2026 fields instead."""
    version = next((v for k, v in scope["headers"] if k == b"mcp-protocol-version"), None)
    if version is None or (requested := version.decode("latin-1")) in SUPPORTED_PROTOCOL_VERSIONS:
        return False
    # `supported` is what a 2026-07-28 client may retry with (what `server/discover` lists); the
    # handshake revisions are named for the people reading the message.
    supported = list(MODERN_PROTOCOL_VERSIONS)
    message = (
        f"unsupported MCP-Protocol-Version {requested!r}: this hub speaks {', '.join(supported)}, and "
        f"{', '.join(HANDSHAKE_PROTOCOL_VERSIONS)} after an initialize handshake"
    )
    body = await passthrough.read_body(receive, dict(scope["headers"]))
    request_id = request_id_of(body) if body is not None else None
    data = {"supported": supported, "requested": requested}
    await send_json(send, 400, error_body(request_id, UNSUPPORTED_PROTOCOL_VERSION, message, data))
    return True


class SseEndpoint:
    """GET `/sse` and `/mcp/{server}/sse`: opens a legacy SSE session served by the hub's server."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":
            await JSONResponse(
                {"detail": "use GET to open an SSE stream"}, status_code=405, headers={"Allow": "GET"}
            )(scope, receive, send)
            return
        auth = await _authenticate(scope, receive, send)
        if auth is None:
            return
        runtime = _runtime(scope)
        server_name = scope.get("path_params", {}).get("server")
        # The SDK announces the message endpoint as root_path + "/messages/".
        sse_scope: dict[str, Any] = {**scope, "root_path": f"/mcp/{server_name}" if server_name else "/sse"}
        set_auth_context(sse_scope, auth)
        server = runtime.gateway.server
        try:
            async with runtime.sse.connect_sse(sse_scope, receive, send) as (read, write):
                await server.run(read, write, server.create_initialization_options())
        except ValueError:
            # The SDK already answered (Host/Origin refused); nothing more to send.
            log.info("SSE connection refused by transport security")


class SseMessageEndpoint:
    """POST `/sse/messages/` and `/mcp/{server}/messages/`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        auth = await _authenticate(scope, receive, send)
        if auth is None:
            return
        set_auth_context(scope, auth)
        await _runtime(scope).sse.handle_post_message(scope, receive, send)


_STREAMABLE = StreamableHttpEndpoint()


async def dispatch_streamable(app: FastAPI, scope: Scope, receive: Receive, send: Send) -> bool:
    """Serves `/mcp` and `/mcp/{server}` straight from the application's entry, ahead of FastAPI's
    middleware and router (what `HubApp` calls first). None of those layers applies to these paths
    (the REST body cap and cache headers are for /v1 and /ui; the MCP transports cap their own bodies
    and uvicorn answers 500 for anything unhandled), and together they cost about a fifth of a
    pass-through call. Returns False, having done nothing, for every other request; the routes that
    `mount_gateway` adds still serve these paths when the app runs under a root path."""
    if scope["type"] != "http" or scope.get("root_path"):
        return False
    if any(name == b"origin" for name, _ in scope["headers"]):
        # A browser: it needs the CORS layer (preflights included), which lives in the middleware
        # stack. Native MCP clients send no Origin and keep the short path.
        return False
    path: str = scope["path"]
    if path == "/mcp":
        params: dict[str, str] = {}
    elif path.startswith("/mcp/") and len(path) > 5 and "/" not in path[5:]:
        params = {"server": path[5:]}
    else:
        return False
    scope["app"] = app
    scope["path_params"] = params
    await _STREAMABLE(scope, receive, send)
    return True


def mount_gateway(app: FastAPI) -> None:
    """Adds the MCP routes. `app.state.gateway` must be set by the lifespan (see `open_gateway`)."""
    streamable = _STREAMABLE
    sse = SseEndpoint()
    messages = SseMessageEndpoint()
    app.router.routes.extend(
        [
            Route("/mcp", endpoint=streamable, name="mcp"),
            Route("/sse", endpoint=sse, name="mcp_sse"),
            Route("/sse/messages/", endpoint=messages, name="mcp_sse_messages"),
            Route("/mcp/{server}", endpoint=streamable, name="mcp_server"),
            Route("/mcp/{server}/sse", endpoint=sse, name="mcp_server_sse"),
            Route("/mcp/{server}/messages/", endpoint=messages, name="mcp_server_sse_messages"),
        ]
    )
