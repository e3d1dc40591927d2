"""Fixtures for the OpenAPI tests: the test REST API on a loopback port, and the hub (real uvicorn, real
SDK clients) allowed to reach loopback, with a small response cap so the size test stays quick."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from mcp_hub.crypto import generate_key_entry
from mcp_hub.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.gateway.conftest import RunningHub, serve_hub, serve_uvicorn
from tests.mcp_peers.procs import free_port
from tests.openapi.rest_app import ApiState, create_rest_app

SPECS = Path(__file__).parent / "specs"
RESPONSE_CAP = 1024 * 1024


@dataclass
class RestApi:
    url: str
    state: ApiState

    @property
    def spec_url(self) -> str:
        return f"{self.url}/openapi.json"


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    async with serve_uvicorn(app, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def rest_api() -> AsyncIterator[RestApi]:
    state = ApiState()
    async with serve_app(create_rest_app(state)) as url:
        yield RestApi(url=url, state=state)


def openapi_settings(settings: Settings, **extra: object) -> Settings:
    return settings.model_copy(
        update={
            "oauth_allowed_hosts": ["127.0.0.1"],
            "openapi_max_response_bytes": RESPONSE_CAP,
            "openapi_spec_dirs": [SPECS],
            # The MCP endpoints reuse a request's authentication (with the server rows it allowed) for
            # up to this long; off here, so a refresh or an edit shows on the very next request.
            "mcp_auth_cache_seconds": 0,
            **extra,
        }
    )


@pytest.fixture
async def openapi_hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    """The hub on SQLite (the database is not what these tests are about; test_openapi_admin.py runs on
    both databases)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        encryption_keys=generate_key_entry(),
        admin_key=ADMIN_KEY,
    )
    async with serve_hub(openapi_settings(settings)) as running:
        yield running
