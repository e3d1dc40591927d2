"""`mcp-hub` commands on SQLite and PostgreSQL: what they do, and their exit codes (0 ok, 1 user error with
one line on stderr, 2 usage)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner, Result

from mcp_hub.app import create_app
from mcp_hub.cli import app as cli_app
from mcp_hub.crypto import generate_key_entry
from mcp_hub.runtime import open_hub
from mcp_hub.settings import Settings
from mcp_hub.store.models import ApiKey, McpServer
from mcp_hub.store.servers import read_secrets
from tests.mcp_peers.procs import free_port

RUNNER = CliRunner()
MCP_HUB_BIN = Path(sys.executable).with_name("mcp-hub")

# An OpenAPI document the CLI reads and validates when the server is added (any local file: the CLI runs
# on the hub's machine).
PETSTORE_SPEC = Path(__file__).parents[1] / "store" / "same_row_openapi.yaml"


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MCP_HUB_"):
            monkeypatch.delenv(name)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The CLI's environment: its own data dir (so keys come from a generated key file) and the test DB."""
    yield {"MCP_HUB_DATA_DIR": str(tmp_path / "cli-data"), "MCP_HUB_DATABASE_URL": database_url}


def mcp_hub(env: dict[str, str], *args: str) -> Result:
    return RUNNER.invoke(cli_app, list(args), env=env)


