"""The REST API refuses bodies over MCP_HUB_MAX_REQUEST_BYTES with 413 and writes nothing."""

from __future__ import annotations

import httpx2
import pytest

from mcp_hub.app import create_app
from mcp_hub.settings import Settings
from tests.conftest import ADMIN_KEY


@pytest.fixture
def database_url(tmp_path):  # type: ignore[no-untyped-def]
    # The cap is HTTP plumbing; the database is not what is tested here.
    return f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"


async def test_oversized_bodies_get_413_and_nothing_is_written(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_request_bytes": 64 * 1024})
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}
    big = (
        b'{"name": "big", "transport": "http", "url": "http://127.0.0.1:9/mcp", "description": "'
        + b"x" * (100 * 1024)
        + b'"}'
    )

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:4000"
        ) as client,
    ):
        declared = await client.post("/v1/servers", content=big, headers=headers)
        assert declared.status_code == 413
        assert "MCP_HUB_MAX_REQUEST_BYTES" in declared.json()["detail"]
        streamed = await client.post("/v1/servers", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        small = await client.post(
            "/v1/servers",
            json={"name": "small", "transport": "http", "url": "http://127.0.0.1:9/mcp"},
            headers=headers,
        )
        assert small.status_code == 201, small.text
        names = [item["name"] for item in (await client.get("/v1/servers", headers=headers)).json()["items"]]
        assert names == ["small"]
