"""Where a server's authorization server is and what it supports: from the server row when an admin
configured it (no request at all), else discovered once (RFC 9728 protected-resource metadata, then
RFC 8414 / OpenID Connect discovery) and stored on the row, then the hub's client registration (RFC 7591)
when no client id is stored."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, ProtectedResourceMetadata
from mcp.shared.auth_utils import check_resource_allowed
from pydantic import ValidationError
from sqlalchemy import select

from mcp_hub.credentials.netguard import UrlGuard, guarded_client
from mcp_hub.errors import ConfigError, NotFoundError, OAuthFlowError, UpstreamError
from mcp_hub.runtime import Hub
from mcp_hub.store.engine import transaction
from mcp_hub.store.locks import lock_row
from mcp_hub.store.models import McpServer, utcnow
from mcp_hub.store.servers import ServerSecrets, read_secrets, write_secrets

MAX_DOCUMENT_BYTES = 256 * 1024
CALLBACK_PATH = "/v1/oauth/callback"
PROBE_PROTOCOL = "2025-11-25"
PROBE_REQUEST: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": PROBE_PROTOCOL,
        "capabilities": {},
        "clientInfo": {"name": "mcp-hub", "version": "0.1.0"},
    },
}


@dataclass(frozen=True)
class AuthServer:
    """What the OAuth client needs about a server's authorization server, detached from the row."""

    server_id: str
    issuer: str | None
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None
    # None: unknown (an admin configured the endpoints by hand); S256 is used either way.
    code_challenge_methods: tuple[str, ...] | None
    iss_parameter_supported: bool
    resource: str | None
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str | None
    token_endpoint_auth_method: str


def callback_url(hub: Hub) -> str:
    return hub.settings.base_url + CALLBACK_PATH


def canonical_resource(url: str | None) -> str | None:
    """RFC 8707 / MCP canonical server URI: lower-case scheme and host, no fragment."""
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))


def _auth_server_from_row(server: McpServer) -> AuthServer:
    if not server.authorization_url:
        raise ConfigError("server has no authorization_url")  # callers check first; a bug otherwise
    if not server.token_url:
        raise OAuthFlowError(
            f"server {server.name!r} has an authorization_url but no token_url: an admin must set both"
        )
    meta: dict[str, Any] = server.oauth_metadata or {}
    methods = meta.get("code_challenge_methods_supported")
    return AuthServer(
        server_id=server.id,
        issuer=server.issuer,
        authorization_endpoint=server.authorization_url,
        token_endpoint=server.token_url,
        registration_endpoint=server.registration_url,
        code_challenge_methods=tuple(methods) if isinstance(methods, list) else None,
        iss_parameter_supported=bool(meta.get("authorization_response_iss_parameter_supported")),
        resource=meta.get("resource") or canonical_resource(server.url),
        # Admin-set scopes first; else what discovery found (the 401 challenge's `scope`, else the
        # resource's `scopes_supported`), as the MCP authorization spec's scope selection says.
        scopes=tuple(server.scopes or meta.get("scopes") or ()),
    )


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx2.Headers
    body: bytes


async def fetch_limited(
    client: httpx2.AsyncClient,
    method: str,
    url: str,
    *,
    limit: int,
    deadline: float,
    what: str,
    **kwargs: Any,
) -> _Answer:
    """One request with a total deadline that reads at most `limit` bytes of the body (0: headers only,
    so an endless event stream or a huge document cannot hold the hub)."""
    try:
        async with asyncio.timeout(deadline), client.stream(method, url, **kwargs) as response:
            body = b""
            if limit:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise UpstreamError(f"{what}: the answer from {url} is too large")
            return _Answer(response.status_code, response.headers, body)
    except TimeoutError:
        raise UpstreamError(f"{what}: {url} did not answer within {deadline:g} s") from None
    except httpx2.HTTPError as exc:
        raise UpstreamError(f"{what}: cannot fetch {url}: {type(exc).__name__}") from None


async def _get_json(
    client: httpx2.AsyncClient, guard: UrlGuard, url: str, what: str, deadline: float
) -> dict[str, Any] | None:
    """A JSON document, or None when the server has none there (404 and the like)."""
    await guard.check_url(url, what=what)
    answer = await fetch_limited(
        client,
        "GET",
        url,
        limit=MAX_DOCUMENT_BYTES,
        deadline=deadline,
        what=what,
        headers={"Accept": "application/json"},
    )
    if answer.status != 200:
        return None
    try:
        document = json.loads(answer.body)
    except ValueError:
        raise UpstreamError(f"{what}: {url} did not answer with JSON") from None
    if not isinstance(document, dict):
        raise UpstreamError(f"{what}: {url} did not answer with a JSON object")
    return document


