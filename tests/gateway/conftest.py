"""Fixtures for gateway tests: the hub on a real uvicorn port (the SDK clients need a URL), and helpers
to register upstream servers, users and keys through the admin API."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from fastapi import FastAPI

from mcp_hub.app import create_app
from mcp_hub.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.mcp_peers.procs import echo_upstream, free_port


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """Gateway tests run on SQLite only: the database is not what they test."""
    yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"


@dataclass
class RunningHub:
    url: str
    admin: httpx2.AsyncClient
    settings: Settings
    app: FastAPI

    async def add_server(self, name: str, **fields: Any) -> dict[str, Any]:
        response = await self.admin.post("/v1/servers", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def add_user(self, name: str) -> str:
        response = await self.admin.post("/v1/users", json={"name": name})
        assert response.status_code == 201, response.text
        user_id: str = response.json()["id"]
        return user_id

    async def add_key(self, user_id: str, **fields: Any) -> str:
        response = await self.admin.post("/v1/keys", json={"user_id": user_id, **fields})
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key

    async def add_stdio_echo(self, name: str, **fields: Any) -> dict[str, Any]:
        """tests/mcp_peers/echo_server.py as a stdio upstream called `name`."""
        return await self.add_server(
            name,
            transport="stdio",
            command=sys.executable,
            args=["-m", "tests.mcp_peers.echo_server", "stdio"],
            **fields,
        )

    async def update_server(self, server_id: str, **fields: Any) -> None:
        response = await self.admin.patch(f"/v1/servers/{server_id}", json=fields)
        assert response.status_code == 200, response.text


@contextlib.asynccontextmanager
async def serve_uvicorn(app: FastAPI, port: int, **config: Any) -> AsyncIterator[uvicorn.Server]:
    """`app` under uvicorn on 127.0.0.1:`port`, in an asyncio task of its own; waits up to 10 s for it to
    start (a failed startup raises), stops it on exit. Yields the server (check `.started` if it matters)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(400):
            if server.started or task.done():
                break
            await asyncio.sleep(0.025)
        if task.done():
            task.result()
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def serve_hub(settings: Settings) -> AsyncIterator[RunningHub]:
    port = free_port()
    settings = settings.model_copy(update={"port": port})
    app = create_app(settings)
    async with serve_uvicorn(app, port, lifespan="on") as server:
        assert server.started, "hub did not start"
        url = f"http://127.0.0.1:{port}"
        async with httpx2.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as admin:
            yield RunningHub(url=url, admin=admin, settings=settings, app=app)


@pytest.fixture
async def hub_server(settings: Settings) -> AsyncIterator[RunningHub]:
    # uvicorn runs in its own asyncio task, so this fixture's setup and teardown may run in different
    # tasks without upsetting anyio's cancel scopes.
    async with serve_hub(settings) as running:
        yield running


@pytest.fixture
def echo_http() -> Iterator[str]:
    with echo_upstream("http") as url:
        yield url


@pytest.fixture
def echo_sse() -> Iterator[str]:
    with echo_upstream("sse") as url:
        yield url
