"""User-facing REST API for a user's own upstream credentials: the OAuth connect flow, BYOK keys, and
the list of what is connected. Authenticated with the user's hub API key (`Authorization: Bearer`),
except the OAuth callback, which the browser reaches from the authorization server and which is bound to
the flow by its state and an HttpOnly cookie set when the flow started."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.admin.routes import WriteOnlyInputRoute
from mcp_hub.auth.deps import HubDep, UserDep
from mcp_hub.auth.keys import Caller, authenticate_key, bearer_token
from mcp_hub.credentials.oauth import (
    CALLBACK_COOKIE_PATH,
    STATE_TTL,
    CallbackParams,
    StartedFlow,
    browser_cookie_name,
    complete_authorization,
    start_authorization,
)
from mcp_hub.credentials.store import delete_credential, put_credential
from mcp_hub.errors import (
    AuthenticationError,
    ConflictError,
    HubError,
    InvalidInputError,
    NotFoundError,
    OAuthFlowError,
    PermissionDeniedError,
    UnsafeUrlError,
    UpstreamError,
)
from mcp_hub.runtime import Hub
from mcp_hub.store import audit
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import Access, AuthType, CredentialType, McpServer, McpServerUser, McpUserCredential
from mcp_hub.store.servers import get_server

log = logging.getLogger(__name__)

# Validation errors must not echo the request body back: it carries the user's key.
router = APIRouter(prefix="/v1", tags=["credentials"], route_class=WriteOnlyInputRoute)

MAX_KEY_CHARS = 4096
PAGE_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def same_origin_path(value: str) -> str:
    """A path on the hub's own origin to return the browser to. Anything that a browser could read as
    another origin (`//host`, `/\\host`, `https:...`, control characters) is refused."""
    if len(value) > 2048 or not value.startswith("/") or value.startswith(("//", "/\\")):
        raise InvalidInputError("redirect must be a path on this hub, starting with a single '/'")
    if "\\" in value or _CONTROL.search(value) or " " in value:
        raise InvalidInputError("redirect must be a plain path on this hub")
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        raise InvalidInputError("redirect must be a path on this hub")
    return value


async def _usable_server(session: AsyncSession, caller: Caller, server_id: str) -> McpServer:
    """The server, if this caller may use it; an unknown server and one not shared with the user look
    the same (404) so ids cannot be probed."""
    server = await session.get(McpServer, server_id)
    if server is None or not server.enabled:
        raise NotFoundError(f"no server with id {server_id!r}")
    if server.access == Access.listed_users.value:
        listed = await session.scalar(
            select(McpServerUser.user_id).where(
                McpServerUser.server_id == server.id, McpServerUser.user_id == caller.user_id
            )
        )
        if listed is None:
            raise NotFoundError(f"no server with id {server_id!r}")
    if caller.allowed_servers is not None and server.name not in caller.allowed_servers:
        raise PermissionDeniedError("this API key may not use this server")
    return server


# --- OAuth ---------------------------------------------------------------------------------------------


class AuthorizationStart(BaseModel):
    authorization_url: str


@router.get(
    "/servers/{server_id}/oauth/authorize",
    responses={302: {"description": "to the authorization server"}, 200: {"model": AuthorizationStart}},
)
async def oauth_authorize(
    server_id: str,
    request: Request,
    hub: HubDep,
    caller: UserDep,
    redirect: Annotated[str, Query(max_length=2048, description="UI path to return to afterwards")] = "/",
    client_id: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
    replace: Annotated[bool, Query(description="let the new tokens replace your BYOK key")] = False,
) -> Response:
    """Starts connecting the caller's account: a 302 to the authorization server, or with
    `Accept: application/json` its URL as `{"authorization_url": ...}` (for the UI). Either way the
    response sets a short-lived HttpOnly cookie that the callback requires."""
    redirect_after = same_origin_path(redirect)
    async with transaction(hub.sessions) as session:
        server = await _usable_server(session, caller, server_id)
        if server.auth_type != AuthType.oauth2.value:
            raise InvalidInputError(
                f"server {server.name!r} does not use OAuth (auth_type {server.auth_type})"
            )
        existing = await session.scalar(
            select(McpUserCredential.type).where(
                McpUserCredential.user_id == caller.user_id, McpUserCredential.server_id == server.id
            )
        )
    if existing == CredentialType.byok.value and not replace:
        raise ConflictError(
            "you have a BYOK key stored for this server: remove it first (DELETE .../credential) "
            "or start again with replace=true"
        )
    flow = await start_authorization(
        hub,
        user_id=caller.user_id,
        server_id=server_id,
        redirect_after=redirect_after,
        client_id=client_id,
        replace=replace,
    )
    wants_json = "application/json" in request.headers.get("accept", "")
    response: Response = (
        JSONResponse({"authorization_url": flow.authorization_url})
        if wants_json
        else RedirectResponse(flow.authorization_url, status_code=302)
    )
    response.headers["Cache-Control"] = "no-store"
    set_flow_cookie(response, flow, hub)
    return response


def set_flow_cookie(response: Response, flow: StartedFlow, hub: Hub) -> None:
    """The browser's half of a started flow, which the callback requires (HttpOnly, callback path)."""
    response.set_cookie(
        flow.cookie_name,
        flow.cookie_value,
        max_age=int(STATE_TTL.total_seconds()),
        path=CALLBACK_COOKIE_PATH,
        httponly=True,
        secure=hub.settings.base_url.startswith("https://"),
        # Lax: the cookie must come along on the top-level navigation back from the authorization server.
        samesite="lax",
    )


