"""Canaries: OAuth codes and tokens, BYOK keys and the registered client secret never appear in a log
line (uvicorn's access log of `callback?code=...` included), an API response, or the SQLite file."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import uvicorn
from fastapi import FastAPI

from mcp_hub.app import create_app
from mcp_hub.credentials.resolver import resolve
from mcp_hub.credentials.store import read_payload
from mcp_hub.logredact import redact_text
from mcp_hub.settings import Settings
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import McpServer
from mcp_hub.store.servers import read_secrets
from tests.credentials.conftest import ADMIN, AuthServerProcess, credential_row, expire, hub_of
from tests.mcp_peers.procs import free_port


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_access_log_never_shows_the_callback_query(settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("logging does not depend on the database")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="info", access_log=True)
    )
    access = Collect()
    logging.getLogger("uvicorn.access").addHandler(access)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started
        code, state = "canary-code-" + secrets.token_hex(8), "canary-state-" + secrets.token_hex(8)
        async with httpx2.AsyncClient() as http:
            response = await http.get(
                f"http://127.0.0.1:{port}/v1/oauth/callback", params={"code": code, "state": state}
            )
        assert response.status_code == 400
        assert code not in response.text and state not in response.text
    finally:
        server.should_exit = True
        await task
        logging.getLogger("uvicorn.access").removeHandler(access)
    callback_lines = [line for line in access.lines if "/v1/oauth/callback" in line]
    assert callback_lines, access.lines
    assert all("/v1/oauth/callback?[redacted]" in line for line in callback_lines)
    assert not any(code in line or state in line for line in access.lines)


def test_redaction_of_other_log_lines() -> None:
    line = 'HTTP Request: GET https://as.example/cb?code=abc123&state=s1&x=1 "HTTP/1.1 200 OK"'
    assert redact_text(line) == 'HTTP Request: GET https://as.example/cb?[redacted] "HTTP/1.1 200 OK"'
    # A BYOK key under a parameter name of the admin's choosing, in an upstream request line.
    assert (
        redact_text("Connecting to StreamableHTTP endpoint: http://127.0.0.1:9/mcp?sig=k-123#f")
        == "Connecting to StreamableHTTP endpoint: http://127.0.0.1:9/mcp?[redacted]#f"
    )
    assert (
        redact_text("refresh_token=rt-1&access_token=at-2")
        == "refresh_token=[redacted]&access_token=[redacted]"
    )
    assert redact_text("Authorization: Bearer abcdefgh12345") == "Authorization: Bearer [redacted]"


async def test_tokens_keys_and_codes_never_leave_their_place(
    app: FastAPI,
    client: httpx2.AsyncClient,
    settings: Settings,
    oidc_as: AuthServerProcess,
    make_user,
    make_server,
    browsers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hub = hub_of(app)
    alice = await make_user("alice")
    oauth = await make_server("notes", url=oidc_as.resource, auth_type="oauth2")
    byok = await make_server("search", url="https://s.example/mcp", auth_type="byok")
    key = "canary-key-" + secrets.token_hex(12)
    responses: list[httpx2.Response] = []

    responses.append(
        await client.put(f"/v1/servers/{byok['id']}/credential", json={"key": key}, headers=alice.auth)
    )
    browser = browsers(alice)
    start = await browser.start(oauth["id"])
    responses.append(start)
    callback = await browser.consent(start.headers["location"])
    code = parse_qs(urlsplit(callback).query)["code"][0]
    responses.append(await browser.http.get(callback))
    first = read_payload(hub.keyring, await credential_row(hub, alice.id, oauth["id"]))
    await expire(hub, (await credential_row(hub, alice.id, oauth["id"])).id)
    await resolve(hub, alice.id, oauth["id"])
    second = read_payload(hub.keyring, await credential_row(hub, alice.id, oauth["id"]))
    async with transaction(hub.sessions) as session:
        row = await session.get(McpServer, oauth["id"])
        assert row is not None
        client_secret = read_secrets(hub.keyring, row).client_secret
    assert client_secret
    responses.append(await client.get("/v1/credentials", headers=alice.auth))
    responses.append(await client.get(f"/v1/servers/{oauth['id']}", headers=ADMIN))
    responses.append(await client.get("/v1/servers", headers=ADMIN))

    canaries = {
        "byok key": key,
        "code": code,
        "access token": first["access_token"],
        "refresh token": first["refresh_token"],
        "new access token": second["access_token"],
        "new refresh token": second["refresh_token"],
        "client secret": client_secret,
    }
    logged = caplog.text
    for name, value in canaries.items():
        assert value not in logged, f"{name} in the logs"
        for response in responses:
            assert value not in response.text, f"{name} in a response"
            assert value not in str(response.headers), f"{name} in response headers"
    if settings.is_sqlite:
        database = Path(settings.resolved_database_url.split("///", 1)[1])
        files = [path for path in database.parent.iterdir() if path.name.startswith(database.name)]
        assert files
        blob = b"".join(path.read_bytes() for path in files)
        for name, value in canaries.items():
            assert value.encode() not in blob, f"{name} in the database file"
