"""create_app(settings): the FastAPI app. Its lifespan opens the hub's parts once; routers get them from
`request.app.state.hub`."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Receive, Scope, Send

from mcp_hub.admin.probe import router as probe_router
from mcp_hub.admin.routes import router as admin_router
from mcp_hub.authserver.account import router as account_router
from mcp_hub.authserver.pages import router as authorize_pages
from mcp_hub.authserver.routes import McpCors, authserver_routes
from mcp_hub.credentials.me import router as me_router
from mcp_hub.credentials.resolver import UserCredentialResolver
from mcp_hub.credentials.routes import router as credentials_router
from mcp_hub.errors import AuthenticationError, HubError
from mcp_hub.gateway.mount import dispatch_streamable, mount_gateway, open_gateway
from mcp_hub.http_limits import BodySizeLimit
from mcp_hub.logredact import install_log_redaction
from mcp_hub.runtime import Hub, bootstrap_admin_key, open_hub
from mcp_hub.settings import Settings
from mcp_hub.store.engine import current_revision, head_revision
from mcp_hub.ui import mount_ui

log = logging.getLogger(__name__)

# Calls on /mcp leave cyclic garbage (the SDK ends each SSE response by cancelling its helper tasks, and
# each cancellation is a reference cycle). At CPython's default of 700 a gen-0 collection ran every two
# calls and each one scanned the state of every call in flight: 0.21-0.30 ms CPU per call with 8 sessions.
# At 5,000: 0.10-0.17 ms, the longest single collection 4-16 ms against 2-10 ms, and no full collection
# within a measured cell (docs/benchmarks.md, "The 8-session tail"); at 10,000 single pauses grow further.
GC_GEN0_THRESHOLD = 5_000


class HubApp(FastAPI):
    """FastAPI, with the MCP streamable-HTTP endpoints served before its middleware stack (see
    `dispatch_streamable`): they carry every proxied call, and the hub's CPU per call is its budget."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await dispatch_streamable(self, scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    install_log_redaction()  # before any request can log an OAuth callback's code

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            hub = await stack.enter_async_context(open_hub(settings))
            app.state.hub = hub
            new_admin_key = await bootstrap_admin_key(hub)
            if new_admin_key:
                announce_admin_key(new_admin_key)
            app.state.gateway = await stack.enter_async_context(
                open_gateway(hub, resolver=UserCredentialResolver(hub))
            )
            # Everything built at start-up (SQLAlchemy, pydantic and SDK machinery: most of the heap)
            # lives as long as the process; frozen, the collector stops scanning it on every full
            # collection, which otherwise shows as latency spikes under load.
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
            yield

    app = HubApp(
        title="mcp-hub",
        summary="One MCP endpoint for every server your organisation connects, with each user's own credentials.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.include_router(admin_router)
    app.include_router(probe_router)
    mount_ui(app)
    app.include_router(credentials_router)
    app.include_router(me_router)
    app.router.routes.extend(authserver_routes())
    app.include_router(authorize_pages)
    app.include_router(account_router)
    mount_gateway(app)
    app.add_middleware(McpCors, origins=settings.mcp_cors_origins)
    # The REST paths; the MCP transports enforce the same cap themselves.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        path_prefixes=("/v1/", "/token", "/register", "/revoke", "/authorize"),
    )

    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        headers = (
            {"WWW-Authenticate": 'Bearer realm="mcp-hub"'} if isinstance(exc, AuthenticationError) else None
        )
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        hub: Hub = request.app.state.hub
        try:
            current = await current_revision(hub.engine)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("readiness check: database unreachable: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, status_code=503)
        head = head_revision()
        if current != head:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "reason": f"schema at {current}, needs {head}: run `mcp-hub db upgrade`",
                },
                status_code=503,
            )
        return JSONResponse({"status": "ready", "schema": current})

    return app


def announce_admin_key(key: str) -> None:
    # Printed to the terminal, deliberately not through logging: log files must never hold secrets.
    print(
        "\n  mcp-hub: no admin key existed, so one was created. It is shown once; store it now:\n\n"
        f"    {key}\n\n"
        "  Use it as `Authorization: Bearer <key>` (or sign in to the UI with it).\n",
        file=sys.stderr,
        flush=True,
    )
