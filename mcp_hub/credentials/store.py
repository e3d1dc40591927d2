"""The one typed credential table, `mcp_user_credentials`: a user's OAuth2 tokens or BYOK key for one
server, encrypted and bound to its row, user, server and type."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.crypto import Keyring, RowBinding
from mcp_hub.errors import ConflictError, NotFoundError
from mcp_hub.store.locks import lock_row
from mcp_hub.store.models import CredentialStatus, CredentialType, McpUserCredential, User, new_id, utcnow

TABLE = "mcp_user_credentials"


def credential_binding(row: McpUserCredential) -> RowBinding:
    # The type is the bound "field": an OAuth payload relabelled as BYOK (or the reverse) fails to decrypt.
    return RowBinding(
        table=TABLE, row_id=row.id, field=row.type, user_id=row.user_id, server_id=row.server_id
    )


def read_payload(keyring: Keyring, row: McpUserCredential) -> dict[str, Any]:
    payload = keyring.decrypt_json(row.payload_encrypted, row.key_id, credential_binding(row))
    assert isinstance(payload, dict), "credential payloads are JSON objects"
    return payload


def seal_payload(keyring: Keyring, row: McpUserCredential, payload: dict[str, Any]) -> None:
    row.payload_encrypted, row.key_id = keyring.encrypt_json(payload, credential_binding(row))


async def find_credential(session: AsyncSession, user_id: str, server_id: str) -> McpUserCredential | None:
    return await session.scalar(
        select(McpUserCredential).where(
            McpUserCredential.user_id == user_id, McpUserCredential.server_id == server_id
        )
    )


async def put_credential(
    session: AsyncSession,
    keyring: Keyring,
    *,
    user_id: str,
    server_id: str,
    type: CredentialType,
    payload: dict[str, Any],
    expires_at: datetime | None = None,
    replace: bool = False,
) -> McpUserCredential:
    """Stores the user's credential for a server. Writing one type over the other is refused unless the
    caller says `replace`, so saving OAuth tokens never silently drops a BYOK key (or the reverse).

    Two writes for one user at once (two callbacks finishing together, two tabs saving a key) would both
    find no row and both insert, and the second would fail on the unique (user, server) constraint: the
    user's row is locked first, so they run one after the other and the second updates the first's row."""
    await lock_row(session, User, user_id)
    row = await find_credential(session, user_id, server_id)
    if row is not None and row.type != type.value:
        if not replace:
            raise ConflictError(
                f"this server already has a {row.type} credential for the user; remove it first or ask to replace it"
            )
        await session.delete(row)
        await session.flush()
        row = None
    if row is None:
        row = McpUserCredential(id=new_id(), user_id=user_id, server_id=server_id, type=type.value)
        session.add(row)
    row.expires_at = expires_at
    row.status = CredentialStatus.active.value
    row.updated_at = utcnow()
    seal_payload(keyring, row, payload)
    await session.flush()
    return row


async def delete_credential(
    session: AsyncSession, *, user_id: str, server_id: str, type: CredentialType
) -> None:
    """Deletes only a credential of the given type; anything else is 'not found'."""
    await lock_row(session, User, user_id)  # a concurrent delete or write then sees this one's outcome
    row = await find_credential(session, user_id, server_id)
    if row is None or row.type != type.value:
        raise NotFoundError(f"no {type.value} credential stored for this server")
    await session.delete(row)
    await session.flush()
