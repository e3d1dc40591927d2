"""Key rotation on SQLite and PostgreSQL: rows under key A; keys "B,A"; rotate (function and CLI); only B
left and every row still decrypts; only A left and reading fails closed. A ciphertext copied to another
row fails to decrypt with a clear error."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from typer.testing import CliRunner

from mcp_hub.admin.schemas import ServerCreate
from mcp_hub.cli import app as cli_app
from mcp_hub.credentials.store import put_credential, read_payload
from mcp_hub.crypto import generate_key_entry
from mcp_hub.errors import DecryptionError
from mcp_hub.runtime import Hub, open_hub
from mcp_hub.settings import Settings
from mcp_hub.store import servers as server_repo
from mcp_hub.store import users as user_repo
from mcp_hub.store.engine import create_engine, transaction, upgrade
from mcp_hub.store.models import CredentialType, McpServer, McpUserCredential
from mcp_hub.store.rotation import rotate_all

SERVERS = 5
USERS = 5
BATCH = 2


@dataclass
class Written:
    server_secrets: dict[str, server_repo.ServerSecrets]
    payloads: dict[str, dict[str, Any]]


def key_id(entry: str) -> str:
    return entry.split(":", 1)[0]


def with_keys(settings: Settings, *entries: str) -> Settings:
    return settings.model_copy(update={"encryption_keys": SecretStr(",".join(entries))})


async def migrate(settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def write_rows(hub: Hub) -> Written:
    """Servers with every kind of secret, one without any, and oauth2 and byok credential rows."""
    server_secrets: dict[str, server_repo.ServerSecrets] = {}
    payloads: dict[str, dict[str, Any]] = {}
    async with transaction(hub.sessions) as session:
        server_ids: list[str] = []
        for i in range(SERVERS):
            spec = ServerCreate(
                name=f"srv-{i}",
                transport="stdio" if i % 2 else "http",
                url=None if i % 2 else f"https://s{i}.example/mcp",
                command="run" if i % 2 else None,
                env={"TOKEN": f"env-{i}"} if i % 2 else None,
                headers={"X-Key": f"header-{i}"},
                client_secret=SecretStr(f"client-{i}") if i % 3 == 0 else None,
            )
            server = await server_repo.create_server(session, hub.keyring, spec)
            server_ids.append(server.id)
            server_secrets[server.id] = server_repo.read_secrets(hub.keyring, server)
        plain = await server_repo.create_server(
            session, hub.keyring, ServerCreate(name="no-secrets", transport="sse", url="https://n/sse")
        )
        server_secrets[plain.id] = server_repo.ServerSecrets({}, {}, None)
        for i in range(USERS):
            user = await user_repo.create_user(session, f"user-{i}")
            kind = CredentialType.oauth2 if i % 2 == 0 else CredentialType.byok
            payload = (
                {"access_token": f"at-{i}", "refresh_token": f"rt-{i}"}
                if kind is CredentialType.oauth2
                else {"key": f"byok-{i}"}
            )
            row = await put_credential(
                session, hub.keyring, user_id=user.id, server_id=server_ids[i], type=kind, payload=payload
            )
            payloads[row.id] = payload
    return Written(server_secrets, payloads)


async def read_all(
    hub: Hub,
) -> tuple[dict[str, server_repo.ServerSecrets], dict[str, dict[str, Any]], set[str]]:
    async with hub.sessions() as session:
        servers = (await session.scalars(select(McpServer))).all()
        credentials = (await session.scalars(select(McpUserCredential))).all()
        key_ids = {row.key_id for row in servers} | {row.key_id for row in credentials}
        return (
            {row.id: server_repo.read_secrets(hub.keyring, row) for row in servers},
            {row.id: read_payload(hub.keyring, row) for row in credentials},
            {key for key in key_ids if key is not None},
        )


async def test_rotate_function_then_drop_the_old_key(settings: Settings) -> None:
    key_a, key_b = generate_key_entry(), generate_key_entry()
    await migrate(settings)
    async with open_hub(with_keys(settings, key_a)) as hub:
        written = await write_rows(hub)
        assert (await read_all(hub))[2] == {key_id(key_a)}

    async with open_hub(with_keys(settings, key_b, key_a)) as hub:
        # Before rotating, both keys read everything.
        servers_before, payloads_before, _ = await read_all(hub)
        assert servers_before == written.server_secrets
        assert payloads_before == written.payloads
        report = await rotate_all(hub.sessions, hub.keyring, batch_size=BATCH)
        assert (report.servers, report.credentials) == (SERVERS + 1, USERS)
        again = await rotate_all(hub.sessions, hub.keyring, batch_size=BATCH)
        assert (again.servers, again.credentials) == (0, 0)

    async with open_hub(with_keys(settings, key_b)) as hub:
        servers_after, payloads_after, key_ids = await read_all(hub)
        assert key_ids == {key_id(key_b)}
        assert servers_after == written.server_secrets
        assert payloads_after == written.payloads

    async with open_hub(with_keys(settings, key_a)) as hub:
        with pytest.raises(DecryptionError) as caught:
            await read_all(hub)
        assert f"key {key_id(key_b)!r}, which is not configured" in caught.value.message

    # Batch sizes smaller than, not dividing, and larger than the row count: every row moves each time.
    previous = key_b
    for batch_size in (1, 3, 100):
        newest = generate_key_entry()
        async with open_hub(with_keys(settings, newest, previous)) as hub:
            report = await rotate_all(hub.sessions, hub.keyring, batch_size=batch_size)
            assert (report.servers, report.credentials) == (SERVERS + 1, USERS), batch_size
        async with open_hub(with_keys(settings, newest)) as hub:
            servers_after, payloads_after, key_ids = await read_all(hub)
        assert key_ids == {key_id(newest)}
        assert (servers_after, payloads_after) == (written.server_secrets, written.payloads)
        previous = newest

    await check_copied_ciphertext_fails(with_keys(settings, previous))


async def check_copied_ciphertext_fails(settings: Settings) -> None:
    """A ciphertext moved to another row, column or type does not decrypt; the originals still do."""
    async with open_hub(settings) as hub:
        async with hub.sessions() as session:
            servers = {row.name: row for row in (await session.scalars(select(McpServer))).all()}
            credentials = list(
                (await session.scalars(select(McpUserCredential).order_by(McpUserCredential.id))).all()
            )
        source, target = servers["srv-0"], servers["srv-2"]
        oauth = next(row for row in credentials if row.type == "oauth2")
        other = next(row for row in credentials if row.type == "oauth2" and row.id != oauth.id)
        byok = next(row for row in credentials if row.type == "byok")
        async with transaction(hub.sessions) as session:
            # Another server's headers; a header ciphertext in the client_secret column; another user's
            # tokens; a byok row relabelled oauth2 (its own, untouched payload).
            await session.execute(
                update(McpServer)
                .where(McpServer.id == target.id)
                .values(headers_encrypted=source.headers_encrypted)
            )
            await session.execute(
                update(McpServer)
                .where(McpServer.id == source.id)
                .values(client_secret_encrypted=source.headers_encrypted)
            )
            await session.execute(
                update(McpUserCredential)
                .where(McpUserCredential.id == other.id)
                .values(payload_encrypted=oauth.payload_encrypted)
            )
            await session.execute(
                update(McpUserCredential).where(McpUserCredential.id == byok.id).values(type="oauth2")
            )
        async with hub.sessions() as session:
            for server_id, field in ((target.id, "headers"), (source.id, "client_secret")):
                row = await session.get(McpServer, server_id)
                assert row is not None
                with pytest.raises(DecryptionError) as caught:
                    server_repo.read_secrets(hub.keyring, row)
                assert f"mcp_servers row {server_id} ({field})" in caught.value.message
                assert "does not belong to this row" in caught.value.message
            for credential_id in (other.id, byok.id):
                credential = await session.get(McpUserCredential, credential_id)
                assert credential is not None
                with pytest.raises(DecryptionError) as caught:
                    read_payload(hub.keyring, credential)
                assert f"mcp_user_credentials row {credential_id}" in caught.value.message
                assert "does not belong to this row" in caught.value.message
            # The untouched originals still decrypt.
            original = await session.get(McpUserCredential, oauth.id)
            assert original is not None
            assert read_payload(hub.keyring, original)["access_token"].startswith("at-")


def test_rotate_key_command(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MCP_HUB_"):
            monkeypatch.delenv(name)
    key_a, key_b = generate_key_entry(), generate_key_entry()
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    env = {
        "MCP_HUB_DATA_DIR": str(tmp_path / "data"),
        "MCP_HUB_DATABASE_URL": database_url,
        "MCP_HUB_ROTATE_BATCH_SIZE": str(BATCH),
    }
    runner = CliRunner()

    def invoke(keys: str, *args: str) -> str:
        result = runner.invoke(cli_app, list(args), env={**env, "MCP_HUB_ENCRYPTION_KEYS": keys})
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stdout

    invoke(key_a, "db", "upgrade")

    async def _write() -> Written:
        async with open_hub(with_keys(settings, key_a)) as hub:
            return await write_rows(hub)

    written = asyncio.run(_write())
    output = invoke(f"{key_b},{key_a}", "credentials", "rotate-key")
    assert output.strip() == (
        f"re-encrypted {SERVERS + 1} server rows and {USERS} credentials with key {key_id(key_b)}"
    )

    async def _read(
        *keys: str,
    ) -> tuple[dict[str, server_repo.ServerSecrets], dict[str, dict[str, Any]], set[str]]:
        async with open_hub(with_keys(settings, *keys)) as hub:
            return await read_all(hub)

    servers_after, payloads_after, key_ids = asyncio.run(_read(key_b))
    assert key_ids == {key_id(key_b)}
    assert (servers_after, payloads_after) == (written.server_secrets, written.payloads)
    with pytest.raises(DecryptionError, match="not configured"):
        asyncio.run(_read(key_a))
    # The CLI fails closed too: one line naming the missing key, exit code 1.
    result = runner.invoke(
        cli_app, ["credentials", "rotate-key"], env={**env, "MCP_HUB_ENCRYPTION_KEYS": key_a}
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert len(result.stderr.strip().splitlines()) == 1
    assert key_id(key_b) in result.stderr