def _plain_error(exc: HubError) -> PlainTextResponse:
    return PlainTextResponse(
        f"Connecting your account did not work.\n\n{exc.message}\n",
        status_code=exc.status_code,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/oauth/callback", include_in_schema=True, response_class=RedirectResponse)
async def oauth_callback(
    request: Request,
    hub: HubDep,
    state: Annotated[str | None, Query(max_length=512)] = None,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    iss: Annotated[str | None, Query(max_length=2048)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
    error_description: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """Where the authorization server sends the browser back. Exchanges the code for tokens, stores
    them as the user's `oauth2` credential and returns the browser to the UI page the flow started
    from. Errors are shown as plain text."""
    bearer_user_id: str | None = None
    presented = bearer_token(request.headers.get("authorization"))
    try:
        if presented is not None:
            async with transaction(hub.sessions) as session:
                bearer_user_id = (await authenticate_key(session, presented)).user_id
        redirect_after = await complete_authorization(
            hub,
            CallbackParams(state=state, code=code, iss=iss, error=error, error_description=error_description),
            cookies=dict(request.cookies),
            bearer_user_id=bearer_user_id,
        )
    except (OAuthFlowError, AuthenticationError, ConflictError, UpstreamError, UnsafeUrlError) as exc:
        log.info("oauth callback refused: %s", type(exc).__name__)
        return _plain_error(exc)
    try:
        target = same_origin_path(redirect_after)
    except InvalidInputError as exc:
        return _plain_error(exc)
    response = RedirectResponse(target, status_code=302)
    response.headers["Cache-Control"] = "no-store"
    if state:
        # The flow is over; the browser has no further use for its cookie.
        response.delete_cookie(browser_cookie_name(state), path=CALLBACK_COOKIE_PATH)
    return response


async def _delete_own_credential(hub: Hub, caller: Caller, server_id: str, type: CredentialType) -> None:
    """Deletes the caller's credential of this type only (404 when there is none of that type)."""
    async with transaction(hub.sessions) as session:
        await get_server(session, server_id)
        await delete_credential(session, user_id=caller.user_id, server_id=server_id, type=type)
        action = "credential.oauth.delete" if type == CredentialType.oauth2 else "credential.byok.delete"
        audit.record(session, caller, action, target_type="server", target_id=server_id)


@router.delete("/servers/{server_id}/oauth", status_code=204)
async def oauth_disconnect(server_id: str, hub: HubDep, caller: UserDep) -> Response:
    """Removes the caller's OAuth tokens for the server (never a BYOK key)."""
    await _delete_own_credential(hub, caller, server_id, CredentialType.oauth2)
    return Response(status_code=204)


# --- BYOK ----------------------------------------------------------------------------------------------


class ByokIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: SecretStr = Field(description="your API key for this server (write-only; stored encrypted)")
    replace: bool = Field(default=False, description="replace stored OAuth tokens for this server, if any")

    @field_validator("key")
    @classmethod
    def _plain_key(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not 1 <= len(secret) <= MAX_KEY_CHARS:
            raise ValueError(f"key must be 1 to {MAX_KEY_CHARS} characters")
        if _CONTROL.search(secret):
            # It may end up in an HTTP header: no CR/LF or other control characters.
            raise ValueError("key must not contain control characters")
        return value


class CredentialSet(BaseModel):
    server_id: str
    type: Literal["byok", "oauth2"]
    set: bool = True
    updated_at: datetime


@router.put("/servers/{server_id}/credential", response_model=CredentialSet)
async def byok_put(server_id: str, body: ByokIn, hub: HubDep, caller: UserDep) -> CredentialSet:
    """Stores the caller's own key for a BYOK server. The response only says that it is set, and when."""
    async with transaction(hub.sessions) as session:
        server = await _usable_server(session, caller, server_id)
        if server.auth_type != AuthType.byok.value:
            raise InvalidInputError(
                f"server {server.name!r} does not take a user key (auth_type {server.auth_type})"
            )
        row = await put_credential(
            session,
            hub.keyring,
            user_id=caller.user_id,
            server_id=server.id,
            type=CredentialType.byok,
            payload={"key": body.key.get_secret_value()},
            replace=body.replace,
        )
        audit.record(session, caller, "credential.byok.put", target_type="server", target_id=server.id)
    return CredentialSet(server_id=server.id, type="byok", updated_at=row.updated_at)


@router.delete("/servers/{server_id}/credential", status_code=204)
async def byok_delete(server_id: str, hub: HubDep, caller: UserDep) -> Response:
    """Removes the caller's BYOK key for the server (never OAuth tokens)."""
    await _delete_own_credential(hub, caller, server_id, CredentialType.byok)
    return Response(status_code=204)


# --- listing -------------------------------------------------------------------------------------------


class CredentialOut(BaseModel):
    id: str
    server_id: str
    server_name: str
    type: str
    status: str
    expires_at: datetime | None = Field(description="raw expiry, also when already past; null: no expiry")
    created_at: datetime
    updated_at: datetime


class CredentialPage(BaseModel):
    items: list[CredentialOut]
    next_cursor: str | None


@router.get("/credentials", response_model=CredentialPage)
async def list_credentials(
    hub: HubDep,
    caller: UserDep,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> CredentialPage:
    """The caller's own credentials: type, server, status and expiry. Never a secret."""
    query = (
        select(
            McpUserCredential.id,
            McpUserCredential.server_id,
            McpServer.name,
            McpUserCredential.type,
            McpUserCredential.status,
            McpUserCredential.expires_at,
            McpUserCredential.created_at,
            McpUserCredential.updated_at,
        )
        .join(McpServer, McpServer.id == McpUserCredential.server_id)
        .where(McpUserCredential.user_id == caller.user_id)
        .order_by(McpUserCredential.id)
        .limit(limit)
    )
    if cursor:
        query = query.where(McpUserCredential.id > cursor)
    async with transaction(hub.sessions) as session:
        rows = (await session.execute(query)).all()
    items = [
        CredentialOut(
            id=row[0],
            server_id=row[1],
            server_name=row[2],
            type=row[3],
            status=row[4],
            expires_at=row[5],
            created_at=row[6],
            updated_at=row[7],
        )
        for row in rows
    ]
    return CredentialPage(items=items, next_cursor=items[-1].id if len(items) == limit else None)
