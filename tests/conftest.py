"""Shared fixtures. Every database test runs twice: on a SQLite file and on the local PostgreSQL (a fresh
database per test, created from the migrations)."""

from __future__ import annotations

import asyncio
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


async def migrate(settings: Settings) -> None:
    """Brings the test database to the latest migration (PostgreSQL is never migrated by the app itself)."""
    from mcp_hub.store.engine import create_engine, upgrade

    engine = create_engine(settings.resolved_database_url)
    await upgrade(engine)
    await engine.dispose()


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    await migrate(settings)
    async with open_hub(settings) as opened:
        yield opened


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan run in one dedicated task: the lifespan holds anyio task groups (the
    gateway's session manager), whose cancel scopes must be entered and exited by the same task, and
    pytest-asyncio runs a fixture's setup and teardown as two different tasks."""
    await migrate(settings)
    application = create_app(settings)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with application.router.lifespan_context(application):
            started.set()
            await stop.wait()

    runner = asyncio.create_task(run_lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        waiter.cancel()
        runner.result()  # a failed startup raises here
    try:
        yield application
    finally:
        stop.set()
        await runner


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
