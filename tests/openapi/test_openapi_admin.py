"""Creating, updating and refreshing OpenAPI servers through the admin API and the CLI, on SQLite and
PostgreSQL: the spec is read with the server's own headers, invalid specs are refused with a 422 listing
the problems (the last good document stays in use), and the tools follow a refresh."""

from __future__ import annotations

import copy
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from mcp_hub.cli import app as cli_app
from mcp_hub.runtime import open_hub
from mcp_hub.settings import Settings
from mcp_hub.store.engine import transaction
from mcp_hub.store.servers import get_server_by_name
from tests.conftest import migrate
from tests.gateway.clients import shttp_session
from tests.gateway.conftest import RunningHub, serve_hub
from tests.openapi.conftest import openapi_settings, serve_app

SPEC_TOKEN = "spec-token-5d1c"


def spec_with(*operation_ids: str, base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Changing", "version": "1"},
        "servers": [{"url": base_url}],
        "paths": {
            f"/{op}": {
                "get": {
                    "operationId": op,
                    "tags": [op[:3]],
                    "security": [{"oauth": [f"{op}:read"]}],
                    "responses": {"200": {"description": "ok"}},
                }
            }
            for op in operation_ids
        },
        "components": {
            "securitySchemes": {
                "oauth": {
                    "type": "oauth2",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": "/oauth/authorize",
                            "tokenUrl": "https://login.example.com/token",
                            "scopes": {"alpha:read": "", "beta:read": "", "admin": ""},
                        }
                    },
                }
            }
        },
    }


@dataclass
class SpecHost:
    url: str
    spec: dict[str, Any]
    seen_tokens: list[str | None] = field(default_factory=list)

    @property
    def spec_url(self) -> str:
        return f"{self.url}/spec.json"


@pytest.fixture
async def spec_host() -> AsyncIterator[SpecHost]:
    """Serves a spec that an admin may change, only to callers presenting the spec token."""
    app = FastAPI()
    host = SpecHost(url="", spec={})

    @app.get("/spec.json")
    async def spec(x_spec_token: str | None = Header(default=None)) -> JSONResponse:
        host.seen_tokens.append(x_spec_token)
        if x_spec_token != SPEC_TOKEN:
            return JSONResponse({"detail": "no"}, status_code=401)
        return JSONResponse(host.spec)

    async with serve_app(app) as url:
        host.url = url
        host.spec = spec_with("alpha", "beta", base_url=url)
        yield host


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[RunningHub]:
    await migrate(settings)
    async with serve_hub(openapi_settings(settings)) as running:
        yield running


async def tool_names(hub: RunningHub, name: str) -> list[str]:
    async with shttp_session(f"{hub.url}/mcp/{name}", None) as session:
        return [tool.name for tool in (await session.list_tools()).tools]


