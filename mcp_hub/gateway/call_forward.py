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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.streamable_http import check_accept_headers
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    encode_header_value,
    find_duplicated_routing_header,
)
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
    cancelled_on_disconnect,
    error_body,
    request_head,
    send_json,
    timed_out_message,
)
from mcp_hub.gateway.server import ForwardRoute, Gateway
from mcp_hub.upstream.wire import Response, WireError

log = logging.getLogger(__name__)

# A JSON answer is read whole to wrap its URIs; past this it is refused (as for filtered listings).
MAX_ANSWER_BYTES = MAX_FILTERED_RESPONSE_BYTES

# The end of an SSE event: two line ends, each CRLF, LF or a lone CR (WHATWG HTML, "event stream").
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n){2}")
_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class _Exchange:
    """One forwarded call, and how its answer becomes the client's."""

    route: ForwardRoute
    client_id: Any  # the id of the client's request, which its answer carries
    # The id the upstream sees: the client's own on 2026-07-28 (each request stands alone); one of the
    # hub's on a handshake session, which every client with this credential shares.
    upstream_id: Any
    # Headers every answer to the client carries (on a handshake session, the hub's session id in place
    # of the upstream's).
    reply_headers: tuple[tuple[bytes, bytes], ...] = ()
    # Whether the call goes into a session other clients use too (the handshake revisions).
    shared: bool = False


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

    async def handle(self, scope: Scope, receive: Receive, send: Send, auth: AuthContext) -> Receive | None:
        """Answers a 2026-07-28 request this path can forward and returns None. Otherwise returns the
        `receive` the terminating path must use instead (it replays the body when this path has read it)."""
        headers = Headers(raw=scope["headers"])
        if (
            scope["method"] != "POST"
            or headers.get("mcp-method") != "tools/call"
            or headers.get("mcp-protocol-version") not in MODERN_PROTOCOL_VERSIONS
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
        message = _json(body)
        call = _tool_call(message)
        if call is None:
            return replay
        name, arguments = call
        if find_duplicated_routing_header(headers.items()) is not None or isinstance(
            classify_inbound_request(message, headers=headers), InboundLadderRejection
        ):
            return replay
        if not _valid_params(message, headers["mcp-protocol-version"]):
            return replay
        route = await self._gateway.forward_route(auth, name, arguments, headers, "modern")
        if route is None:
            return replay
        upstream_body = _upstream_body(message, route, message["id"])
        if upstream_body is None:
            return replay
        overrides = {b"mcp-name": encode_header_value(route.tool_name).encode()}
        head = request_head(
            "POST",
            self._passthrough.route(route.target, route.credential),
            scope["headers"],
            route.credential,
            len(upstream_body),
            True,
            overrides,
        )
        exchange = _Exchange(route, message["id"], message["id"])
        served = await cancelled_on_disconnect(receive, self._forward(send, exchange, head, upstream_body))
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
        message = _json(body)
        call = _tool_call(message)
        if call is None or not _valid_params(message, version):
            return False
        name, arguments = call
        headers = Headers(raw=scope["headers"])
        route = await self._gateway.forward_route(
            auth, name, arguments, headers, "handshake", owner=f"shttp:{session_id}"
        )
        if route is None or route.session.protocol_version != version:
            return False
        key = (session_id, message["id"])
        if key in self._in_flight:
            return False  # the client reused an id still in flight: the terminating path answers that
        upstream_id = f"mcp-hub-{next(self._upstream_ids)}"
        upstream_body = _upstream_body(message, route, upstream_id)
        if upstream_body is None:
            return False
        http_route = self._passthrough.route(route.target, route.credential)
        client_headers = [(k, v) for k, v in scope["headers"] if k not in _SESSION_HEADERS]
        head = request_head(
            "POST",
            http_route,
            client_headers + _session_headers(route),
            route.credential,
            len(upstream_body),
            True,
        )
        exchange = _Exchange(
            route, message["id"], upstream_id, ((b"mcp-session-id", session_id.encode()),), shared=True
        )
        self._in_flight[key] = exchange
        try:
            served = await cancelled_on_disconnect(
                receive, self._forward(send, exchange, head, upstream_body)
            )
        finally:
            del self._in_flight[key]
        return served is not False

    def forwarding(self, session_id: str, request_id: Any) -> bool:
        """Whether this path has the call `request_id` of hub session `session_id` in flight."""
        if isinstance(request_id, bool):
            return False  # JSON-RPC ids are strings or numbers; `true` is not id 1
        return (session_id, request_id) in self._in_flight

    async def cancel(self, session_id: str, request_id: Any, reason: Any) -> None:
        """A client's `notifications/cancelled` for a forwarded call, passed into the upstream session
        under the hub's id for the call. The upstream then ends the call's stream with its answer for
        a cancelled request, which reaches the client as any answer does."""
        exchange = self._in_flight.get((session_id, request_id))
        if exchange is not None:
            await self._post_to_session(exchange.route, _cancelled(exchange.upstream_id, reason))

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
        task = asyncio.ensure_future(self._post_to_session(route, message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forward(self, send: Send, exchange: _Exchange, head: bytes, body: bytes) -> bool:
        """One exchange with the upstream within the server's deadline. False, having sent nothing, when
        the upstream refused the credential (401) or no longer knows the session (404): the terminating
        path then deals with that (a remedy for the credential, a new session)."""
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + exchange.route.target.timeout_seconds
        try:
            return await self._exchange(send, exchange, head, body, ends_at)
        finally:
            if exchange.shared and loop.time() >= ends_at:
                # Given up at the deadline: the upstream is told, as the SDK's client tells it when the
                # terminating path gives up (a 2026-07-28 upstream learns it from the closed request).
                self._post_in_background(exchange.route, _cancelled(exchange.upstream_id, "timed out"))

    async def _exchange(
        self, send: Send, exchange: _Exchange, head: bytes, body: bytes, ends_at: float
    ) -> bool:
        route = exchange.route
        target = route.target
        http_route = self._passthrough.route(target, route.credential)
        self.sent += 1
        try:
            async with asyncio.timeout_at(ends_at):
                response = await self._passthrough.wire.request(http_route.origin, head, body)
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
                asks = functools.partial(self._answer_upstream_request, route) if exchange.shared else None
                rewriter = _ResultEvents(
                    exchange.client_id, route.server.alias, upstream_id=exchange.upstream_id, asks=asks
                )
                await self._passthrough.stream(
                    send,
                    response,
                    ends_at,
                    body,
                    target,
                    rewriter,
                    answer_id=exchange.client_id,
                    reply_headers=exchange.reply_headers,
                )
            else:
                await self._send_whole_answer(send, response, exchange, ends_at)
            return True
        finally:
            response.release()

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


def _valid_params(message: dict[str, Any], version: str) -> bool:
    """The shape of a `tools/call`'s params by the request's revision, as the SDK's runner checks it."""
    try:
        validate_client_request("tools/call", version, message["params"])
    except (ValueError, KeyError, ValidationError):
        return False
    return True


def _upstream_body(message: dict[str, Any], route: ForwardRoute, upstream_id: Any) -> bytes | None:
    """The request as the upstream gets it: its own name for the tool, and `upstream_id`. None for a
    number JSON cannot carry (1e999 parses as infinity)."""
    forwarded = {**message, "id": upstream_id, "params": {**message["params"], "name": route.tool_name}}
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
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
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
    the upstream's requests to the client handed to `asks` (and not passed on) when given, every other
    event and every byte between them passed as it came. An event longer than MAX_ANSWER_BYTES passes
    unchanged rather than be held in memory whole."""

    def __init__(
        self,
        request_id: Any,
        alias: str,
        *,
        upstream_id: Any = None,
        asks: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """`request_id`: the client's; `upstream_id`: the one the upstream answers, when it differs."""
        self._request_id = request_id
        self._upstream_id = request_id if upstream_id is None else upstream_id
        self._alias = alias
        self._asks = asks
        # Events that must be parsed even when they name no URI: the answer, when its id changes.
        renamed = self._upstream_id != request_id
        self._answer_marker = json.dumps(self._upstream_id).encode() if renamed else None
        self._pending = bytearray()
        self._passing = False  # inside an oversized event: bytes pass until the event ends

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

    def _complete_events(self, scan_from: int, *, final: bool) -> bytes:
        pending = self._pending
        out = bytearray()
        start = 0
        while (end := _EVENT_END.search(pending, scan_from)) is not None:
            if not final and end.end() == len(pending) and pending.endswith(b"\r"):
                break  # a CR last may be the first half of a CRLF still on its way
            event = bytes(pending[start : end.end()])
            out += event if self._passing else self._event(event)
            self._passing = False
            start = scan_from = end.end()
        del pending[:start]
        if len(pending) > MAX_ANSWER_BYTES:
            self._passing = True
        if self._passing:
            # All but the last three bytes (which may begin the event's end) go now.
            keep = min(3, len(pending))
            out += pending[: len(pending) - keep]
            del pending[: len(pending) - keep]
        return bytes(out)

    def _event(self, event: bytes) -> bytes:
        if not (
            _may_name_a_uri(event)
            or (self._answer_marker is not None and self._answer_marker in event)
            or (self._asks is not None and b'"method"' in event and b'"id"' in event)
        ):
            return event
        lines = _LINE_END.split(event)
        data = [line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:")]
        if not data:
            return event
        try:
            message = json.loads(b"\n".join(data))
        except (ValueError, RecursionError):
            return event
        if self._asks is not None and _is_request(message):
            self._asks(message)
            return b""
        if not isinstance(message, dict) or message.get("id") != self._upstream_id:
            return event
        answer = _client_answer(message, self._upstream_id, self._request_id, self._alias)
        if answer is None:
            return event
        others = [line for line in lines if line and not line.startswith(b"data:")]
        return (
            b"\r\n".join([*others, b"data: " + json.dumps(answer, separators=(",", ":")).encode()])
            + b"\r\n\r\n"
        )


def _is_request(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and isinstance(message.get("method"), str)
        and isinstance(message.get("id"), (str, int))
        and not isinstance(message.get("id"), bool)
    )