def ok(env: dict[str, str], *args: str) -> Result:
    result = mcp_hub(env, *args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def user_error(env: dict[str, str], *args: str, mentions: str) -> Result:
    result = mcp_hub(env, *args)
    assert result.exit_code == 1, (args, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), f"a crash, not a user error: {result.exception!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert mentions in lines[0], lines[0]
    assert result.stdout == ""
    return result


def usage_error(env: dict[str, str], *args: str) -> Result:
    result = mcp_hub(env, *args)
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert "Usage" in result.stderr or "Error" in result.stderr
    return result


def settings_for(env: dict[str, str]) -> Settings:
    return Settings(data_dir=Path(env["MCP_HUB_DATA_DIR"]), database_url=env["MCP_HUB_DATABASE_URL"])


def servers_by_name(env: dict[str, str]) -> dict[str, tuple[McpServer, Any]]:
    """Every stored server with its decrypted secrets (a fresh event loop: these tests are sync)."""

    async def _read() -> dict[str, tuple[McpServer, Any]]:
        async with open_hub(settings_for(env)) as hub, hub.sessions() as session:
            rows = (await session.scalars(select(McpServer))).all()
            return {row.name: (row, read_secrets(hub.keyring, row)) for row in rows}

    return asyncio.run(_read())


def test_db_upgrade(env: dict[str, str]) -> None:
    if env["MCP_HUB_DATABASE_URL"].startswith("postgresql"):
        # PostgreSQL is never migrated behind the operator's back: one line naming the command.
        result = user_error(env, "servers", "list", mentions="database schema is at revision none")
        assert "mcp-hub db upgrade" in result.stderr
    first = ok(env, "db", "upgrade")
    assert "database schema: empty -> " in first.stdout
    second = ok(env, "db", "upgrade")
    assert "database schema is current" in second.stdout
    assert ok(env, "db", "status").stdout.strip().endswith("current")
    assert "servers add" in ok(env, "servers", "list").stdout, "an empty list says how to add one"


def test_users_keys_and_servers(env: dict[str, str]) -> None:
    ok(env, "db", "upgrade")
    added = ok(env, "users", "add", "alice", "--email", "alice@example.com")
    assert added.stdout.startswith("added user alice (id ")
    assert "alice\t" in ok(env, "users", "list").stdout
    user_error(env, "users", "add", "alice", mentions="already exists")
    user_error(env, "users", "add", "bad name!", mentions="name")

    ok(
        env,
        "servers",
        "add",
        "web",
        "--transport",
        "http",
        "--url",
        "https://mcp.example.com/mcp",
        "--public",
    )
    ok(env, "servers", "add", "events", "--transport", "sse", "--url", "http://127.0.0.1:9/sse")
    ok(
        env,
        "servers",
        "add",
        "local",
        "--transport",
        "stdio",
        "--command",
        "npx",
        "--arg",
        "-y",
        "--arg",
        "pkg@1",
        "--env",
        "TOKEN=abc=def",
        "--env",
        "MODE=fast",
        "--header",
        "X-Ignored=1",
    )
    ok(
        env,
        "servers",
        "add",
        "petstore",
        "--transport",
        "http",
        "--spec",
        str(PETSTORE_SPEC),
        "--header",
        "X-Api-Key=k1",
        "--alias",
        "pets",
    )
    stored = servers_by_name(env)
    assert set(stored) == {"web", "events", "local", "petstore"}
    web, _ = stored["web"]
    assert (web.transport, web.url, web.access, web.alias) == (
        "http",
        "https://mcp.example.com/mcp",
        "public",
        "web",
    )
    assert stored["events"][0].transport == "sse"
    local, local_secrets = stored["local"]
    assert (local.command, local.args, local.access) == ("npx", ["-y", "pkg@1"], "all_users")
    assert local_secrets.env == {"TOKEN": "abc=def", "MODE": "fast"}
    assert local.env_encrypted is not None and b"abc=def" not in local.env_encrypted
    pets, pets_secrets = stored["petstore"]
    assert (pets.spec_location, pets.url, pets.alias) == (
        str(PETSTORE_SPEC),
        None,
        "pets",
    )
    assert pets_secrets.headers == {"X-Api-Key": "k1"}

    listing = ok(env, "servers", "list").stdout.splitlines()
    assert sorted(line.split("\t")[0] for line in listing) == ["events", "local", "petstore", "web"]
    assert "web\thttp\tpublic\tenabled\thttps://mcp.example.com/mcp" in listing
    assert "local\tstdio\tall_users\tenabled\tnpx -y pkg@1" in listing

    user_error(
        env, "servers", "add", "web", "--transport", "http", "--url", "https://x.example", mentions="'web'"
    )
    user_error(
        env, "servers", "add", "ws", "--transport", "websocket", "--url", "https://x", mentions="transport"
    )
    user_error(
        env, "servers", "add", "o", "--transport", "openapi", "--url", "https://x", mentions="spec_location"
    )
    user_error(env, "servers", "add", "s", "--transport", "stdio", mentions="needs a command")
    user_error(
        env,
        "servers",
        "add",
        "e",
        "--transport",
        "stdio",
        "--command",
        "c",
        "--env",
        "NOEQUALS",
        mentions="KEY=VALUE",
    )
    user_error(
        env, "servers", "add", "n" * 100_000, "--transport", "sse", "--url", "https://x", mentions="name"
    )
    assert set(servers_by_name(env)) == {"web", "events", "local", "petstore"}, "failures add nothing"

    assert ok(env, "servers", "remove", "events").stdout.strip() == "removed server events"
    user_error(env, "servers", "remove", "events", mentions="no server named 'events'")
    assert "events" not in servers_by_name(env)


def test_keys_create_revoke_and_authenticate(env: dict[str, str]) -> None:
    ok(env, "db", "upgrade")
    # `bootstrap` prints a first admin key once (to stderr, never to a log).
    first = ok(env, "bootstrap")
    admin_key = next(line.strip() for line in first.stderr.splitlines() if line.strip().startswith("mcph_"))
    second = ok(env, "bootstrap")
    assert admin_key not in second.output
    assert "already exists" in second.stderr
    ok(env, "users", "add", "ops")
    user_error(env, "keys", "create", "--user", "ghost", mentions="no user named 'ghost'")
    created = ok(env, "keys", "create", "--user", "ops", "--admin", "--name", "laptop")
    lines = created.stdout.strip().splitlines()
    key = lines[-1]
    assert key.startswith("mcph_") and " " not in key
    assert "admin key" in lines[0]
    plain = ok(env, "keys", "create", "--user", "ops").stdout.strip().splitlines()[-1]

    async def _status(token: str) -> list[int]:
        app = create_app(settings_for(env).model_copy(update={"admin_key": None}))
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://hub") as client:
                headers = {"Authorization": f"Bearer {token}"}
                return [
                    (await client.get("/v1/servers", headers=headers)).status_code,
                    (await client.get("/v1/users", headers=headers)).status_code,
                ]

    assert asyncio.run(_status(key)) == [200, 200]
    assert asyncio.run(_status(admin_key)) == [200, 200]
    assert asyncio.run(_status(plain)) == [403, 403]

    async def _stored() -> list[tuple[str, str, bool]]:
        async with open_hub(settings_for(env)) as hub, hub.sessions() as session:
            rows = await session.execute(select(ApiKey.prefix, ApiKey.key_hash, ApiKey.is_admin))
            return [(prefix, key_hash, is_admin) for prefix, key_hash, is_admin in rows]

    stored = asyncio.run(_stored())
    assert all(key not in (prefix, key_hash) for prefix, key_hash, _ in stored), "only a hash is stored"

    prefix = key[:13]
    user_error(env, "keys", "revoke", "mcph_nosuchprefix", mentions="no API key with prefix")
    user_error(env, "keys", "revoke", "mcp", mentions="at least 6")
    revoked = ok(env, "keys", "revoke", prefix)
    assert revoked.stdout.strip() == f"revoked key {prefix}"
    assert asyncio.run(_status(key)) == [401, 401]
    assert asyncio.run(_status(plain)) == [403, 403], "the other key is untouched"


def test_servers_apply_is_idempotent_and_prunes(env: dict[str, str], tmp_path: Path) -> None:
    ok(env, "db", "upgrade")
    ok(env, "users", "add", "bob")
    ok(env, "servers", "add", "manual", "--transport", "sse", "--url", "https://manual.example/sse")
    document: dict[str, Any] = {
        "servers": [
            {
                "name": "docs",
                "transport": "http",
                "url": "https://docs.example/mcp",
                "headers": {"X-Api-Key": "apply-secret"},
                "auth_type": "static",
                "scopes": ["read"],
            },
            {"name": "tool", "transport": "stdio", "command": "uvx", "args": ["tool"], "env": {"K": "v"}},
        ]
    }
    file = tmp_path / "servers.yaml"
    file.write_text(yaml.safe_dump(document))
    first = ok(env, "servers", "apply", str(file))
    assert first.stdout.splitlines() == ["created docs", "created tool"]
    before = servers_by_name(env)

    second = ok(env, "servers", "apply", str(file))
    assert second.stdout.splitlines() == ["unchanged docs", "unchanged tool"]
    after = servers_by_name(env)
    for name in ("docs", "tool"):
        old, new = before[name][0], after[name][0]
        assert new.updated_at == old.updated_at
        assert (new.headers_encrypted, new.env_encrypted, new.client_secret_encrypted) == (
            old.headers_encrypted,
            old.env_encrypted,
            old.client_secret_encrypted,
        )
        assert new.key_id == old.key_id
    assert after["docs"][1].headers == {"X-Api-Key": "apply-secret"}

    document["servers"][0]["headers"] = {"X-Api-Key": "rotated-secret"}
    file.write_text(yaml.safe_dump(document))
    assert ok(env, "servers", "apply", str(file)).stdout.splitlines() == ["updated docs", "unchanged tool"]
    updated = servers_by_name(env)
    assert updated["docs"][1].headers == {"X-Api-Key": "rotated-secret"}
    assert updated["docs"][0].id == before["docs"][0].id
    assert updated["tool"][0].updated_at == before["tool"][0].updated_at

    assert "manual" in updated
    file.write_text(yaml.safe_dump({"servers": [document["servers"][1]]}))
    pruned = ok(env, "servers", "apply", str(file), "--prune")
    assert sorted(pruned.stdout.splitlines()) == ["removed docs", "removed manual", "unchanged tool"]
    assert set(servers_by_name(env)) == {"tool"}
    assert ok(env, "servers", "apply", str(file), "--prune").stdout.splitlines() == ["unchanged tool"]


def test_servers_apply_rejects_bad_files_and_changes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    ok(env, "db", "upgrade")
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump({"servers": [{"name": "keep", "transport": "sse", "url": "https://k/sse"}]})
    )
    ok(env, "servers", "apply", str(good))
    before = servers_by_name(env)["keep"][0]

    cases = {
        "broken.yaml": ("servers: [unclosed\n", "not valid YAML"),
        "unknown-key.yaml": ("servrs: []\n", "servrs"),
        "bad-transport.yaml": (
            "servers:\n- {name: a, transport: openapi, url: 'https://x'}\n",
            "spec_location",
        ),
        "missing.yaml": ("servers:\n- {transport: http, url: 'https://x'}\n", "name"),
        "twice.yaml": (
            "servers:\n- {name: a, transport: sse, url: 'https://x'}\n- {name: a, transport: sse, url: 'https://y'}\n",
            "appears twice",
        ),
        "unknown-user.yaml": (
            "servers:\n- {name: keep, transport: sse, url: 'https://k/sse', access: listed_users,"
            " allowed_users: [ghost]}\n- {name: fresh, transport: sse, url: 'https://f'}\n",
            "ghost",
        ),
    }
    for filename, (content, mentions) in cases.items():
        path = tmp_path / filename
        path.write_text(content)
        user_error(env, "servers", "apply", str(path), "--prune", mentions=mentions)
    after = servers_by_name(env)
    assert set(after) == {"keep"}, "nothing half-applied"
    assert after["keep"][0].updated_at == before.updated_at
    assert after["keep"][0].access == "all_users"
    usage_error(env, "servers", "apply", str(tmp_path / "does-not-exist.yaml"))


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    env = {"MCP_HUB_DATA_DIR": str(tmp_path / "data")}  # usage is checked before any database is opened
    usage_error(env, "no-such-command")
    usage_error(env, "servers", "frobnicate")
    usage_error(env, "servers", "add", "x", "--transport", "http", "--no-such-option")
    usage_error(env, "servers", "add", "x")  # --transport is required
    usage_error(env, "keys", "create")  # --user is required
    usage_error(env, "serve", "--port", "not-a-number")
    usage_error(env, "serve", "--port", "70000")


