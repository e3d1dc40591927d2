"""Declarative server configuration (`mcp-hub servers apply FILE`): make the stored servers match a list,
touching only what differs, so applying the same file twice changes nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.admin.schemas import ServerCreate, ServerFields, default_alias
from mcp_hub.crypto import Keyring
from mcp_hub.store.models import Access, AuthType, McpServer
from mcp_hub.store.servers import (
    PLAIN_FIELDS,
    allowed_users_by_server,
    create_server,
    delete_server,
    oauth_defaults,
    read_secrets,
    update_server,
)

SPEC_DOCUMENT = "spec_document"

# What a field is when the file does not give it (the same defaults a create gets).
DEFAULTS: dict[str, Any] = {
    "args": [],
    "scopes": [],
    "auth_type": AuthType.none.value,
    "access": Access.all_users.value,
    "enabled": True,
}


def _desired_state(spec: ServerCreate, spec_document: dict[str, Any] | None) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for field in PLAIN_FIELDS:
        value = getattr(spec, field)
        value = value.value if hasattr(value, "value") else value
        state[field] = DEFAULTS.get(field) if value is None else value
    state["alias"] = spec.alias or default_alias(spec.name)
    state["env"] = spec.env or {}
    state["headers"] = spec.headers or {}
    state["client_secret"] = spec.client_secret.get_secret_value() if spec.client_secret else None
    state["allowed_users"] = sorted(set(spec.allowed_users or []))
    state[SPEC_DOCUMENT] = spec_document
    if spec_document is not None:
        # What the stored row will hold once its spec fills in OAuth endpoints, so a second apply of
        # the same file finds nothing to change.
        state["authorization_url"], state["token_url"], state["scopes"] = oauth_defaults(
            auth_type=state["auth_type"],
            authorization_url=state["authorization_url"],
            token_url=state["token_url"],
            scopes=state["scopes"],
            document=spec_document,
            spec_location=state["spec_location"],
        )
    return state


def _current_state(keyring: Keyring, server: McpServer, allowed_users: list[str]) -> dict[str, Any]:
    secrets = read_secrets(keyring, server)
    state = {field: getattr(server, field) for field in PLAIN_FIELDS}
    state.update(
        env=secrets.env,
        headers=secrets.headers,
        client_secret=secrets.client_secret,
        allowed_users=sorted(allowed_users),
    )
    state[SPEC_DOCUMENT] = server.spec_document
    return state


async def apply_servers(
    session: AsyncSession,
    keyring: Keyring,
    specs: Sequence[ServerCreate],
    *,
    prune: bool,
    spec_documents: Mapping[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Returns one line per server saying what happened to it. `spec_documents` holds the OpenAPI
    documents of the OpenAPI servers, by server name, read and validated by the caller (outside the
    transaction): a spec that changed upstream makes its server "updated"."""
    documents = spec_documents or {}
    names = [spec.name for spec in specs]
    existing = {
        server.name: server
        for server in (await session.scalars(select(McpServer).where(McpServer.name.in_(names)))).all()
    }
    allowed = await allowed_users_by_server(session, [server.id for server in existing.values()])
    lines: list[str] = []
    for spec in specs:
        server = existing.get(spec.name)
        document = documents.get(spec.name)
        if server is None:
            await create_server(session, keyring, spec, spec_document=document)
            lines.append(f"created {spec.name}")
            continue
        desired = _desired_state(spec, document)
        if desired == _current_state(keyring, server, allowed[server.id]):
            lines.append(f"unchanged {spec.name}")
            continue
        changes = ServerFields.model_validate({k: v for k, v in desired.items() if k != SPEC_DOCUMENT})
        await update_server(session, keyring, server, changes, spec_document=document)
        lines.append(f"updated {spec.name}")
    if prune:
        extra = (
            await session.scalars(
                select(McpServer).where(McpServer.name.not_in(names)).order_by(McpServer.id)
            )
        ).all()
        for server in extra:
            await delete_server(session, server)
            lines.append(f"removed {server.name}")
    return lines
