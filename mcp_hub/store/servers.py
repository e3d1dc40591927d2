"""Repository of upstream servers: the one place that writes `mcp_servers` rows and their secrets."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.admin.schemas import (
    OPENAPI_FIELDS,
    ServerCreate,
    ServerFields,
    ServerOut,
    check_server_shape,
    default_alias,
)
from mcp_hub.crypto import Keyring, RowBinding
from mcp_hub.errors import ConflictError, InvalidInputError, NotFoundError
from mcp_hub.openapi.spec import oauth_endpoints
from mcp_hub.store.models import AuthType, McpServer, McpServerUser, User, new_id, utcnow

TABLE = "mcp_servers"
SECRET_FIELDS = ("env", "headers", "client_secret")
PLAIN_FIELDS = (
    "alias",
    "description",
    "transport",
    "url",
    "spec_location",
    "command",
    "args",
    "auth_type",
    "authorization_url",
    "token_url",
    "registration_url",
    "issuer",
    "client_id",
    "scopes",
    "allowed_tools",
    "access",
    "enabled",
    "timeout_seconds",
    "byok_mode",
    "byok_name",
    "byok_template",
    "openapi_base_url",
    "openapi_include",
    "openapi_exclude",
)


@dataclass(frozen=True)
class ServerSecrets:
    env: dict[str, str]
    headers: dict[str, str]
    client_secret: str | None


def _binding(server: McpServer, field: str) -> RowBinding:
    return RowBinding(table=TABLE, row_id=server.id, field=field, server_id=server.id)


def read_secrets(keyring: Keyring, server: McpServer) -> ServerSecrets:
    def _open(ciphertext: bytes | None, field: str) -> Any:
        if ciphertext is None:
            return None
        assert server.key_id is not None, "encrypted field without key id"
        return keyring.decrypt_json(ciphertext, server.key_id, _binding(server, field))

    return ServerSecrets(
        env=_open(server.env_encrypted, "env") or {},
        headers=_open(server.headers_encrypted, "headers") or {},
        client_secret=_open(server.client_secret_encrypted, "client_secret"),
    )


def write_secrets(keyring: Keyring, server: McpServer, secrets: ServerSecrets) -> None:
    """(Re-)encrypts all of a row's secrets under the keyring's primary key."""

    def _seal(value: Any, field: str) -> bytes | None:
        if value is None or value == {}:
            return None
        ciphertext, _ = keyring.encrypt_json(value, _binding(server, field))
        return ciphertext

    server.env_encrypted = _seal(secrets.env, "env")
    server.headers_encrypted = _seal(secrets.headers, "headers")
    server.client_secret_encrypted = _seal(secrets.client_secret, "client_secret")
    server.key_id = keyring.primary_id


def _secret_updates(fields: ServerFields, current: ServerSecrets) -> ServerSecrets:
    given = fields.model_fields_set
    return ServerSecrets(
        env=(fields.env or {}) if "env" in given else current.env,
        headers=(fields.headers or {}) if "headers" in given else current.headers,
        client_secret=(fields.client_secret.get_secret_value() if fields.client_secret else None)
        if "client_secret" in given
        else current.client_secret,
    )


async def _check_users_exist(session: AsyncSession, user_ids: Sequence[str]) -> None:
    if not user_ids:
        return
    found = set((await session.scalars(select(User.id).where(User.id.in_(set(user_ids))))).all())
    missing = sorted(set(user_ids) - found)
    if missing:
        raise InvalidInputError(f"allowed_users names unknown user ids: {', '.join(missing[:10])}")


async def _set_allowed_users(session: AsyncSession, server_id: str, user_ids: Sequence[str]) -> None:
    await _check_users_exist(session, user_ids)
    await session.execute(delete(McpServerUser).where(McpServerUser.server_id == server_id))
    session.add_all(McpServerUser(server_id=server_id, user_id=user_id) for user_id in sorted(set(user_ids)))


def set_spec_document(server: McpServer, document: dict[str, Any] | None) -> None:
    """Stores a freshly validated OpenAPI document; drops the stored one when the server stops being
    OpenAPI-backed."""
    if server.transport != "http" or not server.spec_location:
        server.spec_document = None
        server.spec_fetched_at = None
        return
    if document is not None:
        server.spec_document = document
        server.spec_fetched_at = utcnow()
    if server.spec_document is not None:
        server.authorization_url, server.token_url, server.scopes = oauth_defaults(
            auth_type=server.auth_type,
            authorization_url=server.authorization_url,
            token_url=server.token_url,
            scopes=list(server.scopes or []),
            document=server.spec_document,
            spec_location=server.spec_location,
        )


def oauth_defaults(
    *,
    auth_type: str,
    authorization_url: str | None,
    token_url: str | None,
    scopes: list[str],
    document: dict[str, Any],
    spec_location: str | None,
) -> tuple[str | None, str | None, list[str]]:
    """An OAuth2 OpenAPI server without an authorization URL set by an admin takes its endpoints (and,
    without scopes of its own, the scopes its operations ask for) from its spec's oauth2 scheme."""
    if auth_type != AuthType.oauth2.value or authorization_url:
        return authorization_url, token_url, scopes
    found = oauth_endpoints(document, spec_location)
    if found is None:
        return authorization_url, token_url, scopes
    return found.authorization_url, token_url or found.token_url, scopes or found.scopes


