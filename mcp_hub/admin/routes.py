"""Admin REST API: /v1/servers, /v1/users, /v1/keys. Every endpoint needs an admin key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from mcp_hub.admin.schemas import (
    KeyCreate,
    KeyCreated,
    KeyOut,
    Page,
    ServerCreate,
    ServerOut,
    ServerUpdate,
    UserCreate,
    UserOut,
    UserUpdate,
)
from mcp_hub.auth.context import access_changed
from mcp_hub.auth.deps import AdminDep, HubDep
from mcp_hub.errors import InvalidInputError, InvalidSpecError
from mcp_hub.openapi.runtime import OpenApiRuntime
from mcp_hub.store import audit, servers, users
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import ApiKey, User


class WriteOnlyInputRoute(APIRoute):
    """Keeps FastAPI's 422 `detail` array but drops each error's `input`: pydantic echoes the offending
    value there (for a model-level error, the whole body), which would send a client secret, header or env
    value back in the response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def without_echoed_input(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise RequestValidationError(_strip_input(exc.errors())) from None

        return without_echoed_input


def _strip_input(errors: Any) -> list[dict[str, Any]]:
    return [{key: value for key, value in error.items() if key != "input"} for error in errors]


async def _after_admin_change(request: Request) -> AsyncIterator[None]:
    # Runs on after the endpoint, so after its transaction committed: MCP requests from then on see the
    # change (a cached authentication would otherwise hide a new server for a few seconds).
    yield
    if request.method not in ("GET", "HEAD"):
        access_changed()


router = APIRouter(prefix="/v1", route_class=WriteOnlyInputRoute, dependencies=[Depends(_after_admin_change)])

PAGE_DEFAULT = 50
PAGE_MAX = 200
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="page size")]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")]


def _next_cursor(ids: list[str], limit: int) -> str | None:
    return ids[-1] if len(ids) == limit else None


def _as_validation_error(exc: InvalidInputError) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": exc.message, "type": "value_error"}])


# --- servers -------------------------------------------------------------------------------------------


@router.get("/servers", response_model=Page[ServerOut], tags=["servers"])
async def list_servers(
    hub: HubDep, _admin: AdminDep, limit: Limit = PAGE_DEFAULT, cursor: Cursor = None
) -> Page[ServerOut]:
    async with transaction(hub.sessions) as session:
        rows = await servers.list_servers(session, limit=limit, after=cursor)
        allowed = await servers.allowed_users_by_server(session, [row.id for row in rows])
    items = [servers.server_out(hub.keyring, row, allowed[row.id]) for row in rows]
    return Page(items=items, next_cursor=_next_cursor([row.id for row in rows], limit))


def _spec_problems(exc: InvalidSpecError) -> RequestValidationError:
    return RequestValidationError(
        [
            {"loc": ("body", "spec_location"), "msg": problem, "type": "value_error"}
            for problem in exc.problems
        ]
    )


async def _read_spec(
    request: Request, hub: HubDep, *, location: str, headers: Mapping[str, str], base_url: str | None
) -> dict[str, Any]:
    """Reads and validates an OpenAPI document with the server's own headers (a spec behind auth);
    file paths only inside MCP_HUB_OPENAPI_SPEC_DIRS, since the caller is remote."""
    runtime: OpenApiRuntime = request.app.state.gateway.openapi
    try:
        loaded = await runtime.load(
            location, headers=headers, base_url_override=base_url, file_roots=hub.settings.openapi_spec_dirs
        )
    except InvalidSpecError as exc:
        raise _spec_problems(exc) from None
    return loaded.document


async def spec_document_for(request: Request, hub: HubDep, body: ServerCreate) -> dict[str, Any] | None:
    """The validated OpenAPI document of a server form (None when it is not OpenAPI-backed): a create
    and the connection test of an unsaved form read it the same way."""
    if body.transport != "http" or not body.spec_location:
        return None
    return await _read_spec(
        request, hub, location=body.spec_location, headers=body.headers or {}, base_url=body.openapi_base_url
    )


