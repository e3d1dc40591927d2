"""The OpenAPI parts that live as long as the hub: pooled HTTP clients (one per server, one for reading
specs), tool lists built once per spec version, and the two entry points — `load` (read and validate a
spec for a create, update or refresh) and `open` (the connector the upstream pool calls)."""

from __future__ import annotations

import http.cookiejar
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx2

from mcp_hub.credentials.netguard import GuardedTransport, UrlGuard
from mcp_hub.errors import InvalidSpecError
from mcp_hub.openapi.loader import parse_document, read_spec_bytes
from mcp_hub.openapi.refs import resolve
from mcp_hub.openapi.request import CallLimits
from mcp_hub.openapi.server import OpenApiToolServer, serve_in_memory
from mcp_hub.openapi.spec import server_url, validate_document
from mcp_hub.openapi.tools import OperationTool, build_tools
from mcp_hub.runtime import Hub
from mcp_hub.upstream.connectors import Streams
from mcp_hub.upstream.credentials import ResolvedCredential
from mcp_hub.upstream.target import OpenApiSource, UpstreamTarget

SPEC_CLIENT = "spec"
# Tests of unsaved server forms share one client: each has a fresh server id, and a client per id would
# be kept (never closed while the hub runs) for an id nothing uses again.
UNSAVED_CLIENT = "unsaved"
TOOLSET_CACHE = 256


@dataclass(frozen=True)
class LoadedSpec:
    document: dict[str, Any]
    base_url: str
    tool_count: int


def _no_cookies() -> http.cookiejar.CookieJar:
    # Clients are shared by every user of a server: a cookie one user's call received must never ride
    # along on another user's call.
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _resolved(document: dict[str, Any], schemes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: resolve(document, scheme) for name, scheme in schemes.items()}


class OpenApiRuntime:
    def __init__(
        self,
        guard: UrlGuard,
        *,
        max_spec_bytes: int,
        max_response_bytes: int,
        spec_deadline_seconds: float,
        connect_timeout: float,
    ) -> None:
        self._guard = guard
        self._max_spec_bytes = max_spec_bytes
        self._max_response_bytes = max_response_bytes
        self._spec_deadline = spec_deadline_seconds
        self._connect_timeout = connect_timeout
        self._clients: dict[str, httpx2.AsyncClient] = {}
        self._toolsets: OrderedDict[str, list[OperationTool]] = OrderedDict()

    def client(self, key: str) -> httpx2.AsyncClient:
        """The pooled client for `key` (a server id, SPEC_CLIENT or UNSAVED_CLIENT). Kept until `aclose`, never closed
        earlier: a request in flight may hold it."""
        client = self._clients.get(key)
        if client is None:
            # Every connection dials only addresses the SSRF guard approves; no redirects (each hop would
            # need its own check), no proxies or cookies; the call's own deadline bounds the whole call.
            client = httpx2.AsyncClient(
                transport=GuardedTransport(self._guard),
                follow_redirects=False,
                trust_env=False,
                cookies=_no_cookies(),
                timeout=httpx2.Timeout(None, connect=self._connect_timeout),
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def load(
        self,
        location: str,
        *,
        headers: Mapping[str, str],
        base_url_override: str | None,
        file_roots: Sequence[Path] | None,
        client_key: str = SPEC_CLIENT,
    ) -> LoadedSpec:
        """Reads and validates a spec; raises InvalidSpecError listing the problems."""
        raw = await read_spec_bytes(
            location,
            client=self.client(client_key),
            guard=self._guard,
            headers=headers,
            max_bytes=self._max_spec_bytes,
            deadline_seconds=self._spec_deadline,
            file_roots=file_roots,
        )
        # Parsing (YAML especially) is CPU-bound: off the event loop (validating moves there itself).
        document = await anyio.to_thread.run_sync(parse_document, raw)
        base_url, tool_count = await validate_document(
            document, spec_location=location, base_url_override=base_url_override, guard=self._guard
        )
        return LoadedSpec(document=document, base_url=base_url, tool_count=tool_count)

    def tools(self, source: OpenApiSource) -> list[OperationTool]:
        cached = self._toolsets.get(source.digest)
        if cached is None:
            cached = build_tools(source.document, include=source.include, exclude=source.exclude)
            self._toolsets[source.digest] = cached
            while len(self._toolsets) > TOOLSET_CACHE:
                self._toolsets.popitem(last=False)
        return cached

    async def open(
        self,
        target: UpstreamTarget,
        credential: ResolvedCredential,
        stack: AsyncExitStack,
        *,
        on_unauthorized: Callable[[], None] | None = None,
    ) -> Streams:
        """The connector for OpenAPI targets: an in-process MCP server for this credential."""
        source = target.openapi
        if source is None:
            raise InvalidSpecError([f"server {target.name!r} is not OpenAPI-backed"])
        components = source.document.get("components") or {}
        handlers = OpenApiToolServer(
            name=target.name,
            tools=self.tools(source),
            base_url=server_url(source.document, source.spec_location, source.base_url_override),
            security_schemes=_resolved(source.document, components.get("securitySchemes") or {}),
            credential=credential,
            shared_headers=target.headers,
            placement_configured=source.placement_configured,
            client=self.client(UNSAVED_CLIENT if target.unsaved else target.server_id),
            limits=CallLimits(
                deadline_seconds=target.timeout_seconds, max_response_bytes=self._max_response_bytes
            ),
            # Only a credential that can be replaced is worth a retry; a refused BYOK key or shared
            # secret is an error result carrying the API's own words.
            on_unauthorized=on_unauthorized if credential.on_rejected is not None else None,
        )
        return await stack.enter_async_context(serve_in_memory(handlers.server))


def openapi_runtime(hub: Hub) -> OpenApiRuntime:
    settings = hub.settings
    return OpenApiRuntime(
        hub.url_guard,
        max_spec_bytes=settings.openapi_max_spec_bytes,
        max_response_bytes=settings.openapi_max_response_bytes,
        spec_deadline_seconds=settings.upstream_timeout_seconds,
        connect_timeout=settings.upstream_connect_timeout_seconds,
    )