def new_server_row(
    keyring: Keyring, spec: ServerCreate, *, spec_document: dict[str, Any] | None = None
) -> McpServer:
    """The row a create would insert, not yet in any session (the connection test of an unsaved form
    uses it as is, so a tested form and a saved server reach the upstream the same way)."""
    # The id is known before the insert because it is part of the secrets' associated data.
    server = McpServer(id=new_id(), name=spec.name, args=[], scopes=[])
    for field in PLAIN_FIELDS:
        value = getattr(spec, field)
        if value is not None:
            setattr(server, field, value.value if hasattr(value, "value") else value)
    server.alias = spec.alias or default_alias(spec.name)
    if spec.transport == "http" and spec.spec_location and spec_document is None:
        raise InvalidInputError(f"server {spec.name!r} needs its OpenAPI document read and validated first")
    set_spec_document(server, spec_document)
    write_secrets(keyring, server, _secret_updates(spec, ServerSecrets({}, {}, None)))
    return server


async def create_server(
    session: AsyncSession,
    keyring: Keyring,
    spec: ServerCreate,
    *,
    spec_document: dict[str, Any] | None = None,
) -> McpServer:
    server = new_server_row(keyring, spec, spec_document=spec_document)
    session.add(server)
    await _flush_unique(session, spec.name)
    if spec.allowed_users:
        await _set_allowed_users(session, server.id, spec.allowed_users)
        await session.flush()
    return server


async def update_server(
    session: AsyncSession,
    keyring: Keyring,
    server: McpServer,
    changes: ServerFields,
    *,
    spec_document: dict[str, Any] | None = None,
) -> McpServer:
    given = changes.model_fields_set
    merged = {
        field: getattr(changes, field) if field in given else getattr(server, field) for field in PLAIN_FIELDS
    }
    try:
        check_server_shape(
            transport=merged["transport"],
            url=merged["url"],
            spec_location=merged["spec_location"],
            command=merged["command"],
            openapi_settings=any(merged[name] for name in OPENAPI_FIELDS),
        )
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    if spec_document is None and spec_reading_after(keyring, server, changes) is not None:
        raise InvalidInputError("changing an OpenAPI server's spec settings needs its document read again")
    if "name" in given and getattr(changes, "name", None):
        server.name = changes.name  # type: ignore[attr-defined]
    for field in PLAIN_FIELDS:
        if field in given:
            value = getattr(changes, field)
            if value is None and field in ("args", "scopes"):
                value = []
            if value is None and field in ("auth_type", "access", "enabled", "transport", "alias"):
                raise InvalidInputError(f"{field} cannot be null")
            setattr(server, field, value.value if hasattr(value, "value") else value)
    set_spec_document(server, spec_document)
    if given & set(SECRET_FIELDS):
        write_secrets(keyring, server, _secret_updates(changes, read_secrets(keyring, server)))
    if "allowed_users" in given:
        await _set_allowed_users(session, server.id, changes.allowed_users or [])
    await _flush_unique(session, server.name)
    return server


@dataclass(frozen=True)
class SpecReading:
    """What an OpenAPI server's spec is read with: its location, the server's own headers (a spec behind
    auth) and the base URL override the SSRF guard must approve."""

    location: str
    headers: dict[str, str] = dataclasses.field(repr=False)
    base_url: str | None


