"""Row locks that hold on both databases. PostgreSQL locks rows with `SELECT ... FOR UPDATE`; SQLite
ignores FOR UPDATE, and its driver runs a transaction's reads outside any transaction until the first
write, so two requests can both read "not there yet" and then both write. A no-op UPDATE as the first
statement takes the row lock on PostgreSQL and the database write lock on SQLite (other writers wait,
up to busy_timeout, and then read what this transaction committed)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.store.models import McpServer, McpUserCredential, User

LockableModel = type[User] | type[McpServer] | type[McpUserCredential]


async def lock_row(session: AsyncSession, model: LockableModel, row_id: str) -> None:
    """Locks one row until the transaction ends. Call it before the transaction's first read: on SQLite a
    read snapshot cannot be upgraded to a write once another connection has committed."""
    # updated_at = updated_at: an explicit value, so the column's onupdate does not fire and nothing changes.
    await session.execute(update(model).where(model.id == row_id).values(updated_at=model.updated_at))
