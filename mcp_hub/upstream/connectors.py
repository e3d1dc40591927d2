"""Opening a transport to an upstream: streamable HTTP, SSE or stdio.

Each connector enters its transport on the given exit stack and returns the stream pair a
`ClientSession` runs on. The caller's hub key never reaches here: only what the credential resolver
chose (the server's static headers today) is sent upstream.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import httpx2
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage

from mcp_hub.errors import ConfigError
from mcp_hub.upstream.credentials import ResolvedCredential
from mcp_hub.upstream.target import UpstreamTarget

# Reads on an upstream's SSE stream may legitimately be quiet for a long time (a long tool call); the
# per-call deadline, not the socket read timeout, bounds how long a caller waits.
SSE_READ_TIMEOUT_SECONDS = 3600.0

Streams = tuple[ReadStream[SessionMessage | Exception], WriteStream[SessionMessage]]


def _http_timeout(connect_timeout: float) -> httpx2.Timeout:
    return httpx2.Timeout(connect_timeout, read=SSE_READ_TIMEOUT_SECONDS)


# What is read, at most, from the rest of an abandoned POST response to keep its connection.
DRAIN_MAX_BYTES = 64 * 1024
DRAIN_MAX_SECONDS = 1.0


class _DrainOnClose(httpx2.AsyncByteStream):
    """A POST response body that, when closed before its end, reads the rest (within bounds) first.

    The SDK's streamable-HTTP client closes each POST's SSE response as soon as the JSON-RPC response
    event arrives, before the stream's closing chunk. httpcore can only put a connection back in its
    pool once the body was read to the end, so every upstream call opened a new TCP connection (and the
    upstream paid for accepting it: about twice its CPU per call). Servers end that stream right after
    the response, so the rest is a few bytes already in flight."""

    def __init__(self, inner: httpx2.AsyncByteStream) -> None:
        self._inner = inner
        self._parts = inner.__aiter__()
        self._ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                part = await self._parts.__anext__()
            except StopAsyncIteration:
                self._ended = True
                return
            yield part

    async def aclose(self) -> None:
        if not self._ended:
            drained = 0
            with anyio.move_on_after(DRAIN_MAX_SECONDS):
                try:
                    while drained <= DRAIN_MAX_BYTES:
                        drained += len(await self._parts.__anext__())
                except StopAsyncIteration:
                    self._ended = True
                except httpx2.TransportError:
                    pass  # the connection is closed below either way
        await self._inner.aclose()


class DrainingTransport(httpx2.AsyncBaseTransport):
    """httpx2's transport, with POST response bodies drained on close (see `_DrainOnClose`)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if request.method == "POST" and isinstance(response.stream, httpx2.AsyncByteStream):
            response.stream = _DrainOnClose(response.stream)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def open_transport(
    target: UpstreamTarget, credential: ResolvedCredential, stack: AsyncExitStack, *, connect_timeout: float
) -> Streams:
    if target.transport == "http":
        return await _open_http(target, credential, stack, connect_timeout)
    if target.transport == "sse":
        return await _open_sse(target, credential, stack, connect_timeout)
    if target.transport == "stdio":
        return await _open_stdio(target, credential, stack)
    raise ConfigError(f"server {target.name!r} has unknown transport {target.transport!r}")


async def _open_http(
    target: UpstreamTarget, credential: ResolvedCredential, stack: AsyncExitStack, connect_timeout: float
) -> Streams:
    if not target.url:
        raise ConfigError(f"server {target.name!r} has no url")
    client = await stack.enter_async_context(
        httpx2.AsyncClient(
            headers=credential.headers, timeout=_http_timeout(connect_timeout), transport=DrainingTransport()
        )
    )
    url = with_query(target.url, credential.query)
    read, write = await stack.enter_async_context(streamable_http_client(url, http_client=client))
    return read, write


async def _open_sse(
    target: UpstreamTarget, credential: ResolvedCredential, stack: AsyncExitStack, connect_timeout: float
) -> Streams:
    if not target.url:
        raise ConfigError(f"server {target.name!r} has no url")
    read, write = await stack.enter_async_context(
        sse_client(
            with_query(target.url, credential.query),
            headers=credential.headers,
            timeout=connect_timeout,
            sse_read_timeout=SSE_READ_TIMEOUT_SECONDS,
        )
    )
    return read, write


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