@router.post("/servers", response_model=ServerOut, status_code=201, tags=["servers"])
async def create_server(body: ServerCreate, request: Request, hub: HubDep, admin: AdminDep) -> ServerOut:
    document = await spec_document_for(request, hub, body)
    try:
        async with transaction(hub.sessions) as session:
            server = await servers.create_server(session, hub.keyring, body, spec_document=document)
            audit.record(session, admin, "server.create", target_type="server", target_id=server.id)
            allowed = await servers.allowed_users_by_server(session, [server.id])
    except InvalidInputError as exc:
        raise _as_validation_error(exc) from None
    return servers.server_out(hub.keyring, server, allowed[server.id])


@router.get("/servers/{server_id}", response_model=ServerOut, tags=["servers"])
async def get_server(server_id: str, hub: HubDep, _admin: AdminDep) -> ServerOut:
    async with transaction(hub.sessions) as session:
        server = await servers.get_server(session, server_id)
        allowed = await servers.allowed_users_by_server(session, [server.id])
    return servers.server_out(hub.keyring, server, allowed[server.id])


async def _spec_for_update(
    request: Request, hub: HubDep, server_id: str, body: ServerUpdate
) -> dict[str, Any] | None:
    """The OpenAPI document re-read when a change alters what it was read with; None otherwise. Read
    before the update's transaction, so no database transaction waits on the network."""
    async with transaction(hub.sessions) as session:
        reading = servers.spec_reading_after(hub.keyring, await servers.get_server(session, server_id), body)
    if reading is None:
        return None
    return await _read_spec(
        request, hub, location=reading.location, headers=reading.headers, base_url=reading.base_url
    )


@router.patch("/servers/{server_id}", response_model=ServerOut, tags=["servers"])
async def update_server(
    server_id: str, body: ServerUpdate, request: Request, hub: HubDep, admin: AdminDep
) -> ServerOut:
    document = await _spec_for_update(request, hub, server_id, body)
    try:
        async with transaction(hub.sessions) as session:
            server = await servers.get_server(session, server_id)
            server = await servers.update_server(session, hub.keyring, server, body, spec_document=document)
            audit.record(
                session,
                admin,
                "server.update",
                target_type="server",
                target_id=server.id,
                detail={"fields": sorted(body.model_fields_set)},
            )
            allowed = await servers.allowed_users_by_server(session, [server.id])
    except InvalidInputError as exc:
        raise _as_validation_error(exc) from None
    return servers.server_out(hub.keyring, server, allowed[server.id])


@router.post("/servers/{server_id}/refresh", response_model=ServerOut, tags=["servers"])
async def refresh_server(server_id: str, request: Request, hub: HubDep, admin: AdminDep) -> ServerOut:
    """Reads an OpenAPI server's spec again (its tools change with it); 422 lists the problems of an
    invalid one, and the last good document stays in use."""
    async with transaction(hub.sessions) as session:
        reading = servers.spec_reading(hub.keyring, await servers.get_server(session, server_id))
    document = await _read_spec(
        request, hub, location=reading.location, headers=reading.headers, base_url=reading.base_url
    )
    async with transaction(hub.sessions) as session:
        server = await servers.get_server(session, server_id)
        servers.set_spec_document(server, document)
        audit.record(session, admin, "server.refresh", target_type="server", target_id=server.id)
        await session.flush()
        allowed = await servers.allowed_users_by_server(session, [server.id])
    return servers.server_out(hub.keyring, server, allowed[server.id])


@router.delete("/servers/{server_id}", status_code=204, tags=["servers"])
async def delete_server(server_id: str, hub: HubDep, admin: AdminDep) -> Response:
    async with transaction(hub.sessions) as session:
        server = await servers.get_server(session, server_id)
        await servers.delete_server(session, server)
        audit.record(session, admin, "server.delete", target_type="server", target_id=server_id)
    return Response(status_code=204)


# --- users ---------------------------------------------------------------------------------------------


def _user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