def _challenge_param(header: str | None, name: str) -> str | None:
    """A parameter of a `WWW-Authenticate: Bearer ...` challenge, e.g. `resource_metadata` (RFC 9728
    §5.1) or `scope`."""
    if not header:
        return None
    match = re.search(rf'(?:^|[\s,]){re.escape(name)}=(?:"([^"]*)"|([^\s,]+))', header)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def _well_known(url: str, name: str) -> list[str]:
    """RFC 8615 locations for `name` of a URL with a path: path-inserted first, then the root."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    origin = (parts.scheme, parts.netloc)
    urls = [urlunsplit((*origin, f"/.well-known/{name}{path}", "", ""))] if path else []
    urls.append(urlunsplit((*origin, f"/.well-known/{name}", "", "")))
    return urls


async def _protected_resource(
    client: httpx2.AsyncClient, guard: UrlGuard, server_url: str, deadline: float
) -> tuple[str, dict[str, Any], str | None] | None:
    """(metadata URL, metadata, scope from the 401 challenge) or None when the server publishes none."""
    await guard.check_url(server_url, what="upstream server URL")
    candidates: list[str] = []
    challenge_scope: str | None = None
    # An MCP request, as a client would send it: servers answer it (not a bare GET, which some
    # answer with 404 or 405) with the 401 that carries the RFC 9728 challenge. The body is not read.
    probe = await fetch_limited(
        client,
        "POST",
        server_url,
        limit=0,
        deadline=deadline,
        what="OAuth discovery probe of the upstream server",
        headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": PROBE_PROTOCOL},
        json=PROBE_REQUEST,
    )
    if probe.status == 401:
        challenge = probe.headers.get("www-authenticate")
        challenge_scope = _challenge_param(challenge, "scope")
        advertised = _challenge_param(challenge, "resource_metadata")
        if advertised:
            candidates.append(advertised)
    candidates.extend(_well_known(server_url, "oauth-protected-resource"))
    for url in candidates:
        document = await _get_json(client, guard, url, "protected resource metadata", deadline)
        if document is not None:
            return url, document, challenge_scope
    return None


async def _authorization_server_metadata(
    client: httpx2.AsyncClient, guard: UrlGuard, issuer: str, deadline: float, *, legacy: bool
) -> dict[str, Any] | None:
    """RFC 8414 / OpenID metadata for `issuer`. With `legacy` (no RFC 9728 pointer: the 2025-03-26
    convention of an authorization server at the MCP server's origin) a missing document is None and the
    document's own issuer is taken as is; otherwise both are errors."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    origin = (parts.scheme, parts.netloc)
    candidates = [urlunsplit((*origin, f"/.well-known/oauth-authorization-server{path}", "", ""))]
    candidates.append(urlunsplit((*origin, f"/.well-known/openid-configuration{path}", "", "")))
    if path:
        candidates.append(issuer.rstrip("/") + "/.well-known/openid-configuration")
    for url in candidates:
        document = await _get_json(client, guard, url, "authorization server metadata", deadline)
        if document is None:
            continue
        # RFC 8414 §3.3: the document must name the issuer it was fetched for (the issuer named by
        # the resource's metadata); in legacy mode there was no such pointer to hold it to.
        if not legacy and str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
            raise OAuthFlowError(
                f"authorization server metadata at {url} names issuer {document.get('issuer')!r}, expected {issuer!r}"
            )
        return document
    if legacy:
        return None
    raise OAuthFlowError(f"no authorization server metadata found for {issuer}")


def _legacy_default_metadata(origin: str) -> dict[str, Any]:
    """The 2025-03-26 MCP authorization spec's default endpoints, for a server that publishes no
    metadata at all. The issuer is unknown (no `iss` check is possible) and so is PKCE support."""
    return {
        "issuer": origin,
        "authorization_endpoint": f"{origin}/authorize",
        "token_endpoint": f"{origin}/token",
        "registration_endpoint": f"{origin}/register",
        "response_types_supported": ["code"],
    }


async def _discover(hub: Hub, server: McpServer) -> None:
    """Fills the row's OAuth columns from discovery. Every URL a document names is checked by the guard
    before it is stored, so a hostile document cannot point later requests at the inside."""
    if not server.url:
        raise OAuthFlowError(
            f"server {server.name!r} has no URL to discover its authorization server from: an admin must set authorization_url and token_url"
        )
    guard = hub.url_guard
    deadline = hub.settings.oauth_http_timeout_seconds
    async with guarded_client(guard, timeout=deadline) as client:
        found = await _protected_resource(client, guard, server.url, deadline)
        resource = canonical_resource(server.url)
        resource_metadata_url: str | None = None
        scopes: list[str] = []
        if found is not None:
            resource_metadata_url, document, challenge_scope = found
            servers = document.get("authorization_servers")
            if isinstance(servers, list) and servers:
                # Judged before parsing, so a file: or javascript: URL is named as such.
                await guard.check_url(str(servers[0]), what="authorization server")
            try:
                prm = ProtectedResourceMetadata.model_validate(document)
            except ValidationError:
                raise OAuthFlowError(
                    f"protected resource metadata at {resource_metadata_url} is not valid"
                ) from None
            resource = str(document.get("resource") or resource)
            if not check_resource_allowed(requested_resource=server.url, configured_resource=resource):
                # RFC 9728 §3.3 / MCP: metadata for another resource must not steer this server's tokens.
                raise OAuthFlowError(
                    f"protected resource metadata at {resource_metadata_url} is for {resource!r}, not {server.url!r}"
                )
            if challenge_scope:
                scopes = challenge_scope.split()
            elif prm.scopes_supported:
                scopes = [str(scope) for scope in prm.scopes_supported]
            issuer = str(document["authorization_servers"][0]) if prm.authorization_servers else ""
        else:
            # Servers from before RFC 9728 host their authorization server at their own origin.
            parts = urlsplit(server.url)
            issuer = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        await guard.check_url(issuer, what="authorization server")
        legacy = found is None
        fetched = await _authorization_server_metadata(client, guard, issuer, deadline, legacy=legacy)
    metadata = fetched if fetched is not None else _legacy_default_metadata(issuer)
    for name in ("authorization_endpoint", "token_endpoint", "registration_endpoint"):
        if metadata.get(name):
            await guard.check_url(str(metadata[name]), what=f"{name} of {issuer}")
    try:
        OAuthMetadata.model_validate(metadata)
    except ValidationError:
        raise OAuthFlowError(f"authorization server metadata for {issuer} is not valid") from None
    server.issuer = str(metadata["issuer"]) if fetched is not None else None
    server.authorization_url = str(metadata["authorization_endpoint"])
    server.token_url = str(metadata["token_endpoint"])
    server.registration_url = (
        str(metadata["registration_endpoint"]) if metadata.get("registration_endpoint") else None
    )
    server.resource_metadata_url = resource_metadata_url
    methods = metadata.get("code_challenge_methods_supported")
    if fetched is not None and not isinstance(methods, list):
        # MCP authorization (2025-11-25): a metadata document without code_challenge_methods_supported
        # means no PKCE, and the client must refuse. Stored as "none offered" so the start refuses; only
        # the 2025-03-26 fallback (no document at all) leaves PKCE support unknown.
        methods = []
    server.oauth_metadata = {
        "code_challenge_methods_supported": methods,
        "authorization_response_iss_parameter_supported": bool(
            metadata.get("authorization_response_iss_parameter_supported")
        ),
        "token_endpoint_auth_methods_supported": metadata.get("token_endpoint_auth_methods_supported"),
        "revocation_endpoint": metadata.get("revocation_endpoint"),
        "resource": resource,
        "scopes": scopes,
    }
    server.oauth_discovered_at = utcnow()


@dataclass(frozen=True)
class DiscoveredOAuth:
    """What discovery found for a URL, in the server form's terms."""

    issuer: str | None
    authorization_url: str
    token_url: str
    registration_url: str | None
    scopes: tuple[str, ...]
    resource_metadata_url: str | None


async def discover_for_url(hub: Hub, url: str) -> DiscoveredOAuth:
    """Discovery for an MCP server URL that need not be saved yet (the admin's "discover" button): the
    same steps and SSRF guard as a connect, run on a row that is never stored."""
    probe = McpServer(id="discover", name="discover", url=url)
    await _discover(hub, probe)
    assert probe.authorization_url is not None and probe.token_url is not None  # set by _discover
    meta: dict[str, Any] = probe.oauth_metadata or {}
    methods = meta.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        # A form saved with these endpoints skips discovery (and so the PKCE check at connect time): say
        # it now, not after an admin has stored an authorization server the hub will not use.
        raise OAuthFlowError("the authorization server does not offer PKCE with S256, which the hub requires")
    return DiscoveredOAuth(
        issuer=probe.issuer,
        authorization_url=probe.authorization_url,
        token_url=probe.token_url,
        registration_url=probe.registration_url,
        scopes=tuple(str(scope) for scope in meta.get("scopes") or ()),
        resource_metadata_url=probe.resource_metadata_url,
    )


async def authorization_server(hub: Hub, server_id: str) -> AuthServer:
    """The server's authorization server, discovering it (once) when the row does not say."""
    async with transaction(hub.sessions) as session:
        server = await session.get(McpServer, server_id)
        if server is None:
            raise NotFoundError(f"no server with id {server_id!r}")
        if server.authorization_url:
            return _auth_server_from_row(server)
    # Under the row lock, so hub instances starting flows at once discover (and store) only once.
    async with transaction(hub.sessions) as session:
        await lock_row(session, McpServer, server_id)
        server = await session.scalar(select(McpServer).where(McpServer.id == server_id).with_for_update())
        if server is None:
            raise NotFoundError(f"no server with id {server_id!r}")
        if not server.authorization_url:
            await _discover(hub, server)
        return _auth_server_from_row(server)


def _pick_auth_method(supported: object) -> str:
    methods = supported if isinstance(supported, list) else ["client_secret_basic"]
    for method in ("client_secret_basic", "client_secret_post", "none"):
        if method in methods:
            return method
    raise OAuthFlowError(
        f"the authorization server supports no client authentication the hub can use: {methods}"
    )


async def stored_client(hub: Hub, server_id: str) -> OAuthClient | None:
    """The client stored on the server row (configured by an admin or registered earlier), if any."""
    async with transaction(hub.sessions) as session:
        server = await session.get(McpServer, server_id)
        if server is None:
            raise NotFoundError(f"no server with id {server_id!r}")
        return _client_from_row(hub, server) if server.client_id else None


async def oauth_client(hub: Hub, auth: AuthServer) -> OAuthClient:
    """The hub's client at the server's authorization server: the stored one, else registered now."""
    stored = await stored_client(hub, auth.server_id)
    if stored is not None:
        return stored
    if not auth.registration_endpoint:
        raise OAuthFlowError(
            "no client_id is configured for this server and its authorization server offers no dynamic "
            "client registration: an admin must set client_id (and client_secret if it has one)"
        )
    async with transaction(hub.sessions) as session:
        # Two flows starting at once must not register two clients (the second would orphan the
        # first's pending flow): the second waits here and then finds the first's client.
        await lock_row(session, McpServer, auth.server_id)
        server = await session.scalar(
            select(McpServer).where(McpServer.id == auth.server_id).with_for_update()
        )
        if server is None:
            raise NotFoundError(f"no server with id {auth.server_id!r}")
        if server.client_id:  # another request registered while this one waited for the lock
            return _client_from_row(hub, server)
        meta: dict[str, Any] = server.oauth_metadata or {}
        method = _pick_auth_method(meta.get("token_endpoint_auth_methods_supported"))
        registered = await _register(hub, auth, method)
        server.client_id = registered.client_id
        secrets = read_secrets(hub.keyring, server)
        write_secrets(
            hub.keyring,
            server,
            ServerSecrets(env=secrets.env, headers=secrets.headers, client_secret=registered.client_secret),
        )
        server.oauth_metadata = {**meta, "token_endpoint_auth_method": registered.token_endpoint_auth_method}
        return registered


def _client_from_row(hub: Hub, server: McpServer) -> OAuthClient:
    assert server.client_id is not None
    secret = read_secrets(hub.keyring, server).client_secret
    meta: dict[str, Any] = server.oauth_metadata or {}
    method = meta.get("token_endpoint_auth_method") or ("client_secret_basic" if secret else "none")
    return OAuthClient(
        client_id=server.client_id, client_secret=secret, token_endpoint_auth_method=str(method)
    )


async def _register(hub: Hub, auth: AuthServer, method: str) -> OAuthClient:
    assert auth.registration_endpoint is not None
    guard = hub.url_guard
    await guard.check_url(auth.registration_endpoint, what="registration endpoint")
    body: dict[str, Any] = {
        "client_name": "mcp-hub",
        "redirect_uris": [callback_url(hub)],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    }
    if auth.scopes:
        body["scope"] = " ".join(auth.scopes)
    deadline = hub.settings.oauth_http_timeout_seconds
    async with guarded_client(guard, timeout=deadline) as client:
        answer = await fetch_limited(
            client,
            "POST",
            auth.registration_endpoint,
            limit=MAX_DOCUMENT_BYTES,
            deadline=deadline,
            what="dynamic client registration",
            json=body,
        )
    if answer.status not in (200, 201):
        raise OAuthFlowError(f"dynamic client registration was refused (HTTP {answer.status})")
    try:
        info = OAuthClientInformationFull.model_validate_json(answer.body)
    except ValidationError:
        raise OAuthFlowError("dynamic client registration answered without a usable client_id") from None
    if not info.client_id:
        raise OAuthFlowError("dynamic client registration answered without a client_id")
    return OAuthClient(
        client_id=info.client_id,
        client_secret=info.client_secret,
        token_endpoint_auth_method=info.token_endpoint_auth_method or method,
    )
