"""The admin tests' app runs its lifespan in a task of its own: the lifespan now holds the MCP gateway's
task group, whose cancel scope must be entered and exited by the same task, and pytest-asyncio runs a
fixture's setup and teardown as two different tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from mcp_hub.app import create_app
from mcp_hub.settings import Settings
from mcp_hub.store.engine import create_engine, upgrade


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    engine = create_engine(settings.resolved_database_url)
    await upgrade(engine)  # PostgreSQL is never migrated by the app itself
    await engine.dispose()
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
