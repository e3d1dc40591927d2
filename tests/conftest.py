"""Shared fixtures. Every database test runs twice: on a SQLite file and on the local PostgreSQL (a fresh
database per test, created from the migrations)."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx2
import pytest
from fastapi import FastAPI

from mcp_hub.app import create_app
from mcp_hub.crypto import generate_key_entry
from mcp_hub.runtime import Hub, open_hub
from mcp_hub.settings import Settings

PG_ADMIN_DSN = os.environ.get("MCP_HUB_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_KEY = "mcph_test_admin_" + "a" * 32


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database; the test's hub migrates it."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    yield from _postgres_database()


def _postgres_database() -> Iterator[str]:
    import asyncio

    name = "mcphub_t_" + uuid.uuid4().hex[:12]

    async def _admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        encryption_keys=generate_key_entry(),
        admin_key=ADMIN_KEY,
    )


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    from mcp_hub.store.engine import create_engine, upgrade

    engine = create_engine(settings.resolved_database_url)
    await upgrade(engine)
    await engine.dispose()
    async with open_hub(settings) as opened:
        yield opened


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    from mcp_hub.store.engine import create_engine, upgrade

    engine = create_engine(settings.resolved_database_url)
    await upgrade(engine)  # PostgreSQL is never migrated by the app itself
    await engine.dispose()
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:4000"
    ) as c:
        yield c


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def random_name(prefix: str = "n") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"
