"""A `tools/call` on `/mcp`, forwarded as plain HTTP to the streamable-HTTP upstream it names.

2025-era sessions (`handle_session_call`) are forwarded into the upstream session the hub shares among
a credential's clients of that era, under the conditions and with the id mapping that method describes;
the rest of this docstring is about 2026-07-28 requests (`handle`), and holds for both where it says
what is checked and how the answer is rewritten.

Why: a 2026-07-28 request is self-contained. It carries the client's protocol version, capabilities,
log level and progress token, and is answered on its own response; the upstream keeps no session
state between requests. Once the hub has routed the public name to an upstream, it need not also
terminate the request as an MCP server and issue it again as an MCP client: it can forward the one
HTTP exchange as the pass-through does for `/mcp/{server}`, at a fraction of the cost (see
docs/benchmarks.md).

What the hub does on the way, and what it leaves to the terminating path (`Gateway`):
- checks first what the terminating path would check, with the SDK's own validators: Host/Origin,
  the Accept header, the JSON-RPC envelope and the 2026-07-28 request ladder, duplicated routing
  headers; then routing by exact lookup in the cached catalog, the allowlists, and the `Mcp-Param-*`
  headers against the upstream tool's schema. A request that fails any of these, or that this path
  cannot route from what the hub already knows (no cached listing, the `connect` tool, no 2026-07-28
  session up to that upstream for this credential, an upstream that is not streamable HTTP), goes to
  the terminating path with its body replayed, and is answered there as it always was;
- the body's `name` becomes the upstream's own, and `Mcp-Name` with it; credentials are swapped as in
  the pass-through (the client's hub key never leaves the hub);
- an upstream 401 (nothing was done upstream) sends the request to the terminating path too, which
  runs the credential's remedy (refresh, or "connect again") and retries;
- in the answer, JSON or SSE, resource links and embedded resources of the result are wrapped as the
  terminating path wraps them (`mcp-hub://{alias}/...`); everything else (progress, log messages,
  input-required results, errors) passes unchanged;
- the server's deadline covers the exchange; a client that closes its response (how a 2026-07-28
  client cancels) closes the upstream request, which cancels the call there.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.streamable_http import check_accept_headers
from mcp.shared.dispatcher import as_request_id
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    encode_header_value,
    find_duplicated_routing_header,
)
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types import METHOD_NOT_FOUND
from mcp_types.methods import validate_client_request
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from mcp_hub.auth.context import AuthContext, auth_context_of
from mcp_hub.gateway.naming import public_uri
from mcp_hub.gateway.passthrough import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MAX_FILTERED_RESPONSE_BYTES,
    REQUEST_TIMEOUT,
    PassThrough,
    Route,
    cancelled_on_disconnect,
    error_body,
    request_head,
    send_json,
    timed_out_message,
)
from mcp_hub.gateway.server import ForwardRoute, Gateway
from mcp_hub.gateway.sse import LINE_END, event_data, event_end
from mcp_hub.upstream.wire import Response, WireError

log = logging.getLogger(__name__)

# A JSON answer is read whole to wrap its URIs; past this it is refused (as for filtered listings).
MAX_ANSWER_BYTES = MAX_FILTERED_RESPONSE_BYTES

# How long to wait before resuming an upstream's stream it closed without a retry interval (the SDK
# client's default), and the shortest and longest wait an upstream may ask for (the call's deadline
# bounds it too).
DEFAULT_RETRY_MS = 1000
RETRY_MS_RANGE = (100, 10_000)
# Resumed streams in a row that may bring no event with data before the hub gives up (as the SDK's
# client gives up after two reconnections that bring nothing).
MAX_EMPTY_RESUMES = 2

# Posts into upstream sessions pending at once (answers to an upstream's requests, cancellations).
MAX_BACKGROUND_POSTS = 256


@dataclass(frozen=True)
class _Exchange:
    """One forwarded call: the request as it goes upstream, and how its answer becomes the client's."""

    route: ForwardRoute
    http_route: Route
    head: bytes
    body: bytes
    client_id: Any  # the id of the client's request, which its answer carries
    # The id the upstream sees: the client's own on 2026-07-28 (each request stands alone); one of the
    # hub's on a handshake session, which every client with this credential shares.
    upstream_id: Any
    client_token: Any  # the progress token the client's request carried, if any
    # Headers every answer to the client carries (on a handshake session, the hub's session id in place
    # of the upstream's).
    reply_headers: tuple[tuple[bytes, bytes], ...] = ()
    # Whether the call goes into a session other clients use too (the handshake revisions).
    shared: bool = False


