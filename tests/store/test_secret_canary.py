"""A canary secret sent in through the API and the CLI is absent from every response (body and headers),
every log line, the terminal output, and the SQLite file's bytes (with its -wal and -shm files)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from mcp_hub.app import create_app
from mcp_hub.cli import app as cli_app
from mcp_hub.crypto import generate_key_entry
from mcp_hub.settings import Settings

ADMIN_KEY = "mcph_canary_admin_" + "c" * 32


def database_bytes(data_dir: Path) -> dict[str, bytes]:
    files = {path.name: path.read_bytes() for path in data_dir.glob("mcp-hub.db*")}
    assert "mcp-hub.db" in files
    return files


def test_canary_secret_never_leaves_in_clear(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    for name in list(os.environ):
        if name.startswith("MCP_HUB_"):
            monkeypatch.delenv(name)
    caplog.set_level(logging.DEBUG)
    marker = "cnry" + secrets.token_hex(8)

    def canary(where: str) -> str:
        return f"{marker}-{where}"

    data_dir = tmp_path / "data"
    keys = generate_key_entry()
    settings = Settings(data_dir=data_dir, encryption_keys=SecretStr(keys), admin_key=SecretStr(ADMIN_KEY))
    assert settings.is_sqlite
    responses: list[httpx2.Response] = []
    snapshots: list[dict[str, bytes]] = []

    async def through_api() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            async with httpx2.AsyncClient(transport=transport, base_url="http://hub") as client:

                async def call(method: str, path: str, body: Any = None, expect: int = 200) -> Any:
                    response = await client.request(method, path, json=body, headers=headers)
                    responses.append(response)
                    assert response.status_code == expect, response.text[:500]
                    return response.json() if response.content else None

                web = await call(
                    "POST",
                    "/v1/servers",
                    {
                        "name": "canary-web",
                        "transport": "http",
                        "url": "https://mcp.example.com/mcp",
                        "auth_type": "oauth2",
                        "client_id": "cid",
                        "client_secret": canary("client-secret"),
                        "headers": {"X-Api-Key": canary("header")},
                    },
                    expect=201,
                )
                local = await call(
                    "POST",
                    "/v1/servers",
                    {
                        "name": "canary-local",
                        "transport": "stdio",
                        "command": "run",
                        "env": {"TOKEN": canary("env")},
                    },
                    expect=201,
                )
                await call("PATCH", f"/v1/servers/{web['id']}", {"headers": {"X-Api-Key": canary("patched")}})
                await call("GET", f"/v1/servers/{web['id']}")
                await call("GET", f"/v1/servers/{local['id']}")
                await call("GET", "/v1/servers")
                # Failures must not echo what was sent either.
                await call(
                    "POST",
                    "/v1/servers",
                    {
                        "name": "canary-web",
                        "transport": "sse",
                        "url": "https://x/sse",
                        "client_secret": canary("dup"),
                    },
                    expect=409,
                )
                await call(
                    "POST",
                    "/v1/servers",
                    {"name": "no-command", "transport": "stdio", "headers": {"H": canary("model-error")}},
                    expect=422,
                )
                await call(
                    "POST",
                    "/v1/servers",
                    {
                        "name": "long",
                        "transport": "sse",
                        "url": "https://x",
                        "client_secret": canary("long") * 500,
                    },
                    expect=422,
                )
                await call("PATCH", f"/v1/servers/{local['id']}", {"env": canary("not-a-map")}, expect=422)
                await call(
                    "POST",
                    "/v1/servers",
                    {"name": "typo", "transport": "sse", "url": "https://x", "client_secrt": canary("typo")},
                    expect=422,
                )
                await call(
                    "POST",
                    "/v1/servers",
                    {
                        "name": "ghost-users",
                        "transport": "sse",
                        "url": "https://x",
                        "headers": {"H": canary("unknown-user")},
                        "access": "listed_users",
                        "allowed_users": ["ghost"],
                    },
                    expect=422,
                )
                assert web["client_secret_set"] is True and local["env_names"] == ["TOKEN"]
                # While the hub holds its connections the WAL is live: grep it now, not only after close.
                snapshots.append(database_bytes(data_dir))

    asyncio.run(through_api())

    env = {"MCP_HUB_DATA_DIR": str(data_dir), "MCP_HUB_ENCRYPTION_KEYS": keys}
    runner = CliRunner()
    outputs: list[str] = []

    def cli(expect: int, *args: str) -> None:
        result = runner.invoke(cli_app, list(args), env=env)
        outputs.extend([result.stdout, result.stderr])
        assert result.exit_code == expect, (args, result.output, result.exception)

    cli(
        0,
        "servers",
        "add",
        "cli-web",
        "--transport",
        "http",
        "--url",
        "https://x/mcp",
        "--header",
        f"X-Key={canary('cli-header')}",
    )
    cli(
        0,
        "servers",
        "add",
        "cli-local",
        "--transport",
        "stdio",
        "--command",
        "run",
        "--env",
        f"TOKEN={canary('cli-env')}",
    )
    cli(
        1,
        "servers",
        "add",
        "cli-web",
        "--transport",
        "sse",
        "--url",
        "https://x",
        "--header",
        f"X={canary('cli-dup')}",
    )
    cli(
        1,
        "servers",
        "add",
        "bad",
        "--transport",
        "openapi",
        "--url",
        "https://x",
        "--env",
        f"T={canary('cli-bad')}",
    )
    cli(1, "servers", "add", "bad", "--transport", "stdio", "--header", f"X={canary('cli-shape')}")
    servers_file = tmp_path / "servers.yaml"
    servers_file.write_text(
        yaml.safe_dump(
            {
                "servers": [
                    {
                        "name": "applied",
                        "transport": "http",
                        "url": "https://a/mcp",
                        "headers": {"Authorization": f"Bearer {canary('yaml')}"},
                        "client_secret": canary("yaml-client"),
                    }
                ]
            }
        )
    )
    cli(0, "servers", "apply", str(servers_file))
    cli(0, "servers", "apply", str(servers_file))
    cli(0, "servers", "list")
    cli(0, "credentials", "rotate-key")
    snapshots.append(database_bytes(data_dir))

    captured = capfd.readouterr()
    log_lines = [record.getMessage() for record in caplog.records] + [caplog.text]
    assert len(responses) == 12
    for response in responses:
        assert marker not in response.text, (
            response.request.method,
            response.request.url,
            response.text[:300],
        )
        assert all(marker not in f"{name}: {value}" for name, value in response.headers.items())
    assert all(marker not in line for line in log_lines)
    assert any("mcp_servers" in line for line in log_lines), "SQL was logged at DEBUG, so the grep saw it"
    assert marker not in captured.out and marker not in captured.err
    assert all(marker not in output for output in outputs)
    assert "added server cli-web" in "".join(outputs)

    for snapshot in snapshots:
        everything = b"".join(snapshot.values())
        assert marker.encode() not in everything
        # The grep works: non-secret values are there in clear.
        assert b"canary-web" in everything
    assert any(name.endswith("-wal") for snapshot in snapshots for name in snapshot), "the WAL was grepped"
    assert (b"cli-web" in b"".join(snapshots[-1].values())) and (
        b"applied" in b"".join(snapshots[-1].values())
    )
