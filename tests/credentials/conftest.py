"""Fixtures for the credential tests: a real authorization server (npm `oidc-provider`) on loopback, a
hub allowed to reach loopback for OAuth (the operator allowlist), users with keys, and a scripted
"browser" that walks the authorize → login → consent → callback redirects."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from mcp_hub.crypto import generate_key_entry
from mcp_hub.runtime import Hub
from mcp_hub.settings import Settings
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import McpUserCredential, utcnow
from tests.conftest import ADMIN_KEY

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
HUB_ORIGIN = "http://127.0.0.1:4000"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class AuthServerProcess:
    issuer: str
    process: subprocess.Popen[str]

    @property
    def resource(self) -> str:
        return f"{self.issuer}/mcp"

    def counts(self) -> dict[str, Any]:
        return dict(httpx2.get(f"{self.issuer}/test/counts").json())

    def reset(self) -> None:
        httpx2.post(f"{self.issuer}/test/reset").raise_for_status()

    def refresh_grants(self) -> int:
        return int(self.counts()["grants"].get("refresh_token", 0))


# The static client oidc_as.mjs registers for upstreams that introspect tokens (not a real secret).
INTROSPECTION_CLIENT_ID = "upstream-introspection"
INTROSPECTION_SECRET = "test-only-introspection-secret"


@contextmanager
def auth_server(access_ttl_seconds: int | None = None) -> Iterator[AuthServerProcess]:
    """Starts oidc_as.mjs; `access_ttl_seconds` shortens access-token lifetimes (default one hour)."""
    env = {
        **os.environ,
        "PORT": "0",
        **({"ACCESS_TTL": str(access_ttl_seconds)} if access_ttl_seconds else {}),
    }
    process = subprocess.Popen(
        ["node", str(HERE / "oidc_as.mjs")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("oidc-provider test server did not start")
        yield AuthServerProcess(issuer=json.loads(line)["issuer"], process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def oidc_as() -> Iterator[AuthServerProcess]:
    with auth_server() as running:
        yield running


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The shared settings plus the operator allowlist the loopback tests need (127.0.0.1)."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        encryption_keys=generate_key_entry(),
        admin_key=ADMIN_KEY,
        oauth_allowed_hosts=["127.0.0.1"],
    )


def hub_of(app: FastAPI) -> Hub:
    hub: Hub = app.state.hub
    return hub


@dataclass
class User:
    id: str
    name: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Browser:
    """One person's browser: its own cookie jar; the hub reached in-process (ASGI), the authorization
    server over loopback. Login at the authorization server is the `X-Test-User` header."""

    def __init__(self, app: FastAPI | None, user: User, hub_origin: str = HUB_ORIGIN) -> None:
        """`app` reaches the hub in-process; without it, `hub_origin` is a hub listening on loopback."""
        self.user = user
        self.hub_origin = hub_origin
        self.http = httpx2.AsyncClient(
            mounts={hub_origin: httpx2.ASGITransport(app=app)} if app is not None else None,
            headers={"X-Test-User": user.name},
            follow_redirects=False,
            timeout=30,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def start(self, server_id: str, **params: str) -> httpx2.Response:
        return await self.http.get(
            f"{self.hub_origin}/v1/servers/{server_id}/oauth/authorize", params=params, headers=self.user.auth
        )

    async def consent(self, authorization_url: str) -> str:
        """Walks login and consent at the authorization server; returns the callback URL it sends the
        browser to (not yet opened)."""
        url = authorization_url
        for _ in range(12):
            response = await self.http.get(url)
            if response.status_code not in (302, 303):
                raise AssertionError(
                    f"authorization server answered {response.status_code}: {response.text[:300]}"
                )
            location = response.headers["location"]
            url = (
                location
                if "://" in location
                else f"{urlsplit(url).scheme}://{urlsplit(url).netloc}{location}"
            )
            if url.startswith(f"{self.hub_origin}/v1/oauth/callback"):
                return url
        raise AssertionError("too many redirects at the authorization server")

    async def connect(self, server_id: str, redirect: str = "/ui/servers") -> httpx2.Response:
        start = await self.start(server_id, redirect=redirect)
        assert start.status_code == 302, start.text
        callback = await self.consent(start.headers["location"])
        return await self.http.get(callback)


@pytest.fixture
async def make_user(client: httpx2.AsyncClient) -> Callable[[str], Awaitable[User]]:
    async def _make(name: str) -> User:
        created = await client.post("/v1/users", json={"name": name}, headers=ADMIN)
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        key = await client.post("/v1/keys", json={"user_id": user_id}, headers=ADMIN)
        assert key.status_code == 201, key.text
        return User(id=user_id, name=name, key=key.json()["key"])

    return _make


@pytest.fixture
async def browsers(app: FastAPI) -> AsyncIterator[Callable[[User], Browser]]:
    opened: list[Browser] = []

    def _open(user: User) -> Browser:
        browser = Browser(app, user)
        opened.append(browser)
        return browser

    yield _open
    for browser in opened:
        await browser.aclose()


@pytest.fixture
async def make_server(client: httpx2.AsyncClient) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def _make(name: str, **fields: Any) -> dict[str, Any]:
        body = {"name": name, "transport": "http", **fields}
        created = await client.post("/v1/servers", json=body, headers=ADMIN)
        assert created.status_code == 201, created.text
        return dict(created.json())

    return _make


async def credential_row(hub: Hub, user_id: str, server_id: str) -> McpUserCredential:
    async with transaction(hub.sessions) as session:
        row = await session.scalar(
            select(McpUserCredential).where(
                McpUserCredential.user_id == user_id, McpUserCredential.server_id == server_id
            )
        )
    assert row is not None
    return row


async def expire(hub: Hub, credential_id: str) -> None:
    """Makes the stored token look expired to the hub (the authorization server still knows it)."""
    async with transaction(hub.sessions) as session:
        await session.execute(
            update(McpUserCredential)
            .where(McpUserCredential.id == credential_id)
            .values(expires_at=utcnow() - timedelta(minutes=5))
        )


class FakeOAuthPeer:
    """A loopback HTTP server whose answers a test scripts (hostile discovery documents, a token endpoint
    that leaves out access_token...). Records every path it is asked for."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                path = self.path.split("?", 1)[0]
                peer.requests.append(path)
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                status, headers, body = peer.routes.get(path, (404, {}, b"{}"))
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def json(self, path: str, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.routes[path] = (status, headers or {}, json.dumps(body).encode())

    def metadata(self, **overrides: Any) -> dict[str, Any]:
        """Valid authorization server metadata for this peer, with `overrides` applied."""
        return {
            "issuer": self.origin,
            "authorization_endpoint": f"{self.origin}/authorize",
            "token_endpoint": f"{self.origin}/token",
            "registration_endpoint": f"{self.origin}/register",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            **overrides,
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_peer() -> Iterator[FakeOAuthPeer]:
    peer = FakeOAuthPeer()
    yield peer
    peer.close()