@dataclass(frozen=True)
class _Call:
    """A well-formed `tools/call` request whose params pass the SDK's check for its revision."""

    message: dict[str, Any]
    name: str
    arguments: dict[str, Any]


class CallForwarder:
    def __init__(self, gateway: Gateway, passthrough: PassThrough) -> None:
        self._gateway = gateway
        self._passthrough = passthrough
        # Requests sent upstream this way (what tests look at to tell the paths apart).
        self.sent = 0
        self._upstream_ids = itertools.count(1)
        # Handshake-era calls in flight, by (hub session id, client's request id): where a client's
        # `notifications/cancelled` for one goes.
        self._in_flight: dict[tuple[str, Any], _Exchange] = {}
        # Posts into upstream sessions that nobody waits for (answers to the upstream, cancellations).
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False

    async def aclose(self) -> None:
        """Cancels the posts still pending, and takes no more (at shutdown, before the upstream
        sessions close)."""
        self._closed = True
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def handle(self, scope: Scope, receive: Receive, send: Send, auth: AuthContext) -> Receive | None:
        """Answers a 2026-07-28 request this path can forward and returns None. Otherwise returns the
        `receive` the terminating path must use instead (it replays the body when this path has read it)."""
        headers = Headers(raw=scope["headers"])
        version = headers.get("mcp-protocol-version")
        if (
            scope["method"] != "POST"
            or headers.get("mcp-method") != "tools/call"
            or version not in MODERN_PROTOCOL_VERSIONS
            or "mcp-session-id" in headers
        ):
            return receive
        if not headers.get("content-type", "").lower().startswith("application/json"):
            return receive
        declared = headers.get("content-length")
        if declared is None or not declared.isdigit() or int(declared) > self._passthrough.max_body:
            return receive  # the terminating path reads (or refuses) bodies of unknown or excess size
        raw_headers = dict(scope["headers"])
        if self._passthrough.security.refusal(raw_headers) is not None:
            return receive
        has_json, has_sse = check_accept_headers(Request(scope))
        if not (has_json and has_sse):
            return receive
        body = await self._passthrough.read_body(receive, raw_headers)
        if body is None:
            await send_json(send, 413, error_body(None, INVALID_REQUEST, "Request body too large"))
            return None
        replay = _replaying(body, receive)
        call = _call_in(body, version)
        if (
            call is None
            or find_duplicated_routing_header(headers.items()) is not None
            or isinstance(classify_inbound_request(call.message, headers=headers), InboundLadderRejection)
        ):
            return replay
        route = await self._gateway.forward_route(auth, call.name, call.arguments, headers, "modern")
        if route is None:
            return replay
        overrides = {b"mcp-name": encode_header_value(route.tool_name).encode()}
        exchange = self._exchange_for(route, call.message, call.message["id"], scope["headers"], overrides)
        if exchange is None:
            return replay
        served = await cancelled_on_disconnect(receive, self._forward(send, exchange))
        return replay if served is False else None

    async def handle_session_call(
        self, scope: Scope, receive: Receive, send: Send, body: bytes, session_id: str, version: str
    ) -> bool:
        """A `tools/call` on a handshake-revision session of `/mcp`, forwarded into the upstream session
        this caller's credential uses, when the hub knows where it goes (`Gateway.forward_route`) and
        that session speaks the client's revision (so its answer is what the client expects). Called by
        the session's transport (mcp_hub.gateway.json_first) once it has checked the session, the
        headers and the JSON-RPC envelope. True once answered; False, having sent nothing, for the
        terminating path.

        The session is shared, so the request goes with an id of the hub's and its answer comes back
        with the client's; the upstream's requests in the middle of the call (a client that declared
        none of sampling, elicitation and roots is the only kind forwarded) are answered here as that
        client would answer them; progress and log messages pass as they come."""
        auth = auth_context_of(scope)
        if auth is None or auth.path_server is not None:
            return False
        call = _call_in(body, version)
        if call is None or "task" in call.message["params"]:
            return False  # a task lives on in the upstream session after the call: left to the SDK's path
        route = await self._gateway.forward_route(
            auth,
            call.name,
            call.arguments,
            Headers(raw=scope["headers"]),
            "handshake",
            owner=f"shttp:{session_id}",
        )
        if route is None or route.session.protocol_version != version:
            return False
        client_headers = [(k, v) for k, v in scope["headers"] if k not in _SESSION_HEADERS]
        exchange = self._exchange_for(
            route,
            call.message,
            f"mcp-hub-{next(self._upstream_ids)}",
            client_headers + _session_headers(route),
            reply_headers=((b"mcp-session-id", session_id.encode()),),
            shared=True,
        )
        key = (session_id, call.message["id"])
        if exchange is None or key in self._in_flight:
            return False  # the client reused an id still in flight: the terminating path answers that
        self._in_flight[key] = exchange
        try:
            served = await cancelled_on_disconnect(receive, self._forward(send, exchange))
        finally:
            del self._in_flight[key]
        return served is not False

    def cancel(self, session_id: str, request_id: Any, reason: Any) -> bool:
        """A client's `notifications/cancelled`: for a call forwarded from hub session `session_id`, it
        goes into the upstream session under the hub's id for the call (the upstream then ends the
        call's stream with its answer for a cancelled request, which reaches the client as any answer
        does), and True. False for any other call, having done nothing."""
        request_id = as_request_id(request_id)  # a string or an integer (`true` is not id 1)
        exchange = self._in_flight.get((session_id, request_id)) if request_id is not None else None
        if exchange is None:
            return False
        self._post_in_background(exchange.route, _cancelled(exchange.upstream_id, reason))
        return True

    def _exchange_for(
        self,
        route: ForwardRoute,
        message: dict[str, Any],
        upstream_id: Any,
        client_headers: list[tuple[bytes, bytes]],
        overrides: dict[bytes, bytes] | None = None,
        *,
        reply_headers: tuple[tuple[bytes, bytes], ...] = (),
        shared: bool = False,
    ) -> _Exchange | None:
        """The call as it goes upstream: its body (`_upstream_body`) and the head of its POST. None for
        a body that cannot be sent (the terminating path answers it)."""
        body = _upstream_body(message, route, upstream_id, shared=shared)
        if body is None:
            return None
        http_route = self._passthrough.route(route.target, route.credential)
        head = request_head("POST", http_route, client_headers, route.credential, len(body), True, overrides)
        token = progress_token_from_params(message["params"])
        return _Exchange(
            route, http_route, head, body, message["id"], upstream_id, token, reply_headers, shared
        )

    async def _post_to_session(self, route: ForwardRoute, message: dict[str, Any]) -> None:
        """A notification or an answer of the hub's into the upstream session of `route`."""
        body = json.dumps(message, separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            *_session_headers(route),
        ]
        http_route = self._passthrough.route(route.target, route.credential)
        head = request_head("POST", http_route, headers, route.credential, len(body), True)
        try:
            async with asyncio.timeout(route.target.timeout_seconds):
                response = await self._passthrough.wire.request(http_route.origin, head, body)
                try:
                    await response.drain(MAX_ANSWER_BYTES)
                finally:
                    response.release()
        except (TimeoutError, WireError) as exc:
            log.warning("upstream %s: %s not delivered: %s", route.target.name, _kind(message), exc)

    def _for_the_hub(self, route: ForwardRoute, message: dict[str, Any]) -> None:
        """A message on a shared call's stream that is the session's business, not the client's: a
        request to the client is answered (`_answer_upstream_request`); a change of what the upstream
        lists, or of a resource, goes where the pool's session takes such news (cached listings
        dropped, subscribers told), as it would on the session's own stream."""
        if "id" in message:
            self._answer_upstream_request(route, message)
        else:
            self._in_background(route, _kind(message), functools.partial(route.session.notify, message))

    def _answer_upstream_request(self, route: ForwardRoute, request: dict[str, Any]) -> None:
        """An upstream's request to the client in the middle of a forwarded call: `ping` is answered,
        anything else refused, as a client without those capabilities answers (in the background:
        the call's stream goes on meanwhile)."""
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
        if request.get("method") == "ping":
            answer["result"] = {}
        else:
            answer["error"] = {
                "code": METHOD_NOT_FOUND,
                "message": f"the client does not support {request.get('method')!r}",
            }
        self._post_in_background(route, answer)

    def _post_in_background(self, route: ForwardRoute, message: dict[str, Any]) -> None:
        self._in_background(route, _kind(message), functools.partial(self._post_to_session, route, message))

    def _in_background(self, route: ForwardRoute, what: str, work: Callable[[], Awaitable[None]]) -> None:
        """Work about `route`'s upstream session that no request waits for; past MAX_BACKGROUND_POSTS
        pending (an upstream that floods its clients with requests) it is dropped and logged."""
        if self._closed:
            return  # shutting down: the upstream sessions are closing too
        if len(self._background) >= MAX_BACKGROUND_POSTS:
            log.warning("upstream %s: %s dropped (too much pending)", route.target.name, what)
            return
        task = asyncio.ensure_future(work())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forward(self, send: Send, exchange: _Exchange) -> bool:
        """One exchange with the upstream within the server's deadline. False, having sent nothing, when
        the upstream refused the credential (401) or no longer knows the session (404): the terminating
        path then deals with that (a remedy for the credential, a new session)."""
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + exchange.route.target.timeout_seconds
        try:
            with exchange.route.session.pooled.held():
                return await self._exchange(send, exchange, ends_at)
        finally:
            if exchange.shared and loop.time() >= ends_at:
                # Given up at the deadline: the upstream is told, as the SDK's client tells it when the
                # terminating path gives up (a 2026-07-28 upstream learns it from the closed request).
                self._post_in_background(exchange.route, _cancelled(exchange.upstream_id, "timed out"))

    async def _exchange(self, send: Send, exchange: _Exchange, ends_at: float) -> bool:
        route = exchange.route
        target = route.target
        self.sent += 1
        try:
            async with asyncio.timeout_at(ends_at):
                response = await self._passthrough.wire.request(
                    exchange.http_route.origin, exchange.head, exchange.body
                )
        except TimeoutError:
            await _send_error(send, exchange, REQUEST_TIMEOUT, timed_out_message(target))
            return True
        except WireError as exc:
            log.warning("upstream %s: %s", target.name, exc)
            await _send_error(send, exchange, INTERNAL_ERROR, f"cannot connect to upstream {target.name!r}")
            return True
        try:
            if response.status == 401 or (response.status == 404 and exchange.shared):
                return False
            content_type = response.header(b"content-type") or b""
            if response.status == 200 and content_type.startswith(b"text/event-stream"):
                # On a shared handshake session the upstream may ask the client things in the middle of
                # the call; a 2026-07-28 upstream asks with an input-required result instead.
                session_side = functools.partial(self._for_the_hub, route) if exchange.shared else None
                rewriter = _ResultEvents(
                    exchange.client_id,
                    route.server.alias,
                    upstream_id=exchange.upstream_id,
                    session_side=session_side,
                    client_token=exchange.client_token,
                )
                await self._passthrough.stream(
                    send,
                    response,
                    ends_at,
                    exchange.body,
                    target,
                    rewriter,
                    answer_id=exchange.client_id,
                    reply_headers=exchange.reply_headers,
                    resume=functools.partial(self._resumed, exchange, rewriter),
                    # The client accepts JSON (checked on the way here). A 2026-07-28 upstream answers
                    # that way itself when it has nothing else to say, errors with their own statuses.
                    json_first=exchange.shared,
                )
            else:
                await self._send_whole_answer(send, response, exchange, ends_at)
            return True
        finally:
            response.release()

    async def _resumed(self, exchange: _Exchange, events: _ResultEvents) -> Response | None:
        """The rest of a shared call's stream, which the upstream closed before its answer: fetched as a
        2025-11-25 client resumes a stream (SEP-1699), with a GET into the upstream session naming the
        last event id it sent, once the retry interval it asked for has passed. None when there is
        nothing to resume after, or the upstream will not resume (the client then gets an error)."""
        point = events.resume_point()
        if point is None:
            return None
        last_event_id, delay = point
        await asyncio.sleep(delay)
        route = exchange.route
        headers = [
            (b"accept", b"text/event-stream"),
            (b"last-event-id", last_event_id),
            *_session_headers(route),
        ]
        head = request_head("GET", exchange.http_route, headers, route.credential, 0, False)
        response = await self._passthrough.wire.request(exchange.http_route.origin, head, b"")
        content_type = response.header(b"content-type") or b""
        if response.status == 200 and content_type.startswith(b"text/event-stream"):
            return response
        response.release()
        log.warning("upstream %s: resuming a call's stream: HTTP %d", route.target.name, response.status)
        return None

    async def _send_whole_answer(
        self, send: Send, response: Response, exchange: _Exchange, ends_at: float
    ) -> None:
        """A JSON answer (or anything else that is not an SSE stream), read whole: a JSON-RPC answer to
        this request goes to the client (result URIs wrapped; an error with the status its code maps
        to); anything else is reported as the terminating path reports it, without the upstream's
        bytes (an error page may quote what it was sent, credentials included)."""
        target = exchange.route.target
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout_at(ends_at):
                async for chunk in response.chunks():
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        message = (
                            f"the answer of upstream {target.name!r} is larger than {MAX_ANSWER_BYTES} bytes"
                        )
                        await _send_error(send, exchange, INTERNAL_ERROR, message)
                        return
                    parts.append(chunk)
        except TimeoutError:
            await _send_error(send, exchange, REQUEST_TIMEOUT, timed_out_message(target))
            return
        except WireError as exc:
            log.warning("upstream %s: %s", target.name, exc)
            await _send_error(
                send, exchange, INTERNAL_ERROR, f"upstream {target.name!r} closed the connection"
            )
            return
        raw = b"".join(parts)
        content_type = response.header(b"content-type") or b""
        answer = (
            _answer_to(raw, exchange.upstream_id) if content_type.startswith(b"application/json") else None
        )
        if answer is None:
            log.warning(
                "upstream %s answered a call with HTTP %d %s", target.name, response.status, content_type
            )
            message = f"upstream {target.name!r} answered with something that is not JSON-RPC (HTTP {response.status})"
            await _send_error(send, exchange, INTERNAL_ERROR, message)
            return
        if "error" in answer:
            error = answer["error"]
            await send_json(
                send,
                _status_of(exchange, error["code"]),
                error_body(exchange.client_id, error["code"], error["message"], error.get("data")),
                exchange.reply_headers,
            )
            return
        rewritten = _client_answer(
            answer, exchange.upstream_id, exchange.client_id, exchange.route.server.alias
        )
        body = raw if rewritten is None else json.dumps(rewritten, separators=(",", ":")).encode()
        await send_json(send, 200, body, exchange.reply_headers)


