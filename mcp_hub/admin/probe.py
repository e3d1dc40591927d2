"""Admin checks of upstream servers: "test connection" (a saved server, or a form not saved yet), the
health the servers page shows, and OAuth discovery for the server form. Every connection goes through the
gateway's upstream pool, so the one credential resolver decides what is presented upstream: the calling
admin's own credential for a per-user server, the server's shared one otherwise."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mcp_hub.admin.routes import WriteOnlyInputRoute, spec_document_for
from mcp_hub.admin.schemas import NAME_PATTERN, HttpUrl, ServerCreate
from mcp_hub.auth.deps import AdminDep, HubDep
from mcp_hub.auth.keys import Caller
from mcp_hub.credentials.discovery import discover_for_url
from mcp_hub.errors import ConflictError, UpstreamError, UpstreamTimeoutError
from mcp_hub.gateway.server import list_tools_of
from mcp_hub.runtime import Hub
from mcp_hub.store import servers
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import PER_USER_AUTH_TYPES, McpServer
from mcp_hub.upstream.health import ServerHealth
from mcp_hub.upstream.pool import UpstreamPool
from mcp_hub.upstream.target import target_from_row

router = APIRouter(prefix="/v1", route_class=WriteOnlyInputRoute)

MAX_HEALTH_IDS = 200
# A URL's query string can carry a user's key (BYOK by query parameter); error texts from the transport
# may quote the URL, so the query is cut before the text reaches a response.
_URL_QUERY = re.compile(r"(https?://[^\s'\"?#]+)\?[^\s'\"]*")
_URL_USERINFO = re.compile(r"(https?://)[^/\s'\"@]+@")


def get_pool(request: Request) -> UpstreamPool:
    pool: UpstreamPool = request.app.state.gateway.pool
    return pool


PoolDep = Annotated[UpstreamPool, Depends(get_pool)]


def readable(message: str) -> str:
    return _URL_USERINFO.sub(r"\1", _URL_QUERY.sub(r"\1?…", message))


class ToolInfo(BaseModel):
    name: str
    description: str | None
    allowed: bool = Field(description="false when the server's allowed_tools leaves this tool out")


class ConnectionTest(BaseModel):
    server_id: str | None = Field(description="null for a form that is not saved")
    tools: list[ToolInfo]
    allowed_tools: list[str] | None = Field(description="the server's allowlist; null: every tool allowed")


class ServerTest(ServerCreate):
    """A server form not saved yet; the same fields and checks as a create, the name optional."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)] = "unsaved"


async def _list_tools(
    hub: Hub, pool: UpstreamPool, admin: Caller, server: McpServer, *, saved: bool
) -> ConnectionTest:
    if not saved and server.auth_type in PER_USER_AUTH_TYPES:
        raise ConflictError(
            f"a {server.auth_type} server is tested with your own credential: save it, connect your "
            "account under My connections, then test it again"
        )
    target = replace(
        target_from_row(hub.keyring, server, hub.settings.upstream_timeout_seconds), unsaved=not saved
    )
    try:
        tools = await pool.call(target, admin.user_id, list_tools_of)
    except UpstreamTimeoutError as exc:
        if saved:
            pool.health.failed(server.id, exc.message)
        raise UpstreamTimeoutError(readable(exc.message)) from None
    except UpstreamError as exc:
        raise UpstreamError(readable(exc.message)) from None
    finally:
        if not saved:
            # Its id exists nowhere else; nothing would reuse the session before the idle reaper.
            pool.close_server(server.id)
    if saved:
        pool.health.listed_tools(server.id, len(tools))
    allowlist = server.allowed_tools
    return ConnectionTest(
        server_id=server.id if saved else None,
        tools=[
            ToolInfo(
                name=tool.name,
                description=tool.description,
                allowed=allowlist is None or tool.name in allowlist,
            )
            for tool in tools
        ],
        allowed_tools=allowlist,
    )


@router.post("/servers/test", response_model=ConnectionTest, tags=["servers"])
async def test_unsaved_server(
    body: ServerTest, request: Request, hub: HubDep, admin: AdminDep, pool: PoolDep
) -> ConnectionTest:
    """Connects to a server described by a form that is not saved and lists its tools (502 when the
    upstream fails, 504 when it does not answer in time; the message says why and carries no secret).
    An OpenAPI form's spec is read and checked first, as a save would (422 listing its problems)."""
    document = await spec_document_for(request, hub, body)
    row = servers.new_server_row(hub.keyring, body, spec_document=document)
    return await _list_tools(hub, pool, admin, row, saved=False)


@router.post("/servers/{server_id}/test", response_model=ConnectionTest, tags=["servers"])
async def test_server(server_id: str, hub: HubDep, admin: AdminDep, pool: PoolDep) -> ConnectionTest:
    """Connects to a saved server with the calling admin's own credential (the shared one for servers
    that are not per-user) and lists its tools, each marked allowed or not by the server's
    `allowed_tools`. A per-user server the admin has not connected is a 409 naming where to connect."""
    async with transaction(hub.sessions) as session:
        row = await servers.get_server(session, server_id)
    return await _list_tools(hub, pool, admin, row, saved=True)


class ServerHealthOut(BaseModel):
    server_id: str
    state: Literal["ok", "failed", "unknown"]
    checked_at: datetime | None
    error: str | None
    tool_count: int | None


class HealthList(BaseModel):
    items: list[ServerHealthOut]


@router.get("/server-health", response_model=HealthList, tags=["servers"])
async def server_health(
    _admin: AdminDep,
    pool: PoolDep,
    server_id: Annotated[list[str], Query(max_length=MAX_HEALTH_IDS)],
) -> HealthList:
    """What this hub process last saw of each server: the latest connect (ok or failed, and why) and the
    number of tools it listed. `unknown` until something connected to it (a tool call or a test)."""
    return HealthList(items=[_health_out(one, pool.health.get(one)) for one in server_id])


def _health_out(server_id: str, seen: ServerHealth | None) -> ServerHealthOut:
    if seen is None:
        return ServerHealthOut(
            server_id=server_id, state="unknown", checked_at=None, error=None, tool_count=None
        )
    return ServerHealthOut(
        server_id=server_id,
        state="ok" if seen.ok else "failed",
        checked_at=seen.checked_at,
        error=readable(seen.error) if seen.error else None,
        tool_count=seen.tool_count,
    )


class DiscoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: HttpUrl


class DiscoverOut(BaseModel):
    issuer: str | None
    authorization_url: str
    token_url: str
    registration_url: str | None
    scopes: list[str]
    resource_metadata_url: str | None


@router.post("/oauth/discover", response_model=DiscoverOut, tags=["servers"])
async def discover(body: DiscoverIn, hub: HubDep, _admin: AdminDep) -> Any:
    """Finds an MCP server's authorization server (RFC 9728 from its 401, then RFC 8414 / OpenID
    discovery) to fill the server form. Nothing is stored. Internal addresses are refused unless
    allowed by MCP_HUB_OAUTH_ALLOWED_HOSTS (502), as for every URL the hub fetches for OAuth."""
    found = await discover_for_url(hub, body.url)
    return DiscoverOut(
        issuer=found.issuer,
        authorization_url=found.authorization_url,
        token_url=found.token_url,
        registration_url=found.registration_url,
        scopes=list(found.scopes),
        resource_metadata_url=found.resource_metadata_url,
    )