def test_installed_script_serves_a_ready_hub(tmp_path: Path) -> None:
    """`make run` in miniature: the console script's `serve` on a fresh data dir creates and migrates
    SQLite, /readyz says ready, and the configured admin key works. (One process: each pays the full
    import. Exit codes are checked in-process above, through the same typer app the script runs.)"""
    port = free_port()
    admin_key = "mcph_serve_admin_" + "s" * 32
    serve_env = {**os.environ, "MCP_HUB_DATA_DIR": str(tmp_path / "data"), "MCP_HUB_ADMIN_KEY": admin_key}
    process = subprocess.Popen(
        [MCP_HUB_BIN, "serve", "--port", str(port)],
        env=serve_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        ready: httpx2.Response | None = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx2.get(f"{base}/readyz", timeout=2)
                break
            except httpx2.TransportError:
                time.sleep(0.2)
        assert ready is not None, "the hub did not start listening"
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        servers = httpx2.get(
            f"{base}/v1/servers", headers={"Authorization": f"Bearer {admin_key}"}, timeout=5
        )
        assert servers.status_code == 200
        assert servers.json() == {"items": [], "next_cursor": None}
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert (tmp_path / "data" / "mcp-hub.db").is_file()
    assert (tmp_path / "data" / "encryption.keys").is_file()
    assert f"mcp-hub listening on http://127.0.0.1:{port}" in stderr
    assert admin_key not in stderr


def test_credentials_new_key_and_rotate_key(env: dict[str, str]) -> None:
    ok(env, "db", "upgrade")
    ok(env, "servers", "add", "s1", "--transport", "sse", "--url", "https://s1/sse", "--header", "A=1")
    ok(env, "servers", "add", "s2", "--transport", "stdio", "--command", "c", "--env", "B=2")
    key_file = Path(env["MCP_HUB_DATA_DIR"]) / "encryption.keys"
    old_id = key_file.read_text().split(":", 1)[0]
    assert {row.key_id for row, _ in servers_by_name(env).values()} == {old_id}

    added = ok(env, "credentials", "new-key")
    new_id = key_file.read_text().split(":", 1)[0]
    assert new_id != old_id
    assert f"new encryption key {new_id}" in added.stdout
    assert "rotate-key" in added.stdout

    rotated = ok(env, "credentials", "rotate-key")
    assert rotated.stdout.strip() == f"re-encrypted 2 server rows and 0 credentials with key {new_id}"
    again = ok(env, "credentials", "rotate-key")
    assert again.stdout.strip() == f"re-encrypted 0 server rows and 0 credentials with key {new_id}"

    # Drop the old key from the file: everything still decrypts.
    key_file.write_text(key_file.read_text().splitlines()[0] + "\n")
    stored = servers_by_name(env)
    assert {row.key_id for row, _ in stored.values()} == {new_id}
    assert stored["s1"][1].headers == {"A": "1"}
    assert stored["s2"][1].env == {"B": "2"}

    configured = {**env, "MCP_HUB_ENCRYPTION_KEYS": generate_key_entry()}
    user_error(configured, "credentials", "new-key", mentions="MCP_HUB_ENCRYPTION_KEYS")
    broken = {**env, "MCP_HUB_ENCRYPTION_KEYS": "no-colon"}
    user_error(broken, "servers", "list", mentions="key_id:base64key")