@router.get("/users", response_model=Page[UserOut], tags=["users"])
async def list_users(
    hub: HubDep, _admin: AdminDep, limit: Limit = PAGE_DEFAULT, cursor: Cursor = None
) -> Page[UserOut]:
    async with transaction(hub.sessions) as session:
        rows = await users.list_users(session, limit=limit, after=cursor)
    return Page(
        items=[_user_out(row) for row in rows], next_cursor=_next_cursor([row.id for row in rows], limit)
    )


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
async def create_user(body: UserCreate, hub: HubDep, admin: AdminDep) -> UserOut:
    async with transaction(hub.sessions) as session:
        user = await users.create_user(session, body.name, body.email)
        audit.record(session, admin, "user.create", target_type="user", target_id=user.id)
    return _user_out(user)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
async def get_user(user_id: str, hub: HubDep, _admin: AdminDep) -> UserOut:
    async with transaction(hub.sessions) as session:
        return _user_out(await users.get_user(session, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
async def update_user(user_id: str, body: UserUpdate, hub: HubDep, admin: AdminDep) -> UserOut:
    async with transaction(hub.sessions) as session:
        user = await users.get_user(session, user_id)
        user = await users.update_user(
            session, user, name=body.name, email=body.email, disabled=body.disabled
        )
        audit.record(session, admin, "user.update", target_type="user", target_id=user.id)
    return _user_out(user)


@router.delete("/users/{user_id}", status_code=204, tags=["users"])
async def delete_user(user_id: str, hub: HubDep, admin: AdminDep) -> Response:
    if user_id == admin.user_id:
        raise InvalidInputError("you cannot delete the user whose key you are using")
    async with transaction(hub.sessions) as session:
        user = await users.get_user(session, user_id)
        await users.delete_user(session, user)
        audit.record(session, admin, "user.delete", target_type="user", target_id=user_id)
    return Response(status_code=204)


# --- keys ----------------------------------------------------------------------------------------------


def _key_out(key: ApiKey) -> KeyOut:
    return KeyOut.model_validate(key, from_attributes=True)


@router.get("/keys", response_model=Page[KeyOut], tags=["keys"])
async def list_keys(
    hub: HubDep,
    _admin: AdminDep,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[KeyOut]:
    async with transaction(hub.sessions) as session:
        rows = await users.list_keys(session, limit=limit, after=cursor, user_id=user_id)
    return Page(
        items=[_key_out(row) for row in rows], next_cursor=_next_cursor([row.id for row in rows], limit)
    )


@router.post("/keys", response_model=KeyCreated, status_code=201, tags=["keys"])
async def create_key(body: KeyCreate, hub: HubDep, admin: AdminDep) -> KeyCreated:
    async with transaction(hub.sessions) as session:
        user = await users.get_user(session, body.user_id)
        key, new_key = await users.create_key(
            session,
            user,
            name=body.name,
            is_admin=body.is_admin,
            allowed_servers=body.allowed_servers,
            allowed_tools=body.allowed_tools,
        )
        audit.record(
            session, admin, "key.create", target_type="key", target_id=key.id, detail={"admin": body.is_admin}
        )
    return KeyCreated(**_key_out(key).model_dump(), key=new_key.plaintext)


@router.get("/keys/{key_id}", response_model=KeyOut, tags=["keys"])
async def get_key(key_id: str, hub: HubDep, _admin: AdminDep) -> KeyOut:
    async with transaction(hub.sessions) as session:
        return _key_out(await users.get_key(session, key_id))


@router.delete("/keys/{key_id}", response_model=KeyOut, tags=["keys"])
async def revoke_key(key_id: str, hub: HubDep, admin: AdminDep) -> KeyOut:
    """Revokes the key (it stays listed, with `revoked_at`, for the audit trail)."""
    async with transaction(hub.sessions) as session:
        key = await users.revoke_key(session, await users.get_key(session, key_id))
        audit.record(session, admin, "key.revoke", target_type="key", target_id=key_id)
    return _key_out(key)
