"""A lean HTTP/1.1 client for the pass-through: keep-alive connections per origin, responses parsed with
`httptools` (llhttp, the parser uvicorn uses), bodies streamed as they arrive.

Why not httpx2: the pass-through forwards one HTTP exchange per MCP message, and httpx2 costs about
1.2 ms of CPU per request on this kind of machine, more than twice the hub's whole budget per call.
This client does only what forwarding needs: write one request, read status and headers, hand the body
over chunk by chunk, and put the connection back when the response ended cleanly.

Every wait here is bounded by the caller (the pass-through wraps exchanges in the server's deadline);
a response that is abandoned half-read closes its connection instead of returning it to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import httptools
import httpx2

# Past this much unread body the socket stops being read until the consumer catches up.
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
# Idle keep-alive connections older than this are closed rather than reused: servers close theirs after
# a few seconds (uvicorn: 5 s), and a request written into a connection the server is closing is lost.
IDLE_REUSE_SECONDS = 4.0


class WireError(Exception):
    """The upstream could not be reached, or the connection failed before a response arrived."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> bytes:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (host if self.port == default else f"{host}:{self.port}").encode()


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; parser callbacks fill the response state the consumer waits on."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self.lost = False
        self.used = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.error: BaseException | None = None
        self.got_bytes = False
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False

    # --- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(WireError(f"invalid HTTP response: {type(exc).__name__}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.headers_done and not self.complete and self._close_delimited():
            # A body with neither a length nor chunked framing ends when the connection does.
            self.complete = True
        elif not self.complete:
            self._fail(WireError("the upstream closed the connection"))
        self._wake()

    def _close_delimited(self) -> bool:
        names = {name for name, _ in self.headers}
        chunked = any(n == b"transfer-encoding" and b"chunked" in v.lower() for n, v in self.headers)
        return b"content-length" not in names and not chunked

    def pause_writing(self) -> None:  # pragma: no cover - request bodies are capped and small
        pass

    def resume_writing(self) -> None:  # pragma: no cover
        pass

    # --- httptools callbacks ------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        # Read here: once the message is complete the parser has moved on to the next one.
        self.keep_alive = self._parser.should_keep_alive()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # --- consumer side ------------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def send(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        self._reset()
        self.used = True
        # One write: head and body leave in as few segments as the kernel allows.
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)

    async def response_head(self) -> None:
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            await self._wait()

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while not self._body:
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            await self._wait()
        chunk = self._body.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    @property
    def has_body_buffered(self) -> bool:
        return bool(self._body)

    @property
    def reusable(self) -> bool:
        return (
            self.complete
            and self.error is None
            and not self.lost
            and self.transport is not None
            and not self.transport.is_closing()
            and self.keep_alive
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Response:
    """Status and headers of an upstream response; the body is read with `chunks()` or `read()`.
    `release()` must be called (the pass-through does it in `finally`): it returns the connection to
    the pool when the body was read to its end, and closes it otherwise."""

    def __init__(self, pool: WirePool, conn: _Connection) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self.status = conn.status
        self.headers = conn.headers

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        assert conn is not None
        while True:
            chunk = await conn.next_chunk()
            if chunk is None:
                return
            yield chunk

    async def drain(self, limit: int) -> None:
        """Reads the rest of the body and drops it; WireError past `limit` bytes."""
        conn = self._conn
        assert conn is not None
        size = 0
        while (chunk := await conn.next_chunk()) is not None:
            size += len(chunk)
            if size > limit:
                raise WireError("too much left unread to keep the connection")

    @property
    def ended(self) -> bool:
        """Whether `chunks()` has handed out the whole body (it has nothing more to give)."""
        conn = self._conn
        return conn is not None and conn.complete and not conn.has_body_buffered

    async def settle(self) -> None:
        """Reads what is left of a body no one needs any more, within DRAIN_MAX_BYTES and
        DRAIN_MAX_SECONDS, so that `release` can keep the connection (abandoned, it is closed)."""
        if self.ended:
            return
        with contextlib.suppress(WireError, TimeoutError):
            async with asyncio.timeout(DRAIN_MAX_SECONDS):
                await self.drain(DRAIN_MAX_BYTES)

    async def read(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise WireError(f"upstream response larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn)


class WirePool:
    """Keep-alive connections by origin. Connections are reused last-in first-out (the warmest first)
    and at most `max_idle` per origin are kept; there is no cap on connections in use, so one slow
    upstream exchange never makes another wait for a connection."""

    def __init__(self, *, max_idle: int = 64, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[Origin, list[_Connection]] = {}
        self._max_idle = max_idle
        self._ssl = ssl_context
        self._all: set[_Connection] = set()
        # Connections opened and requests sent so far: with keep-alive working, the first stays near
        # the peak concurrency while the second grows with every call.
        self.opened = 0
        self.requests = 0

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: _Connection(origin),
                origin.host,
                origin.port,
                ssl=self._ssl_context() if origin.scheme == "https" else None,
                server_hostname=origin.host if origin.scheme == "https" else None,
            )
        except OSError as exc:
            raise WireError(f"cannot connect: {type(exc).__name__}: {exc.strerror or exc}") from None
        self._all.add(conn)
        self.opened += 1
        return conn

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        cutoff = time.monotonic() - IDLE_REUSE_SECONDS
        while idle:
            conn = idle.pop()
            if conn.lost or conn.transport is None or conn.transport.is_closing() or conn.idle_since < cutoff:
                conn.close()
                self._all.discard(conn)
                continue
            return conn
        return None

    async def request(self, origin: Origin, head: bytes, body: bytes) -> Response:
        """Sends one request (`head`: request line and headers, ending in a blank line) and waits for
        the response's status and headers. A reused connection that turns out to be closed before any
        byte of the response arrived is replaced once: the server never saw the request on it."""
        self.requests += 1
        for _ in range(2):
            conn = self._take_idle(origin)
            fresh = conn is None
            if conn is None:
                conn = await self._connect(origin)
            try:
                conn.send(head, body)
                await conn.response_head()
            except WireError:
                conn.close()
                self._all.discard(conn)
                if fresh or conn.got_bytes:
                    raise
                continue
            except BaseException:
                # Cancelled (deadline) or anything else mid-exchange: the connection's state is unknown.
                conn.close()
                self._all.discard(conn)
                raise
            return Response(self, conn)
        raise WireError("the upstream closed the connection")  # pragma: no cover - loop always returns

    def release(self, conn: _Connection) -> None:
        if conn.reusable:
            idle = self._idle.setdefault(conn.origin, [])
            if len(idle) < self._max_idle:
                conn.idle_since = time.monotonic()
                idle.append(conn)
                return
        conn.close()
        self._all.discard(conn)

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()


# What is read, at most, from the rest of an abandoned POST response to keep its connection.
DRAIN_MAX_BYTES = 64 * 1024
DRAIN_MAX_SECONDS = 1.0


class _WireBody(httpx2.AsyncByteStream):
    """An upstream response body for httpx2. Closed before its end, a POST body is first read to its
    end (within bounds): the SDK's streamable-HTTP client closes each POST's SSE response as soon as
    the JSON-RPC response event arrives, a few bytes before the stream's closing chunk, and a
    connection can only be reused once its response was read whole. Without this every upstream call
    opened a new TCP connection, and the upstream paid for accepting each one."""

    def __init__(self, response: Response, drain: bool) -> None:
        self._response = response
        self._drain = drain

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.chunks():
                yield chunk
        except WireError as exc:
            raise httpx2.ReadError(str(exc)) from None

    async def aclose(self) -> None:
        if self._drain:
            await self._response.settle()
        self._response.release()


class WireTransport(httpx2.AsyncBaseTransport):
    """httpx2's transport interface on a `WirePool`, for the SDK's streamable-HTTP client on the
    terminating path: one write per request, llhttp parsing, connections shared with the
    pass-through. Timeouts are the callers' total deadlines (the pool wraps every call in one)."""

    def __init__(self, pool: WirePool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        scheme = url.scheme
        origin = Origin(scheme, url.host, url.port or (443 if scheme == "https" else 80))
        body = await request.aread()
        lines = [request.method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            if name.lower() in (b"content-length", b"transfer-encoding", b"connection"):
                continue
            lines += [name, b": ", value, b"\r\n"]
        if body or request.method in ("POST", "PUT", "PATCH"):
            lines += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        lines.append(b"\r\n")
        try:
            response = await self._pool.request(origin, b"".join(lines), body)
        except WireError as exc:
            raise httpx2.ConnectError(str(exc), request=request) from None
        return httpx2.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_WireBody(response, drain=request.method == "POST"),
            extensions={"http_version": b"HTTP/1.1"},
            request=request,
        )
