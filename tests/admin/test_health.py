"""/healthz (process up) and /readyz (database reachable, schema current), on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx2
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import text

from mcp_hub.runtime import Hub
from mcp_hub.store.engine import create_engine, head_revision, migrations_dir


def _older_revision() -> str:
    """A revision id that is not the head: the head's parent, or a made-up one when there is only one."""
    head = ScriptDirectory(str(migrations_dir())).get_revision(head_revision() or "head")
    down = head.down_revision if head is not None else None
    return down if isinstance(down, str) else "0000_older"


async def test_health_and_readiness(client: httpx2.AsyncClient, app: FastAPI) -> None:
    health = await client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schema": head_revision()}

    # OpenAPI docs, with write-only secrets visible in the schema as flags only.
    schema = (await client.get("/openapi.json")).json()
    assert {"/v1/servers", "/v1/users", "/v1/keys", "/healthz", "/readyz"} <= set(schema["paths"])
    server_out = schema["components"]["schemas"]["ServerOut"]["properties"]
    assert "client_secret_set" in server_out and "client_secret" not in server_out
    assert (await client.get("/docs")).status_code == 200

    # Database unreachable: not ready, still alive.
    hub: Hub = app.state.hub
    original = hub.engine
    unreachable = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    hub.engine = unreachable
    try:
        down = await client.get("/readyz")
        alive = await client.get("/healthz")
    finally:
        hub.engine = original
        await unreachable.dispose()
    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "reason": "database unreachable"}
    assert alive.status_code == 200
    assert (await client.get("/readyz")).status_code == 200

    # Schema behind the code: not ready, and the reason names the command to run.
    older = _older_revision()
    async with hub.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": older})
    behind = await client.get("/readyz")
    assert behind.status_code == 503
    body = behind.json()
    assert body["status"] == "unavailable"
    assert older in body["reason"] and str(head_revision()) in body["reason"]
    assert "mcp-hub db upgrade" in body["reason"]
    assert (await client.get("/healthz")).status_code == 200

    async with hub.engine.begin() as conn:
        await conn.execute(text("DROP TABLE alembic_version"))
    dropped = await client.get("/readyz")
    assert dropped.status_code == 503
    assert "schema at None" in dropped.json()["reason"]
