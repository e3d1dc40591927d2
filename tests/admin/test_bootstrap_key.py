"""The bootstrap admin key: when MCP_HUB_ADMIN_KEY is unset, the first start generates one, stores only its
hash and prints it once (to the terminal, never to a log); when it is set, it is registered hashed."""

from __future__ import annotations

import hashlib
import logging
import re

import httpx2
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from mcp_hub.app import create_app
from mcp_hub.runtime import open_hub
from mcp_hub.settings import Settings
from mcp_hub.store.engine import create_engine, upgrade
from mcp_hub.store.models import ApiKey

KEY_PATTERN = re.compile(r"mcph_[A-Za-z0-9_-]{20,}")


async def _start_and_call(settings: Settings, token: str | None) -> int | None:
    """Starts the app (lifespan entered and left in this task), calls the admin API once with `token`."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if token is None:
            return None
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://hub") as client:
            response = await client.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
            return response.status_code


async def _stored_keys(settings: Settings) -> list[tuple[str, str, bool]]:
    async with open_hub(settings) as hub, hub.sessions() as session:
        rows = await session.execute(select(ApiKey.prefix, ApiKey.key_hash, ApiKey.is_admin))
        return [(prefix, key_hash, is_admin) for prefix, key_hash, is_admin in rows]


async def test_bootstrap_admin_key(
    settings: Settings, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    unset = settings.model_copy(update={"admin_key": None})
    engine = create_engine(unset.resolved_database_url)
    await upgrade(engine)
    await engine.dispose()

    await _start_and_call(unset, None)
    first = capfd.readouterr()
    printed = KEY_PATTERN.findall(first.err)
    assert len(printed) == 1, first.err
    key = printed[0]
    assert key not in first.out
    assert all(key not in record.getMessage() for record in caplog.records)

    assert await _start_and_call(unset, key) == 200
    second = capfd.readouterr()
    assert not KEY_PATTERN.findall(second.err + second.out), "printed only at the first start"
    assert await _start_and_call(unset, "mcph_" + "x" * 43) == 401

    stored = await _stored_keys(unset)
    assert stored == [(key[:13], hashlib.sha256(key.encode()).hexdigest(), True)]
    assert all(key not in (prefix, key_hash) for prefix, key_hash, _ in stored)

    # MCP_HUB_ADMIN_KEY set later: registered (hashed) at the next start, nothing generated or printed.
    configured = "mcph_configured_" + "q" * 40
    with_key = settings.model_copy(update={"admin_key": SecretStr(configured)})
    assert await _start_and_call(with_key, configured) == 200
    assert await _start_and_call(with_key, configured) == 200, "registered once, works on every start"
    assert await _start_and_call(with_key, key) == 200, "the generated key keeps working"
    output = capfd.readouterr()
    assert not KEY_PATTERN.findall(output.err + output.out)
    stored = await _stored_keys(with_key)
    assert sorted(stored) == sorted(
        [
            (key[:13], hashlib.sha256(key.encode()).hexdigest(), True),
            (configured[:13], hashlib.sha256(configured.encode()).hexdigest(), True),
        ]
    )