# Headers that name a client's session with the hub; a forwarded call names the upstream's instead.
_SESSION_HEADERS = frozenset({b"mcp-session-id", b"mcp-protocol-version", b"last-event-id"})


def _session_headers(route: ForwardRoute) -> list[tuple[bytes, bytes]]:
    session = route.session
    headers = [(b"mcp-protocol-version", session.protocol_version.encode())]
    if session.session_id is not None:
        headers.append((b"mcp-session-id", session.session_id.encode()))
    return headers


def _cancelled(request_id: Any, reason: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"requestId": request_id}
    if isinstance(reason, str):
        params["reason"] = reason
    return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}


def _kind(message: dict[str, Any]) -> str:
    return str(message.get("method", "an answer"))


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _call_in(body: bytes, version: str) -> _Call | None:
    """The `tools/call` request in `body`, if it is one whose params have the shape its revision
    gives them (checked as the SDK's runner checks them)."""
    message = _json(body)
    call = _tool_call(message)
    if call is None:
        return None
    try:
        validate_client_request("tools/call", version, message["params"])
    except (ValueError, ValidationError):
        return None
    return _Call(message, *call)


def _upstream_body(
    message: dict[str, Any], route: ForwardRoute, upstream_id: Any, *, shared: bool
) -> bytes | None:
    """The request as the upstream gets it: its own name for the tool, and `upstream_id`, which on a
    shared session is its progress token too (clients' tokens could collide there). None for a number
    JSON cannot carry (1e999 parses as infinity)."""
    params = {**message["params"], "name": route.tool_name}
    if shared and progress_token_from_params(params) is not None:
        params["_meta"] = {**params["_meta"], "progressToken": upstream_id}
    forwarded = {**message, "id": upstream_id, "params": params}
    try:
        return json.dumps(forwarded, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        return None


def _tool_call(message: Any) -> tuple[str, dict[str, Any]] | None:
    """(name, arguments) of a well-formed JSON-RPC `tools/call` request; None for anything else."""
    if (
        not isinstance(message, dict)
        or message.get("jsonrpc") != "2.0"
        or message.get("method") != "tools/call"
    ):
        return None
    if as_request_id(message.get("id")) is None:
        return None
    params = message.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        return None
    arguments = params.get("arguments", {})
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return None
    return params["name"], arguments


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over `body` first, then whatever the real one brings (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


async def _send_error(send: Send, exchange: _Exchange, code: int, message: str) -> None:
    """A JSON-RPC error with the HTTP status the SDK's 2026-07-28 handler gives that code."""
    await send_json(
        send,
        _status_of(exchange, code),
        error_body(exchange.client_id, code, message),
        exchange.reply_headers,
    )


def _status_of(exchange: _Exchange, code: int) -> int:
    """The HTTP status of an error answer: the 2026-07-28 handler's mapping; 200 on the handshake
    revisions, whose transport answers every JSON-RPC error with 200 (a 404 would tell the client its
    session is gone)."""
    return 200 if exchange.shared else ERROR_CODE_HTTP_STATUS.get(code, 200)


def _client_answer(
    message: dict[str, Any], upstream_id: Any, client_id: Any, alias: str
) -> dict[str, Any] | None:
    """The upstream's answer to a forwarded call as the client gets it: with the client's id and the
    result's URIs wrapped (`_wrapped_message`); None when it needs neither (its bytes then pass)."""
    wrapped = _wrapped_message(message, upstream_id, alias)
    if upstream_id == client_id:
        return wrapped
    return {**(wrapped or message), "id": client_id}


def _wrapped_message(message: Any, request_id: Any, alias: str) -> Any | None:
    """The answer to `request_id` with the URIs of its result's resource links and embedded resources
    wrapped for `/mcp`; None when there is nothing to wrap (the bytes then pass unchanged)."""
    if not isinstance(message, dict) or message.get("id") != request_id:
        return None
    result = message.get("result")
    content = result.get("content") if isinstance(result, dict) else None
    if not isinstance(content, list):
        return None
    blocks: list[Any] = []
    changed = False
    for block in content:
        if isinstance(block, dict):
            kind = block.get("type")
            resource = block.get("resource")
            if kind == "resource_link" and isinstance(block.get("uri"), str):
                block = {**block, "uri": public_uri(alias, block["uri"])}
                changed = True
            elif kind == "resource" and isinstance(resource, dict) and isinstance(resource.get("uri"), str):
                block = {**block, "resource": {**resource, "uri": public_uri(alias, resource["uri"])}}
                changed = True
        blocks.append(block)
    if not changed:
        return None
    assert isinstance(result, dict)
    return {**message, "result": {**result, "content": blocks}}


def _answer_to(raw: bytes, request_id: Any) -> dict[str, Any] | None:
    """The JSON-RPC response to `request_id` in `raw` (a result object, or an error with an integer
    code and a message); None when `raw` is not one."""
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or message.get("id") != request_id:
        return None
    error = message.get("error")
    if isinstance(error, dict):
        code, text = error.get("code"), error.get("message")
        if isinstance(code, int) and not isinstance(code, bool) and isinstance(text, str):
            return message
        return None
    return message if isinstance(message.get("result"), dict) else None


def _may_name_a_uri(raw: bytes | bytearray) -> bool:
    # Cheap test before parsing an event: a `uri` key is spelled out, or hidden behind a JSON escape.
    return b'uri"' in raw or b"\\u" in raw


class _ResultEvents:
    """An SSE answer, event by event: the answer to the call as the client gets it (`_client_answer`),
    every other event and every byte between them passed as it came. An event longer than
    MAX_ANSWER_BYTES passes unchanged rather than be held in memory whole.

    On a session the hub shares (`session_side` given), the stream is the upstream session's, not the
    client's:
    - the upstream's requests to the client, and its notifications that what it lists or a resource
      changed, go to `session_side`, not to the client;
    - event ids and retry intervals are taken out (the client cannot resume at the hub; the hub
      resumes itself, `resume_point`), and so are events left with no data (priming events);
    - a progress notification for the call gets the client's progress token back (`client_token`);
    - an event too large to hold becomes an error answer to the call (its id cannot be rewritten)."""

    def __init__(
        self,
        client_id: Any,
        alias: str,
        *,
        upstream_id: Any = None,
        session_side: Callable[[dict[str, Any]], None] | None = None,
        client_token: Any = None,
    ) -> None:
        """`upstream_id`: the id the upstream answers (and, on a shared session, the progress token it
        was given), when it is not the client's."""
        self._client_id = client_id
        self._upstream_id = client_id if upstream_id is None else upstream_id
        self._alias = alias
        self._session_side = session_side
        self._shared = session_side is not None
        self._client_token = client_token
        # Events that must be parsed even when they name no URI: those about the call, when its id
        # changes on the way.
        renamed = self._shared or self._upstream_id != client_id
        self._answer_marker = json.dumps(self._upstream_id).encode() if renamed else None
        self._pending = bytearray()
        self._passing = False  # inside an oversized event: bytes pass until the event ends
        self._answered = False
        self._last_event_id: bytes | None = None
        self._retry_ms: int | None = None
        self._resumed = False
        self._data_since_resume = False
        self._empty_resumes = 0

    def feed(self, chunk: bytes) -> bytes:
        # Earlier bytes held no event end, except perhaps one begun in their last three (CRLF CR).
        scan_from = max(0, len(self._pending) - 3)
        self._pending += chunk
        return self._complete_events(scan_from, final=False)

    def flush(self) -> bytes:
        """The rest at the end of the body: an event the upstream never finished goes as it came (a
        client drops it)."""
        out = self._complete_events(max(0, len(self._pending) - 3), final=True) + bytes(self._pending)
        self._pending.clear()
        return out

    def answered(self) -> bool:
        return self._answered

    def unanswered(self) -> bool:
        """Whether the body ended without the answer to a call on a shared session (which the hub then
        resumes, or answers with an error); on the client's own stream the client deals with that."""
        return self._shared and not self._answered

    def resume_point(self) -> tuple[bytes, float] | None:
        """The id of the last event the upstream sent, to resume its stream after (SEP-1699), and how
        long to wait first (its retry interval, RETRY_MS_RANGE). None when there is nothing to resume
        after, or after MAX_EMPTY_RESUMES resumed streams in a row brought no event with data."""
        if self._last_event_id is None:
            return None
        self._empty_resumes = self._empty_resumes + 1 if self._resumed and not self._data_since_resume else 0
        if self._empty_resumes >= MAX_EMPTY_RESUMES:
            return None
        self._resumed = True
        self._data_since_resume = False
        # The next stream starts afresh: an event the closed one left unfinished is dropped, as a
        # client drops it at the end of a stream.
        self._pending.clear()
        self._passing = False
        low, high = RETRY_MS_RANGE
        retry_ms = DEFAULT_RETRY_MS if self._retry_ms is None else min(max(self._retry_ms, low), high)
        return self._last_event_id, retry_ms / 1000

    def _complete_events(self, scan_from: int, *, final: bool) -> bytes:
        pending = self._pending
        out = bytearray()
        start = 0
        while (end := event_end(pending, scan_from, final=final)) is not None:
            event = bytes(pending[start:end])
            if not self._passing:
                out += self._event(event)
            elif not self._shared:
                out += event
            self._passing = False
            start = scan_from = end
        del pending[:start]
        if len(pending) > MAX_ANSWER_BYTES and not self._passing:
            self._passing = True
            if self._shared:
                out += self._oversized()
        if self._passing:
            # All but the last three bytes (which may begin the event's end) go now, or are dropped.
            keep = min(3, len(pending))
            if not self._shared:
                out += pending[: len(pending) - keep]
            del pending[: len(pending) - keep]
        return bytes(out)

    def _oversized(self) -> bytes:
        """In place of an event too large to hold on a shared session: an error answer to the call (were
        that event the answer, it would reach the client under the hub's id)."""
        log.warning(
            "an upstream event of a forwarded call is larger than %d bytes: dropped", MAX_ANSWER_BYTES
        )
        if self._answered:
            return b""
        self._answered = True
        message = f"the upstream's answer has an event larger than {MAX_ANSWER_BYTES} bytes"
        return (
            b"event: message\r\ndata: " + error_body(self._client_id, INTERNAL_ERROR, message) + b"\r\n\r\n"
        )

    def _event(self, event: bytes) -> bytes:
        if self._shared and (b"id:" in event or b"retry:" in event):
            event = self._without_resume_fields(event)
            if not event:
                return b""
        if b"data:" in event:
            self._data_since_resume = True
        if not (
            _may_name_a_uri(event)
            or (self._answer_marker is not None and self._answer_marker in event)
            or (
                self._shared and b'"method"' in event and (b'"id"' in event or _MAY_BE_A_CHANGE.search(event))
            )
        ):
            return event
        data = event_data(event)
        if data is None:
            return event
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):
            return event
        if self._session_side is not None and (_is_request(message) or _is_change(message)):
            self._session_side(message)
            return b""
        rewritten = self._about_the_call(message)
        if rewritten is None:
            return event
        others = [line for line in LINE_END.split(event) if line and not line.startswith(b"data:")]
        return (
            b"\r\n".join([*others, b"data: " + json.dumps(rewritten, separators=(",", ":")).encode()])
            + b"\r\n\r\n"
        )

    def _about_the_call(self, message: Any) -> Any | None:
        """The client's version of a message about the call (its answer, or on a shared session its
        progress); None when it is not one, or passes as it is."""
        if not isinstance(message, dict):
            return None
        if message.get("id") == self._upstream_id and ("result" in message or "error" in message):
            self._answered = True
            return _client_answer(message, self._upstream_id, self._client_id, self._alias)
        params = message.get("params")
        if (
            self._shared
            and message.get("method") == "notifications/progress"
            and isinstance(params, dict)
            and params.get("progressToken") == self._upstream_id
        ):
            return {**message, "params": {**params, "progressToken": self._client_token}}
        return None

    def _without_resume_fields(self, event: bytes) -> bytes:
        """The event less its `id` and `retry` fields (noted for `resume_point`); empty when no data is
        left (an event without data is not dispatched)."""
        kept: list[bytes] = []
        has_data = False
        for line in LINE_END.split(event):
            field, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if field == b"id":
                self._last_event_id = value or None  # an empty id: nothing to resume after
            elif field == b"retry":
                if value.isdigit():
                    self._retry_ms = int(value)
            elif line:
                kept.append(line)
                has_data = has_data or (field == b"data" and bool(value))
        return b"\r\n".join(kept) + b"\r\n\r\n" if has_data else b""


# Notifications that something the upstream lists, or a resource, changed: news for the hub's pool.
_CHANGES = frozenset(
    {
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/updated",
    }
)
_MAY_BE_A_CHANGE = re.compile(rb"list_changed|resources/updated")


def _is_change(message: Any) -> bool:
    return isinstance(message, dict) and message.get("method") in _CHANGES and "id" not in message


def _is_request(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and isinstance(message.get("method"), str)
        and as_request_id(message.get("id")) is not None
    )
