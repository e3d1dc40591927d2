"""Opening a transport to an upstream: streamable HTTP, SSE or stdio.

Each connector enters its transport on the given exit stack and returns the stream pair a
`ClientSession` runs on. The caller's hub key never reaches here: only what the credential resolver
chose (the server's static headers today) is sent upstream.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx2
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage

from mcp_hub.errors import ConfigError
from mcp_hub.upstream.credentials import ResolvedCredential
from mcp_hub.upstream.target import UpstreamTarget
from mcp_hub.upstream.wire import WirePool, WireTransport

# Reads on an upstream's SSE stream may legitimately be quiet for a long time (a long tool call); the
# per-call deadline, not the socket read timeout, bounds how long a caller waits.
SSE_READ_TIMEOUT_SECONDS = 3600.0

Streams = tuple[ReadStream[SessionMessage | Exception], WriteStream[SessionMessage]]


def _http_timeout(connect_timeout: float) -> httpx2.Timeout:
    return httpx2.Timeout(connect_timeout, read=SSE_READ_TIMEOUT_SECONDS)


class InProcessConnector(Protocol):
    """Opens an upstream served inside the hub (OpenAPI-backed servers: mcp_hub.openapi.runtime)."""

    async def open(
        self,
        target: UpstreamTarget,
        credential: ResolvedCredential,
        stack: AsyncExitStack,
        *,
        on_unauthorized: Callable[[], None] | None = None,
    ) -> Streams: ...


async def open_transport(
    target: UpstreamTarget,
    credential: ResolvedCredential,
    stack: AsyncExitStack,
    *,
    connect_timeout: float,
    on_unauthorized: Callable[[], None] | None = None,
    on_session_id: Callable[[str], None] | None = None,
    openapi: InProcessConnector | None = None,
    wire: WirePool | None = None,
) -> Streams:
    """`on_unauthorized` is told when an HTTP or SSE upstream answers 401: the SDK clients report that
    only as a generic error (SSE: not at all, the message is lost), and the pool needs to know the
    credential itself was refused. `on_session_id` is told the `Mcp-Session-Id` a streamable-HTTP
    upstream gives the session (the SDK's transport keeps it to itself), so requests the hub forwards
    as plain HTTP can join that session. `wire`: the hub's pool of upstream HTTP connections (shared
    with the pass-through); without one, streamable HTTP goes through httpx2's own transport."""
    if target.openapi is not None:
        if openapi is None:
            raise ConfigError(f"server {target.name!r} is OpenAPI-backed but the hub runs no OpenAPI runtime")
        return await openapi.open(target, credential, stack, on_unauthorized=on_unauthorized)
    if target.transport == "http":
        return await _open_http(
            target, credential, stack, connect_timeout, on_unauthorized, on_session_id, wire
        )
    if target.transport == "sse":
        return await _open_sse(target, credential, stack, connect_timeout, on_unauthorized)
    if target.transport == "stdio":
        return await _open_stdio(target, credential, stack)
    raise ConfigError(f"server {target.name!r} has unknown transport {target.transport!r}")


async def _open_http(
    target: UpstreamTarget,
    credential: ResolvedCredential,
    stack: AsyncExitStack,
    connect_timeout: float,
    on_unauthorized: Callable[[], None] | None,
    on_session_id: Callable[[str], None] | None,
    wire: WirePool | None,
) -> Streams:
    if not target.url:
        raise ConfigError(f"server {target.name!r} has no url")
    # The SDK's client on the hub's lean transport: httpcore's cost per request (two writes, h11
    # parsing, its pool bookkeeping) was the largest part of a proxied call on /mcp.
    client = await stack.enter_async_context(
        httpx2.AsyncClient(
            headers=credential.headers,
            timeout=_http_timeout(connect_timeout),
            event_hooks={"response": [_status_watcher(on_unauthorized, on_session_id)]},
            transport=WireTransport(wire) if wire is not None else None,
        )
    )
    url = with_query(target.url, credential.query)
    read, write = await stack.enter_async_context(streamable_http_client(url, http_client=client))
    return read, write


async def _open_sse(
    target: UpstreamTarget,
    credential: ResolvedCredential,
    stack: AsyncExitStack,
    connect_timeout: float,
    on_unauthorized: Callable[[], None] | None,
) -> Streams:
    if not target.url:
        raise ConfigError(f"server {target.name!r} has no url")

    def watched_client(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        # The SDK's default factory, plus the 401 watcher (sse_client passes its own timeouts in).
        return httpx2.AsyncClient(
            headers=headers,
            timeout=timeout or _http_timeout(connect_timeout),
            auth=auth,
            event_hooks={"response": [_status_watcher(on_unauthorized)]},
        )

    read, write = await stack.enter_async_context(
        sse_client(
            with_query(target.url, credential.query),
            headers=credential.headers,
            timeout=connect_timeout,
            sse_read_timeout=SSE_READ_TIMEOUT_SECONDS,
            httpx_client_factory=watched_client,
        )
    )
    return read, write


def _status_watcher(
    on_unauthorized: Callable[[], None] | None,
    on_session_id: Callable[[str], None] | None = None,
) -> Callable[[httpx2.Response], Awaitable[None]]:
    async def watch(response: httpx2.Response) -> None:
        if response.status_code == 401 and on_unauthorized is not None:
            on_unauthorized()
        if on_session_id is not None and (session_id := response.headers.get("mcp-session-id")):
            on_session_id(session_id)

    return watch


def with_query(url: str, query: dict[str, str]) -> str:
    if not query:
        return url
    parts = urlsplit(url)
    merged = [*parse_qsl(parts.query, keep_blank_values=True), *sorted(query.items())]
    return urlunsplit(parts._replace(query=urlencode(merged)))


def stdio_parameters(target: UpstreamTarget, credential: ResolvedCredential) -> StdioServerParameters:
    if not target.command:
        raise ConfigError(f"server {target.name!r} has no command")
    # Through the launcher so the process dies with the hub even if the hub is killed outright.
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_hub.upstream.launcher", target.command, *target.args],
        env={**target.env, **credential.env},
    )


async def _open_stdio(
    target: UpstreamTarget, credential: ResolvedCredential, stack: AsyncExitStack
) -> Streams:
    params = stdio_parameters(target, credential)
    read, write = await stack.enter_async_context(stdio_client(params, errlog=_stderr_sink()))
    return read, write


def _stderr_sink() -> Any:
    # The upstream's stderr goes to the hub's stderr (operators see it); it is never parsed.
    return sys.stderr
