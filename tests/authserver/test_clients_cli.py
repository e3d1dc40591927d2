"""`mcp-hub users passwd` and `mcp-hub clients delete`: the real CLI (typer), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from mcp.shared.auth import OAuthClientInformationFull
from sqlalchemy import select
from typer.testing import CliRunner

from mcp_hub.authserver.clients import register_client
from mcp_hub.authserver.passwords import verify_password
from mcp_hub.cli import app as cli_app
from mcp_hub.runtime import open_hub
from mcp_hub.settings import Settings
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import UserPassword

RUNNER = CliRunner()


async def _stored_hash(settings: Settings) -> str | None:
    async with open_hub(settings) as hub, transaction(hub.sessions) as session:
        return await session.scalar(select(UserPassword.password_hash))


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MCP_HUB_"):
            monkeypatch.delenv(name)


def test_users_passwd_sets_a_hash_and_refuses_short_ones(database_url: str, tmp_path: Path) -> None:
    env = {"MCP_HUB_DATA_DIR": str(tmp_path / "cli"), "MCP_HUB_DATABASE_URL": database_url}
    assert (
        RUNNER.invoke(cli_app, ["db", "upgrade"], env=env).exit_code == 0
    )  # PostgreSQL is never auto-migrated
    assert RUNNER.invoke(cli_app, ["users", "add", "dana"], env=env).exit_code == 0
    short = RUNNER.invoke(cli_app, ["users", "passwd", "dana", "--stdin"], input="short\n", env=env)
    assert short.exit_code == 1 and "12 to 1024" in short.output
    unknown = RUNNER.invoke(cli_app, ["users", "passwd", "nobody", "--stdin"], input="x" * 20 + "\n", env=env)
    assert unknown.exit_code == 1 and "no user named" in unknown.output
    done = RUNNER.invoke(
        cli_app, ["users", "passwd", "dana", "--stdin"], input="a password for dana\n", env=env
    )
    assert done.exit_code == 0 and "a password for dana" not in done.output
    stored = asyncio.run(_stored_hash(Settings(data_dir=tmp_path / "cli", database_url=database_url)))
    assert stored is not None and asyncio.run(verify_password("a password for dana", stored))
    missing = RUNNER.invoke(cli_app, ["clients", "delete", "no-such-client"], env=env)
    assert missing.exit_code == 1 and "no client" in missing.output


async def _register(settings: Settings, client_id: str) -> None:
    info = OAuthClientInformationFull.model_validate(
        {"client_id": client_id, "client_name": "Laptop", "redirect_uris": ["http://127.0.0.1/cb"]}
    )
    async with open_hub(settings) as hub:
        await register_client(hub, info)


def test_clients_list_and_delete(database_url: str, tmp_path: Path) -> None:
    env = {"MCP_HUB_DATA_DIR": str(tmp_path / "cli"), "MCP_HUB_DATABASE_URL": database_url}
    assert RUNNER.invoke(cli_app, ["db", "upgrade"], env=env).exit_code == 0
    asyncio.run(_register(Settings(data_dir=tmp_path / "cli", database_url=database_url), "cli-client"))
    listed = RUNNER.invoke(cli_app, ["clients", "list"], env=env)
    assert listed.exit_code == 0 and "cli-client\tdcr\tLaptop" in listed.output
    deleted = RUNNER.invoke(cli_app, ["clients", "delete", "cli-client"], env=env)
    assert deleted.exit_code == 0 and "deleted client cli-client" in deleted.output
    assert "cli-client" not in RUNNER.invoke(cli_app, ["clients", "list"], env=env).output
