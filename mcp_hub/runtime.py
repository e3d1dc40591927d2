"""The hub's long-lived parts (settings, database, keyring), opened once and shared by the web app and
the CLI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mcp_hub.auth.keys import SHOWN_PREFIX_LENGTH, generate_api_key, hash_api_key
from mcp_hub.credentials.netguard import UrlGuard
from mcp_hub.crypto import Keyring, load_keyring
from mcp_hub.settings import Settings
from mcp_hub.store.engine import create_engine, ensure_schema, session_factory, transaction
from mcp_hub.store.models import ApiKey, User

log = logging.getLogger(__name__)

BOOTSTRAP_USER = "admin"


@dataclass
class Hub:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: Keyring
    # Judges every URL fetched on someone else's say (OAuth discovery, registration, tokens).
    url_guard: UrlGuard = field(default_factory=UrlGuard)


@asynccontextmanager
async def open_hub(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Hub]:
    """Opens the database (migrating SQLite, checking PostgreSQL) and the keyring."""
    # The data dir holds the SQLite file and the generated keys: only the hub's user may read it.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keyring = load_keyring(
        settings.encryption_keys.get_secret_value() if settings.encryption_keys else None, settings.key_file
    )
    engine = create_engine(settings.resolved_database_url)
    try:
        if migrate:
            await ensure_schema(engine)
        yield Hub(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            keyring=keyring,
            url_guard=UrlGuard.from_list(settings.oauth_allowed_hosts),
        )
    finally:
        await engine.dispose()


async def bootstrap_admin_key(hub: Hub) -> str | None:
    """Makes sure an admin can get in. With MCP_HUB_ADMIN_KEY set, that key is registered (hashed);
    otherwise, when no admin key exists yet, one is generated and returned so the caller can print it
    once. Returns None when nothing new needs to be shown."""
    configured = hub.settings.admin_key.get_secret_value() if hub.settings.admin_key else None
    async with transaction(hub.sessions) as session:
        if configured:
            known = await session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_api_key(configured)))
            if known is None:
                user = await _bootstrap_user(session)
                session.add(
                    ApiKey(
                        user_id=user.id,
                        name="bootstrap (MCP_HUB_ADMIN_KEY)",
                        prefix=configured[:SHOWN_PREFIX_LENGTH],
                        key_hash=hash_api_key(configured),
                        is_admin=True,
                    )
                )
            return None
        has_admin = await session.scalar(
            select(ApiKey.id).where(ApiKey.is_admin.is_(True), ApiKey.revoked_at.is_(None)).limit(1)
        )
        if has_admin is not None:
            return None
        user = await _bootstrap_user(session)
        new_key = generate_api_key()
        session.add(
            ApiKey(
                user_id=user.id,
                name="bootstrap",
                prefix=new_key.prefix,
                key_hash=new_key.key_hash,
                is_admin=True,
            )
        )
        return new_key.plaintext


async def _bootstrap_user(session: AsyncSession) -> User:
    user = await session.scalar(select(User).where(User.name == BOOTSTRAP_USER))
    if user is None:
        user = User(name=BOOTSTRAP_USER)
        session.add(user)
        await session.flush()
    return user
