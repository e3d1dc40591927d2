"""A server made through the API, through `servers add` and through `servers apply` ends as the same row
(SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from mcp_hub.app import create_app
from mcp_hub.cli import app as cli_app
from mcp_hub.crypto import generate_key_entry
from mcp_hub.runtime import open_hub
from mcp_hub.settings import Settings
from mcp_hub.store.models import McpServer, McpServerUser
from mcp_hub.store.servers import read_secrets

ADMIN_KEY = "mcph_same_row_admin_" + "b" * 32
# Columns that differ by construction: identity, naming, time, and the ciphertext bytes (random nonces).
EXCLUDED = {"id", "name", "alias", "created_at", "updated_at", "spec_fetched_at"}
OPENAPI_SPEC = Path(__file__).with_name("same_row_openapi.yaml")

# The same server in three spellings: API body, CLI arguments, YAML entry.
SHAPES: list[tuple[dict[str, Any], list[str]]] = [
    (
        {
            "transport": "http",
            "url": "https://mcp.example.com/mcp",
            "headers": {"X-Api-Key": "same-row-secret", "X-Team": "blue"},
            "access": "public",
        },
        [
            "--transport",
            "http",
            "--url",
            "https://mcp.example.com/mcp",
            "--header",
            "X-Api-Key=same-row-secret",
            "--header",
            "X-Team=blue",
            "--public",
        ],
    ),
    (
        {
            "transport": "stdio",
            "command": "npx",
            "args": ["-y", "@scope/server", "--flag=1"],
            "env": {"API_TOKEN": "stdio-secret", "EMPTY": ""},
        },
        [
            "--transport",
            "stdio",
            "--command",
            "npx",
            "--arg",
            "-y",
            "--arg",
            "@scope/server",
            "--arg",
            "--flag=1",
            "--env",
            "API_TOKEN=stdio-secret",
            "--env",
            "EMPTY=",
        ],
    ),
    (
        {"transport": "http", "spec_location": str(OPENAPI_SPEC), "openapi_include": ["pets"]},
        ["--transport", "http", "--spec", str(OPENAPI_SPEC), "--include", "pets"],
    ),
    (
        {"transport": "sse", "url": "http://127.0.0.1:9000/sse"},
        ["--transport", "sse", "--url", "http://127.0.0.1:9000/sse"],
    ),
]


def test_api_cli_and_apply_make_the_same_row(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("MCP_HUB_"):
            monkeypatch.delenv(name)
    keys = generate_key_entry()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        encryption_keys=SecretStr(keys),
        admin_key=SecretStr(ADMIN_KEY),
        openapi_spec_dirs=[OPENAPI_SPEC.parent],
    )
    env = {
        "MCP_HUB_DATA_DIR": str(tmp_path / "data"),
        "MCP_HUB_DATABASE_URL": database_url,
        "MCP_HUB_ENCRYPTION_KEYS": keys,
    }
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(cli_app, list(args), env=env)
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.stdout

    cli("db", "upgrade")

    async def via_api() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://hub") as client:
                for i, (body, _) in enumerate(SHAPES):
                    response = await client.post(
                        "/v1/servers",
                        json={"name": f"api-{i}", **body},
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                    )
                    assert response.status_code == 201, response.text

    asyncio.run(via_api())
    for i, (_, args) in enumerate(SHAPES):
        cli("servers", "add", f"cli-{i}", *args)
    servers_file = tmp_path / "servers.yaml"
    servers_file.write_text(
        yaml.safe_dump({"servers": [{"name": f"yaml-{i}", **body} for i, (body, _) in enumerate(SHAPES)]})
    )
    cli("servers", "apply", str(servers_file))

    async def rows() -> dict[str, tuple[dict[str, Any], Any, list[str]]]:
        async with open_hub(settings) as hub, hub.sessions() as session:
            servers = (await session.scalars(select(McpServer))).all()
            links = [
                (server_id, user_id)
                for server_id, user_id in await session.execute(
                    select(McpServerUser.server_id, McpServerUser.user_id)
                )
            ]
            columns = [column.key for column in McpServer.__table__.columns]
            return {
                server.name: (
                    {column: getattr(server, column) for column in columns},
                    read_secrets(hub.keyring, server),
                    sorted(user for server_id, user in links if server_id == server.id),
                )
                for server in servers
            }

    stored = asyncio.run(rows())
    assert len(stored) == 3 * len(SHAPES)
    compared = [column for column in next(iter(stored.values()))[0] if column not in EXCLUDED]
    assert {"transport", "url", "args", "access", "auth_type", "enabled", "key_id", "spec_document"} <= set(
        compared
    )
    for i, (body, _) in enumerate(SHAPES):
        api, cli_row, applied = stored[f"api-{i}"], stored[f"cli-{i}"], stored[f"yaml-{i}"]
        for column in compared:
            if column.endswith("_encrypted"):
                # Same secrets present, under fresh nonces.
                assert (
                    (api[0][column] is None) == (cli_row[0][column] is None) == (applied[0][column] is None)
                ), column
                continue
            assert api[0][column] == cli_row[0][column] == applied[0][column], (i, column)
        assert api[1] == cli_row[1] == applied[1], i
        assert api[2] == cli_row[2] == applied[2] == []
        assert api[1].headers == body.get("headers", {})
        assert api[1].env == body.get("env", {})
        assert api[0]["transport"] == body["transport"]
        assert api[0]["access"] == body.get("access", "all_users")
        assert (api[0]["spec_document"] is not None) == ("spec_location" in body)
    # And applying the file again finds nothing to change in rows the other ways made equal.
    assert cli("servers", "apply", str(servers_file)).splitlines() == [
        f"unchanged yaml-{i}" for i in range(len(SHAPES))
    ]
