"""Re-wraps every secret under the keyring's primary key, in small batches, while the hub keeps running.

Each batch is its own transaction and locks only its rows (FOR UPDATE on PostgreSQL), so live traffic is
never blocked for long; a row written meanwhile is already under the primary key and is skipped."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_hub.credentials.store import read_payload, seal_payload
from mcp_hub.crypto import Keyring
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import McpServer, McpUserCredential
from mcp_hub.store.servers import read_secrets, write_secrets


@dataclass
class RotationReport:
    servers: int = 0
    credentials: int = 0


async def rotate_all(
    sessions: async_sessionmaker[AsyncSession], keyring: Keyring, *, batch_size: int
) -> RotationReport:
    report = RotationReport()
    primary = keyring.primary_id
    while True:
        async with transaction(sessions) as session:
            servers = list(
                (
                    await session.scalars(
                        select(McpServer)
                        .where(McpServer.key_id.is_not(None), McpServer.key_id != primary)
                        .order_by(McpServer.id)
                        .limit(batch_size)
                        .with_for_update()
                    )
                ).all()
            )
            for server in servers:
                write_secrets(keyring, server, read_secrets(keyring, server))
        report.servers += len(servers)
        if len(servers) < batch_size:
            break
    while True:
        async with transaction(sessions) as session:
            rows = list(
                (
                    await session.scalars(
                        select(McpUserCredential)
                        .where(McpUserCredential.key_id != primary)
                        .order_by(McpUserCredential.id)
                        .limit(batch_size)
                        .with_for_update()
                    )
                ).all()
            )
            for row in rows:
                seal_payload(keyring, row, read_payload(keyring, row))
        report.credentials += len(rows)
        if len(rows) < batch_size:
            break
    return report
