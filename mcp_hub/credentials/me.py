"""`GET /v1/me/servers`: every server the caller may use, with the state of the caller's own credential for
it, so My connections can list servers not connected yet. Never a secret, never a server the caller may
not use."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import Select, or_, select

from mcp_hub.admin.routes import PAGE_DEFAULT, Cursor, Limit
from mcp_hub.auth.deps import HubDep, UserDep
from mcp_hub.auth.keys import Caller
from mcp_hub.credentials.oauth import connect_url
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import PER_USER_AUTH_TYPES, Access, McpServer, McpServerUser, McpUserCredential

router = APIRouter(prefix="/v1", tags=["credentials"])


class MyServer(BaseModel):
    id: str
    name: str
    alias: str
    description: str | None
    auth_type: str
    per_user: bool = Field(description="true when the server is used with your own credential")
    credential_type: str | None = Field(description="oauth2 or byok when you have one stored, else null")
    credential_status: str | None = Field(description="active or needs_reconnect; null without a credential")
    expires_at: datetime | None = Field(description="raw expiry of your token, also when already past")
    connected_at: datetime | None = Field(description="when your credential was last stored")
    connect_url: str | None = Field(description="where you connect it (per-user servers only)")


class MyServerPage(BaseModel):
    items: list[MyServer]
    next_cursor: str | None


def usable_servers_query(caller: Caller) -> Select[McpServer]:
    """The enabled servers `caller` may use, in SQL: the same rule as auth.context.server_visible_to (a
    test holds the two together), so a page is filled from the database, not filtered afterwards."""
    listed = select(McpServerUser.server_id).where(McpServerUser.user_id == caller.user_id)
    query = select(McpServer).where(
        McpServer.enabled.is_(True),
        or_(
            McpServer.access.in_([Access.public.value, Access.all_users.value]),
            McpServer.id.in_(listed),
        ),
    )
    if caller.allowed_servers is not None:
        query = query.where(McpServer.name.in_(sorted(caller.allowed_servers)))
    return query


@router.get("/me/servers", response_model=MyServerPage)
async def my_servers(
    hub: HubDep,
    caller: UserDep,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
) -> MyServerPage:
    """Every server the caller's key may use (ordered by id, paginated), with the caller's own
    credential state for it."""
    query = usable_servers_query(caller).order_by(McpServer.id).limit(limit)
    if cursor:
        query = query.where(McpServer.id > cursor)
    async with transaction(hub.sessions) as session:
        rows = list((await session.scalars(query)).all())
        ids = [row.id for row in rows]
        credentials = (
            {
                credential.server_id: credential
                for credential in await session.execute(
                    select(
                        McpUserCredential.server_id,
                        McpUserCredential.type,
                        McpUserCredential.status,
                        McpUserCredential.expires_at,
                        McpUserCredential.updated_at,
                    ).where(McpUserCredential.user_id == caller.user_id, McpUserCredential.server_id.in_(ids))
                )
            }
            if ids
            else {}
        )
    items = []
    for row in rows:
        per_user = row.auth_type in PER_USER_AUTH_TYPES
        stored = credentials.get(row.id) if per_user else None
        # As the resolver sees it: a credential of another type than the server's does not count.
        credential = stored if stored is not None and stored.type == row.auth_type else None
        items.append(
            MyServer(
                id=row.id,
                name=row.name,
                alias=row.alias,
                description=row.description,
                auth_type=row.auth_type,
                per_user=per_user,
                credential_type=credential.type if credential else None,
                credential_status=credential.status if credential else None,
                expires_at=credential.expires_at if credential else None,
                connected_at=credential.updated_at if credential else None,
                connect_url=connect_url(hub, row.id) if per_user else None,
            )
        )
    return MyServerPage(items=items, next_cursor=ids[-1] if len(ids) == limit else None)