def spec_reading(keyring: Keyring, server: McpServer) -> SpecReading:
    """For a refresh; InvalidInputError when the server is not OpenAPI-backed."""
    if server.transport != "http" or not server.spec_location:
        raise InvalidInputError(f"server {server.name!r} is not OpenAPI-backed: nothing to refresh")
    return SpecReading(
        location=server.spec_location,
        headers=read_secrets(keyring, server).headers,
        base_url=server.openapi_base_url,
    )


def spec_reading_after(keyring: Keyring, server: McpServer, changes: ServerFields) -> SpecReading | None:
    """What to read the spec with when `changes` alter what the stored document was read or validated
    with (transport, location, the headers it was fetched with, the base URL the SSRF guard approved)
    and the server stays OpenAPI-backed; None when the stored document still holds. Values are compared,
    not field presence: an edit form that sends every field does not refetch the spec."""
    given = changes.model_fields_set
    stored = read_secrets(keyring, server).headers

    def after(name: str, current: Any) -> Any:
        return getattr(changes, name) if name in given else current

    transport = after("transport", server.transport)
    location = after("spec_location", server.spec_location)
    base_url = after("openapi_base_url", server.openapi_base_url)
    headers = (changes.headers or {}) if "headers" in given else stored
    if transport != "http" or not location:
        return None
    if (transport, location, base_url, headers) == (
        server.transport,
        server.spec_location,
        server.openapi_base_url,
        stored,
    ) and server.spec_document is not None:
        return None
    return SpecReading(location=location, headers=headers, base_url=base_url)


async def _flush_unique(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise ConflictError(f"a server named {name!r} (or with the same alias) already exists") from None


async def get_server(session: AsyncSession, server_id: str) -> McpServer:
    server = await session.get(McpServer, server_id)
    if server is None:
        raise NotFoundError(f"no server with id {server_id!r}")
    return server


async def get_server_by_name(session: AsyncSession, name: str) -> McpServer:
    server = await session.scalar(select(McpServer).where(McpServer.name == name))
    if server is None:
        raise NotFoundError(f"no server named {name!r}")
    return server


async def list_servers(session: AsyncSession, *, limit: int, after: str | None = None) -> list[McpServer]:
    query = select(McpServer).order_by(McpServer.id).limit(limit)
    if after:
        query = query.where(McpServer.id > after)
    return list((await session.scalars(query)).all())


async def allowed_users_by_server(session: AsyncSession, server_ids: Sequence[str]) -> dict[str, list[str]]:
    """One query for the user lists of many servers (no N+1)."""
    result: dict[str, list[str]] = {server_id: [] for server_id in server_ids}
    if not server_ids:
        return result
    rows = await session.execute(
        select(McpServerUser.server_id, McpServerUser.user_id)
        .where(McpServerUser.server_id.in_(server_ids))
        .order_by(McpServerUser.server_id, McpServerUser.user_id)
    )
    for server_id, user_id in rows:
        result[server_id].append(user_id)
    return result


async def delete_server(session: AsyncSession, server: McpServer) -> None:
    await session.delete(server)
    await session.flush()


def server_out(keyring: Keyring, server: McpServer, allowed_users: list[str]) -> ServerOut:
    secrets = read_secrets(keyring, server)
    return ServerOut(
        id=server.id,
        name=server.name,
        alias=server.alias,
        description=server.description,
        transport=server.transport,
        url=server.url,
        spec_location=server.spec_location,
        command=server.command,
        args=list(server.args or []),
        env_names=sorted(secrets.env),
        header_names=sorted(secrets.headers),
        auth_type=server.auth_type,
        authorization_url=server.authorization_url,
        token_url=server.token_url,
        registration_url=server.registration_url,
        client_id=server.client_id,
        client_secret_set=secrets.client_secret is not None,
        scopes=list(server.scopes or []),
        allowed_tools=server.allowed_tools,
        access=server.access,
        allowed_users=allowed_users,
        enabled=server.enabled,
        timeout_seconds=server.timeout_seconds,
        byok_mode=server.byok_mode,
        byok_name=server.byok_name,
        byok_template=server.byok_template,
        issuer=server.issuer,
        resource_metadata_url=server.resource_metadata_url,
        oauth_discovered_at=server.oauth_discovered_at,
        openapi_base_url=server.openapi_base_url,
        openapi_include=server.openapi_include,
        openapi_exclude=server.openapi_exclude,
        spec_fetched_at=server.spec_fetched_at,
        created_at=server.created_at,
        updated_at=server.updated_at,
    )
