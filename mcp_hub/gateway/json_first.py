"""The hub's streamable-HTTP sessions answer a request with one JSON body when nothing comes before its
response, and open an SSE stream only when there is more to say.

A 2025-era client accepts either framing for the answer to each POST (it must list both in `Accept`). The
SDK's transport picks one for the whole server: SSE, so that progress, log messages and requests back to
the client can precede the result; or JSON, which drops them. Streaming every answer costs the server
about 0.3 ms of CPU per call (sse-starlette starts a task group of four tasks per response), a quarter of
what a proxied `tools/call` costs the hub, and the client pays again to parse the stream. Most calls say
nothing before their result, so the hub waits up to `JSON_WINDOW_SECONDS` for the request's first
message: if that is the response, it goes out as `application/json`; anything else (a progress
notification, a log message, a request to the client), or no message by then, and the answer becomes the
SSE stream it always was, that first message included. Handlers may still send requests back to the
client, since the stream can always be opened. The SDK serves 2026-07-28 requests the same way.

Built on the SDK transport's own steps (pinned `mcp` version): what is not a plain request on a session
(initialize, notifications, responses, bodies the SDK rejects) and sessions with an event store take the
SDK's path unchanged, errors and all.
"""

from __future__ import annotations

import logging
from functools import partial
from http import HTTPStatus
from typing import Any, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server.streamable_http import (
    CONTENT_TYPE_SSE,
    MCP_SESSION_ID_HEADER,
    REQUEST_STREAM_BUFFER_SIZE,
    EventMessage,
    SSEEvent,
    StreamableHTTPServerTransport,
    check_accept_headers,
)
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    INTERNAL_ERROR,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# The window the SDK gives 2026-07-28 requests before it commits to SSE (`_SSE_PING_INTERVAL` of
# mcp.server._streamable_http_modern), so both eras' clients see the same framing; past it, the stream's
# keep-alive pings hold the connection open behind proxies with an idle-read timeout.
JSON_WINDOW_SECONDS = 15.0

logger = logging.getLogger(__name__)


class SessionCalls(Protocol):
    """Where a session's `tools/call` may be forwarded instead of served (mcp_hub.gateway.call_forward)."""

    async def handle_session_call(
        self, scope: Scope, receive: Receive, send: Send, body: bytes, session_id: str, version: str
    ) -> bool: ...

    def cancel(self, session_id: str, request_id: Any, reason: Any) -> bool: ...


