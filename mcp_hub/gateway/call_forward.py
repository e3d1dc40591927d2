"""A 2026-07-28 `tools/call` on `/mcp`, forwarded as plain HTTP to the streamable-HTTP upstream it names.

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
import json
import logging
import re
from typing import Any

from mcp.server.streamable_http import check_accept_headers
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    encode_header_value,
    find_duplicated_routing_header,
)
from mcp_types.methods import validate_client_request
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from mcp_hub.auth.context import AuthContext
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


class CallForwarder:
    def __init__(self, gateway: Gateway, passthrough: PassThrough) -> None:
        self._gateway = gateway
        self._passthrough = passthrough
        # Requests sent upstream this way (what tests look at to tell the paths apart).
        self.sent = 0

    async def handle(self, scope: Scope, receive: Receive, send: Send, auth: AuthContext) -> Receive | None:
        """Answers a request this path can forward and returns None. Otherwise returns the `receive`
        the terminating path must use instead (it replays the body when this path has read it)."""
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
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return replay
        call = _tool_call(message)
        if call is None:
            return replay
        name, arguments = call
        if find_duplicated_routing_header(headers.items()) is not None or isinstance(
            classify_inbound_request(message, headers=headers), InboundLadderRejection
        ):
            return replay
        try:
            # The shape of the params by the request's revision, as the SDK's runner checks it.
            validate_client_request("tools/call", headers["mcp-protocol-version"], message["params"])
        except (ValueError, KeyError, ValidationError):
            return replay
        route = await self._gateway.forward_route(auth, name, arguments, headers)
        if route is None:
            return replay
        forwarded = {**message, "params": {**message["params"], "name": route.tool_name}}
        try:
            upstream_body = json.dumps(forwarded, separators=(",", ":"), allow_nan=False).encode()
        except ValueError:
            return replay  # a number JSON cannot carry (1e999 parses as infinity)
        served = await cancelled_on_disconnect(
            receive, self._forward(scope, send, route, message["id"], upstream_body)
        )
        return replay if served is False else None

    async def _forward(
        self, scope: Scope, send: Send, route: ForwardRoute, request_id: Any, body: bytes
    ) -> bool:
        """One exchange with the upstream. False, having sent nothing, when the upstream refused the
        credential (401): the terminating path then deals with that."""
        target = route.target
        http_route = self._passthrough.route(target, route.credential)
        overrides = {b"mcp-name": encode_header_value(route.tool_name).encode()}
        head = request_head(
            "POST", http_route, scope["headers"], route.credential, len(body), True, overrides
        )
        ends_at = asyncio.get_running_loop().time() + target.timeout_seconds
        self.sent += 1
        try:
            async with asyncio.timeout_at(ends_at):
                response = await self._passthrough.wire.request(http_route.origin, head, body)
        except TimeoutError:
            await _send_error(send, request_id, REQUEST_TIMEOUT, timed_out_message(target))
            return True
        except WireError as exc:
            log.warning("upstream %s: %s", target.name, exc)
            await _send_error(send, request_id, INTERNAL_ERROR, f"cannot connect to upstream {target.name!r}")
            return True
        try:
            if response.status == 401:
                return False
            content_type = response.header(b"content-type") or b""
            if response.status == 200 and content_type.startswith(b"text/event-stream"):
                rewriter = _ResultEvents(request_id, route.server.alias)
                await self._passthrough.stream(send, response, ends_at, body, target, rewriter)
            else:
                await self._send_whole_answer(send, response, request_id, route, ends_at)
            return True
        finally:
            response.release()

    async def _send_whole_answer(
        self, send: Send, response: Response, request_id: Any, route: ForwardRoute, ends_at: float
    ) -> None:
        """A JSON answer (or anything else that is not an SSE stream), read whole: a JSON-RPC answer to
        this request goes to the client (result URIs wrapped; an error with the status its code maps
        to); anything else is reported as the terminating path reports it, without the upstream's
        bytes (an error page may quote what it was sent, credentials included)."""
        target = route.target
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
                        await _send_error(send, request_id, INTERNAL_ERROR, message)
                        return
                    parts.append(chunk)
        except TimeoutError:
            await _send_error(send, request_id, REQUEST_TIMEOUT, timed_out_message(target))
            return
        except WireError as exc:
            log.warning("upstream %s: %s", target.name, exc)
            await _send_error(
                send, request_id, INTERNAL_ERROR, f"upstream {target.name!r} closed the connection"
            )
            return
        raw = b"".join(parts)
        content_type = response.header(b"content-type") or b""
        answer = _answer_to(raw, request_id) if content_type.startswith(b"application/json") else None
        if answer is None:
            log.warning(
                "upstream %s answered a call with HTTP %d %s", target.name, response.status, content_type
            )
            message = f"upstream {target.name!r} answered with something that is not JSON-RPC (HTTP {response.status})"
            await _send_error(send, request_id, INTERNAL_ERROR, message)
            return
        if "error" in answer:
            error = answer["error"]
            await send_json(
                send,
                ERROR_CODE_HTTP_STATUS.get(error["code"], 200),
                error_body(request_id, error["code"], error["message"], error.get("data")),
            )
            return
        wrapped = _wrapped_message(answer, request_id, route.server.alias)
        body = raw if wrapped is None else json.dumps(wrapped, separators=(",", ":")).encode()
        await send_json(send, 200, body)


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


async def _send_error(send: Send, request_id: Any, code: int, message: str) -> None:
    """A JSON-RPC error with the HTTP status the SDK's 2026-07-28 handler gives that code."""
    await send_json(send, ERROR_CODE_HTTP_STATUS.get(code, 200), error_body(request_id, code, message))


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
    """An SSE answer, event by event: the result's URIs wrapped (`_wrapped_message`), every other event
    and every byte between them passed as it came. An event longer than MAX_ANSWER_BYTES passes
    unchanged rather than be held in memory whole."""

    def __init__(self, request_id: Any, alias: str) -> None:
        self._request_id = request_id
        self._alias = alias
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
        if not _may_name_a_uri(event):
            return event
        lines = _LINE_END.split(event)
        data = [line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:")]
        if not data:
            return event
        try:
            wrapped = _wrapped_message(json.loads(b"\n".join(data)), self._request_id, self._alias)
        except (ValueError, RecursionError):
            return event
        if wrapped is None:
            return event
        others = [line for line in lines if line and not line.startswith(b"data:")]
        return (
            b"\r\n".join([*others, b"data: " + json.dumps(wrapped, separators=(",", ":")).encode()])
            + b"\r\n\r\n"
        )
