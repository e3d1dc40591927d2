"""Audit records: who did what to which object, and how it ended. Never holds a secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.auth.keys import Caller
from mcp_hub.store.models import AuditEvent


def record(
    session: AsyncSession,
    caller: Caller | None,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Adds the record to the caller's transaction, so it lands exactly when the change does."""
    session.add(
        AuditEvent(
            actor_user_id=caller.user_id if caller else None,
            actor_key_id=caller.key_id if caller else None,
            action=action,
            target_type=target_type,
            target_id=target_id,
            outcome=outcome,
            detail=detail,
        )
    )