class JsonFirstTransport(StreamableHTTPServerTransport):
    # Set by the session manager on each session it opens.
    forwarder: SessionCalls | None = None

    async def _handle_post_request(
        self, scope: Scope, request: Request, receive: Receive, send: Send
    ) -> None:
        message = await self._plain_message(request)
        if isinstance(message, JSONRPCNotification):
            if not await self._cancel_forwarded(scope, request, receive, send, message):
                await super()._handle_post_request(scope, request, receive, send)
            return
        if message is None:
            await super()._handle_post_request(scope, request, receive, send)
            return
        try:
            await self._answer(scope, request, receive, send, message)
        except Exception as exc:
            # As the SDK's POST handler does: a JSON-RPC 500 to the client, the error to the session.
            logger.exception("Error handling POST request")
            await self._create_error_response(
                "Error handling POST request", HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR
            )(scope, receive, send)
            if self._read_stream_writer is not None:
                await self._read_stream_writer.send(exc)

    async def _answer(
        self, scope: Scope, request: Request, receive: Receive, send: Send, message: JSONRPCRequest
    ) -> None:
        if not await self._validate_request_headers(request, send):
            return
        writer = self._read_stream_writer
        assert writer is not None  # _plain_message checked it
        request_id = str(message.id)
        version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER, DEFAULT_NEGOTIATED_VERSION)
        if message.method == "tools/call" and self.forwarder is not None and self.mcp_session_id is not None:
            body = await request.body()
            if await self.forwarder.handle_session_call(
                scope, receive, send, body, self.mcp_session_id, version
            ):
                return
        self._request_streams[request_id] = anyio.create_memory_object_stream[EventMessage](
            REQUEST_STREAM_BUFFER_SIZE
        )
        messages = self._request_streams[request_id][1]
        await writer.send(self._create_session_message(message, request, request_id, version))

        first: EventMessage | None = None
        with anyio.move_on_after(JSON_WINDOW_SECONDS):
            try:
                first = await messages.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                # The session was terminated with this request in flight, as in the SDK's JSON mode.
                await self._clean_up_memory_streams(request_id)
                await self._create_error_response(
                    "Session terminated before the request completed",
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    INTERNAL_ERROR,
                )(scope, receive, send)
                return
        if first is not None and isinstance(first.message, JSONRPCResponse | JSONRPCError):
            await self._clean_up_memory_streams(request_id)
            await self._create_json_response(first.message)(scope, receive, send)
            return
        await self._stream(scope, receive, send, request_id, messages, first)

    async def _plain_message(self, request: Request) -> JSONRPCRequest | JSONRPCNotification | None:
        """The body's request if this POST is one the JSON-first path serves, or its notification; else
        None (the SDK's path).

        Starlette keeps the body it read, so the SDK's path reads the same bytes again without the socket.
        """
        if self._event_store is not None or self._read_stream_writer is None or self.mcp_session_id is None:
            return None
        has_json, has_sse = check_accept_headers(request)
        if not (has_json and has_sse) or not self._check_content_type(request):
            return None
        try:
            body = await request.body()
        except Exception:
            return None  # e.g. the client went away mid-body: the SDK's path meets it and answers as it does
        try:
            message = jsonrpc_message_adapter.validate_json(body, by_name=False)
        except (ValidationError, ValueError):
            return None
        if isinstance(message, JSONRPCNotification):
            return message
        if not isinstance(message, JSONRPCRequest) or message.method == "initialize":
            return None
        return message

    async def _cancel_forwarded(
        self, scope: Scope, request: Request, receive: Receive, send: Send, message: JSONRPCNotification
    ) -> bool:
        """A `notifications/cancelled` for a call the forwarder has in flight goes to it (the session's
        server never saw that call). False for any other notification, having at most checked its
        headers (a refusal answers it, as the SDK's path would)."""
        params = message.params or {}
        session_id = self.mcp_session_id
        if message.method != "notifications/cancelled" or self.forwarder is None or session_id is None:
            return False
        if not await self._validate_request_headers(request, send):
            return True
        if not self.forwarder.cancel(session_id, params.get("requestId"), params.get("reason")):
            return False
        await Response(status_code=HTTPStatus.ACCEPTED)(scope, receive, send)
        return True

    async def _stream(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        messages: MemoryObjectReceiveStream[EventMessage],
        first: EventMessage | None,
    ) -> None:
        """Answer as the SDK's SSE mode does, starting with the message that arrived in the window."""
        events, events_out = anyio.create_memory_object_stream[SSEEvent](0)
        self._sse_stream_writers[request_id] = events
        headers = {
            "Cache-Control": "no-cache, no-transform",
            "Connection": "keep-alive",
            "Content-Type": CONTENT_TYPE_SSE,
            MCP_SESSION_ID_HEADER: self.mcp_session_id or "",
        }
        # The first message goes out as the SDK's writer's leading event, inside its clean-up: a client
        # that is gone already must not leave this request's streams registered (a full request stream
        # would stop the session's message router).
        leading = None if first is None else self._create_event_data(first)
        response = EventSourceResponse(
            content=events_out,
            data_sender_callable=partial(self._run_sse_writer, request_id, events, messages, leading),
            headers=headers,
        )
        try:
            await response(scope, receive, send)
        except Exception:
            # Headers may be out already, so no error response: as the SDK's SSE mode, log and clean up.
            logger.exception("SSE response error")
            await events.aclose()
            await self._clean_up_memory_streams(request_id)
        finally:
            await events_out.aclose()


class JsonFirstSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, with every new session on a `JsonFirstTransport`."""

    # Forwards `tools/call` requests the hub can route without serving them (set by the gateway's mount).
    forwarder: SessionCalls | None = None

    def _admit_session(self, requestor: Any) -> StreamableHTTPServerTransport | None:
        transport = super()._admit_session(requestor)
        if transport is not None:
            # The SDK builds the transport inline; the subclass adds behaviour and one setting.
            transport.__class__ = JsonFirstTransport
            assert isinstance(transport, JsonFirstTransport)
            transport.forwarder = self.forwarder
        return transport