async def test_create_refresh_and_update(hub: RunningHub, spec_host: SpecHost) -> None:
    body = {"name": "changing", "transport": "http", "spec_location": spec_host.spec_url, "access": "public"}
    # The spec needs the server's header: without it the create is refused and says why.
    refused = await hub.admin.post("/v1/servers", json=body)
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "loc": ["body", "spec_location"],
            "msg": "spec_location: fetching the document answered HTTP 401",
            "type": "value_error",
        }
    ]
    created = await hub.admin.post("/v1/servers", json={**body, "headers": {"X-Spec-Token": SPEC_TOKEN}})
    assert created.status_code == 201, created.text
    server = created.json()
    assert server["spec_fetched_at"] is not None and SPEC_TOKEN not in created.text
    assert spec_host.seen_tokens == [None, SPEC_TOKEN]
    assert await tool_names(hub, "changing") == ["alpha", "beta"]

    # The API changes: a refresh (read with the stored header) brings the new tools.
    spec_host.spec = spec_with("alpha", "gamma", "delta", base_url=spec_host.url)
    refreshed = await hub.admin.post(f"/v1/servers/{server['id']}/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["spec_fetched_at"] > server["spec_fetched_at"]
    assert spec_host.seen_tokens[-1] == SPEC_TOKEN
    assert await tool_names(hub, "changing") == ["alpha", "gamma", "delta"]

    # An invalid spec is refused with its problems listed; the last good one stays in use.
    broken = copy.deepcopy(spec_host.spec)
    broken["paths"]["/gamma"]["get"]["parameters"] = [{"$ref": "#/components/parameters/missing"}]
    del broken["info"]["version"]
    spec_host.spec = broken
    refused = await hub.admin.post(f"/v1/servers/{server['id']}/refresh")
    assert refused.status_code == 422
    problems = [item["msg"] for item in refused.json()["detail"]]
    assert any("names nothing in the document" in problem for problem in problems), problems
    assert await tool_names(hub, "changing") == ["alpha", "gamma", "delta"]

    # Filters apply without re-reading, and so does an edit form sending the unchanged location and
    # headers again; changing the location re-reads (and is validated).
    spec_host.spec = spec_with("alpha", "gamma", "delta", base_url=spec_host.url)
    reads = len(spec_host.seen_tokens)
    patched = await hub.admin.patch(
        f"/v1/servers/{server['id']}",
        json={
            "openapi_exclude": ["gam"],
            "description": "edited",
            "spec_location": spec_host.spec_url,
            "headers": {"X-Spec-Token": SPEC_TOKEN},
        },
    )
    assert patched.status_code == 200, patched.text
    assert len(spec_host.seen_tokens) == reads
    assert patched.json()["openapi_exclude"] == ["gam"]
    assert await tool_names(hub, "changing") == ["alpha", "delta"]
    moved = await hub.admin.patch(
        f"/v1/servers/{server['id']}",
        json={"spec_location": spec_host.spec_url + "?v=2", "openapi_include": ["alpha"]},
    )
    assert moved.status_code == 200, moved.text
    assert await tool_names(hub, "changing") == ["alpha"]
    bad_move = await hub.admin.patch(
        f"/v1/servers/{server['id']}", json={"spec_location": f"{spec_host.url}/nothing"}
    )
    assert bad_move.status_code == 422
    assert (await hub.admin.get(f"/v1/servers/{server['id']}")).json()[
        "spec_location"
    ] == spec_host.spec_url + "?v=2"


async def test_shape_rules(hub: RunningHub, spec_host: SpecHost) -> None:
    both = await hub.admin.post(
        "/v1/servers",
        json={
            "name": "x",
            "transport": "http",
            "url": "https://mcp.example.com/mcp",
            "spec_location": spec_host.spec_url,
        },
    )
    assert both.status_code == 422 and "takes no url" in both.text
    stray = await hub.admin.post(
        "/v1/servers",
        json={
            "name": "y",
            "transport": "http",
            "url": "https://mcp.example.com/mcp",
            "openapi_include": ["a"],
        },
    )
    assert stray.status_code == 422 and "need an OpenAPI server" in stray.text
    plain = await hub.admin.post(
        "/v1/servers", json={"name": "z", "transport": "sse", "url": "https://e.example/sse"}
    )
    refresh = await hub.admin.post(f"/v1/servers/{plain.json()['id']}/refresh")
    assert refresh.status_code == 422 and "not OpenAPI-backed" in refresh.text
    assert spec_host.seen_tokens == []


CliRun = Callable[..., Awaitable[Any]]


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRun:
    """`mcp-hub ARGS...` on the test's database. CliRunner runs the command in the calling thread and the
    command runs its own event loop, while the spec host is served from this test's loop: each call goes
    to a worker thread."""
    for name in list(os.environ):
        if name.startswith("MCP_HUB_"):
            monkeypatch.delenv(name)
    assert settings.encryption_keys is not None
    env = {
        "MCP_HUB_DATA_DIR": str(settings.data_dir),
        "MCP_HUB_DATABASE_URL": settings.resolved_database_url,
        "MCP_HUB_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value(),
        "MCP_HUB_OAUTH_ALLOWED_HOSTS": "127.0.0.1",
    }
    runner = CliRunner()

    async def run(*args: str) -> Any:
        return await anyio.to_thread.run_sync(lambda: runner.invoke(cli_app, list(args), env=env))

    return run


async def test_cli_refresh_rereads_the_spec(cli: CliRun, spec_host: SpecHost) -> None:
    assert (await cli("db", "upgrade")).exit_code == 0
    added = await cli(
        "servers",
        "add",
        "changing",
        "--transport",
        "http",
        "--spec",
        spec_host.spec_url,
        "--header",
        f"X-Spec-Token={SPEC_TOKEN}",
        "--exclude",
        "bet",
    )
    assert added.exit_code == 0, added.output
    spec_host.spec = spec_with("alpha", "beta", "gamma", base_url=spec_host.url)
    refreshed = await cli("servers", "refresh", "changing")
    assert refreshed.exit_code == 0, refreshed.output
    assert refreshed.stdout.strip() == "refreshed changing: 2 tools"
    spec_host.spec = {"openapi": "3.1.0"}
    failed = await cli("servers", "refresh", "changing")
    assert failed.exit_code == 1
    assert "invalid OpenAPI document" in failed.output and "info" in failed.output
    assert SPEC_TOKEN not in failed.output + refreshed.output + added.output
    missing = await cli("servers", "refresh", "nope")
    assert missing.exit_code == 1 and "no server named 'nope'" in missing.output


async def test_cli_apply_names_the_server_whose_spec_is_bad(
    cli: CliRun, settings: Settings, spec_host: SpecHost, tmp_path: Path
) -> None:
    good = {
        "name": "good",
        "transport": "http",
        "spec_location": spec_host.spec_url,
        "headers": {"X-Spec-Token": SPEC_TOKEN},
    }
    servers_file = tmp_path / "servers.yaml"
    servers_file.write_text(yaml.safe_dump({"servers": [good, {**good, "name": "tokenless", "headers": {}}]}))
    assert (await cli("db", "upgrade")).exit_code == 0
    failed = await cli("servers", "apply", str(servers_file))
    assert failed.exit_code == 1
    assert "server 'tokenless': spec_location: fetching the document answered HTTP 401" in failed.output
    assert (
        await cli("servers", "list")
    ).stdout.strip() == "no servers yet: add one with `mcp-hub servers add NAME --transport http --url URL`"
    # An OAuth2 server takes its endpoints and the scopes its operations need from the spec, and a
    # second apply of the same file changes nothing.
    oauth = {**good, "name": "oauth", "auth_type": "oauth2"}
    servers_file.write_text(yaml.safe_dump({"servers": [good, oauth]}))
    assert (await cli("servers", "apply", str(servers_file))).stdout.splitlines() == [
        "created good",
        "created oauth",
    ]
    assert (await cli("servers", "apply", str(servers_file))).stdout.splitlines() == [
        "unchanged good",
        "unchanged oauth",
    ]
    async with open_hub(settings) as opened, transaction(opened.sessions) as session:
        row = await get_server_by_name(session, "oauth")
        assert (row.authorization_url, row.token_url, row.scopes) == (
            f"{spec_host.url}/oauth/authorize",
            "https://login.example.com/token",
            ["alpha:read", "beta:read"],
        )
        plain = await get_server_by_name(session, "good")
        assert (plain.authorization_url, plain.scopes) == (None, [])
    servers_file.write_text(yaml.safe_dump({"servers": [good]}))
    assert (await cli("servers", "apply", str(servers_file))).stdout.splitlines() == ["unchanged good"]
    spec_host.spec = spec_with("alpha", base_url=spec_host.url)
    assert (await cli("servers", "apply", str(servers_file))).stdout.splitlines() == ["updated good"]
