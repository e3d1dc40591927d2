"""FastAPI dependencies shared by the REST routers: the Hub, and who is calling (any user, or an admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mcp_hub.auth.keys import Caller, authenticate_key, bearer_token
from mcp_hub.errors import AuthenticationError, PermissionDeniedError
from mcp_hub.runtime import Hub
from mcp_hub.store.engine import transaction


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


async def _caller(request: Request, hub: Hub, missing: str) -> Caller:
    presented = bearer_token(request.headers.get("authorization"))
    if presented is None:
        raise AuthenticationError(missing)
    async with transaction(hub.sessions) as session:
        return await authenticate_key(session, presented)


async def require_user(request: Request, hub: HubDep) -> Caller:
    return await _caller(request, hub, "send your hub API key as `Authorization: Bearer <key>`")


async def require_admin(request: Request, hub: HubDep) -> Caller:
    caller = await _caller(request, hub, "send an admin API key as `Authorization: Bearer <key>`")
    if not caller.is_admin:
        raise PermissionDeniedError("this API key is not an admin key")
    return caller


UserDep = Annotated[Caller, Depends(require_user)]
AdminDep = Annotated[Caller, Depends(require_admin)]
