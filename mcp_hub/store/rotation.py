"""Re-wraps every secret under the keyring's primary key, in small batches, while the hub keeps running.

Each batch is its own transaction and locks only its rows (FOR UPDATE on PostgreSQL), so live traffic is
never blocked for long; a row written meanwhile is already under the primary key and is skipped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_hub.credentials.oauth import rewrap_state_verifier
from mcp_hub.credentials.store import read_payload, seal_payload
from mcp_hub.crypto import Keyring
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import Base, McpServer, McpUserCredential, OAuthState
from mcp_hub.store.servers import read_secrets, write_secrets

RowT = TypeVar("RowT", bound=Base)


@dataclass
class RotationReport:
    servers: int = 0
    credentials: int = 0
    oauth_states: int = 0


async def _rewrap_table(
    sessions: async_sessionmaker[AsyncSession],
    model: type[RowT],
    reseal: Callable[[RowT], None],
    primary: str,
    batch_size: int,
) -> int:
    """Re-seals, batch by batch, every row of `model` whose key_id is not the primary key."""
    key_id: Any = model.key_id  # type: ignore[attr-defined]
    row_id: Any = model.id  # type: ignore[attr-defined]
    done = 0
    while True:
        async with transaction(sessions) as session:
            rows = list(
                (
                    await session.scalars(
                        select(model)
                        .where(key_id.is_not(None), key_id != primary)
                        .order_by(row_id)
                        .limit(batch_size)
                        .with_for_update()
                    )
                ).all()
            )
            for row in rows:
                reseal(row)
        done += len(rows)
        if len(rows) < batch_size:
            return done


async def rotate_all(
    sessions: async_sessionmaker[AsyncSession], keyring: Keyring, *, batch_size: int
) -> RotationReport:
    primary = keyring.primary_id

    def reseal_server(server: McpServer) -> None:
        write_secrets(keyring, server, read_secrets(keyring, server))

    def reseal_credential(row: McpUserCredential) -> None:
        seal_payload(keyring, row, read_payload(keyring, row))

    def reseal_state(state: OAuthState) -> None:
        rewrap_state_verifier(keyring, state)

    return RotationReport(
        servers=await _rewrap_table(sessions, McpServer, reseal_server, primary, batch_size),
        credentials=await _rewrap_table(sessions, McpUserCredential, reseal_credential, primary, batch_size),
        oauth_states=await _rewrap_table(sessions, OAuthState, reseal_state, primary, batch_size),
    )
