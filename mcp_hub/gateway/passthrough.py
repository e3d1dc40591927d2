"""The pass-through for `/mcp/{server}` when the upstream speaks streamable HTTP.

After authentication and policy, the HTTP exchange itself is forwarded: POST, GET and DELETE, JSON and
SSE responses streamed back byte for byte over pooled keep-alive connections. The hub neither terminates
nor re-issues MCP messages here, so every protocol feature and revision the upstream speaks reaches the
client unchanged (progress, logging, sampling, elicitation, roots, cancellation, subscriptions, resumable
streams, 2026-07-28 envelopes), and a call costs about one HTTP hop instead of an MCP server plus an MCP
client (see docs/benchmarks.md).

What the hub still does on this path:
- swaps credentials: the client's `Authorization` / `x-mcp-hub-key` (the hub key) never leaves the hub;
  the upstream gets what the one credential resolver chose for this user (static headers, the user's
  BYOK key or OAuth token, query parameters);
- policy, only when a tool allowlist applies (server or key): `tools/call` of a tool not allowed is
  answered with a JSON-RPC error without reaching the upstream, and `tools/list` results are filtered;
  otherwise bodies are not even parsed;
- binds each upstream `Mcp-Session-Id` to the hub key that created it: another key presenting it gets
  404, as from the SDK's own session manager on the terminating path;
- Host/Origin checks (DNS rebinding), the request body cap, the server's total deadline (until the
  response is complete for POST; until its headers for a GET stream, which may legitimately stay
  open), and JSON-RPC errors with 502/504 when the upstream is down or slow;
- a 2026-07-28 client that closes its response (its way to cancel) has the upstream request closed too.

`mcp_hub.gateway.call_forward` forwards 2026-07-28 `tools/call` requests on `/mcp` with the same parts.

What stays on the terminating path (`Gateway`): `/mcp`, stdio and SSE upstreams, and per-user servers the
caller has not connected yet (they show the `connect` tool). A request carrying a session id the
pass-through did not create is one of the terminating path's sessions (or unknown, and the SDK answers
404).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import Message, Receive, Scope, Send

from mcp_hub.auth.context import AuthContext
from mcp_hub.errors import HubError, NotConnectedError
from mcp_hub.gateway.connect import not_connected_error
from mcp_hub.gateway.json_first import JSON_WINDOW_SECONDS
from mcp_hub.gateway.sse import FirstAnswer, starts_an_object
from mcp_hub.store.models import McpServer
from mcp_hub.upstream.credentials import CredentialResolver, ResolvedCredential
from mcp_hub.upstream.target import UpstreamTarget
from mcp_hub.upstream.wire import Origin, Response, WireError, WirePool

log = logging.getLogger(__name__)
T = TypeVar("T")

SESSION_HEADER = b"mcp-session-id"
FORWARDED_METHODS = frozenset({"GET", "POST", "DELETE"})
# JSON-RPC codes the terminating path uses for the same situations.
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_TIMEOUT = -32001
# How long a forwarded request runs before the hub watches for its client leaving (cancelled_on_disconnect).
WATCH_AFTER_SECONDS = 0.05
# Enough for any tools/list the hub would filter; larger answers are refused rather than buffered.
MAX_FILTERED_RESPONSE_BYTES = 32 * 1024 * 1024

# Request headers never forwarded: hop-by-hop ones, the hub's own credential, what names the hub's
# origin (the upstream checks its own Host/Origin), and encodings the hub would have to undo to filter.
_DROP_REQUEST = frozenset(
    {
        b"host",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"authorization",
        b"x-mcp-hub-key",
        b"cookie",
        b"origin",
        b"referer",
        b"accept-encoding",
        # The hub has the whole body before it forwards; an upstream's interim 100 would only confuse.
        b"expect",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
    }
)
# Response headers never passed back: hop-by-hop ones, and cookies an upstream would set on the hub's
# origin (where the hub's own UI and OAuth flows live).
_DROP_RESPONSE = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"trailer",
        b"upgrade",
        b"set-cookie",
        b"www-authenticate",
        # uvicorn writes its own.
        b"date",
        b"server",
    }
)
# What a response sent whole says about its body itself.
_BODY_HEADERS = frozenset({b"content-type", b"content-length"})
# Media ranges of an `Accept` header that admit a JSON answer.
_JSON_TYPES = frozenset({b"application/json", b"application/*", b"*/*"})


# Whether a tool may be used, when an allowlist is in force (None: no allowlist, bodies not parsed).
ToolPolicy = Callable[[str], bool] | None


@dataclass
class _Binding:
    principal: str
    server_id: str
    last_seen: float


@dataclass(frozen=True)
class Route:
    origin: Origin
    path: bytes


class SecurityCheck:
    """Host and Origin as the SDK's transport checks them (exact values, or `host:*` patterns), so the
    pass-through refuses what the terminating path refuses."""

    def __init__(self, settings: TransportSecuritySettings) -> None:
        self._enabled = settings.enable_dns_rebinding_protection
        self._hosts = frozenset(h.encode() for h in settings.allowed_hosts if not h.endswith(":*"))
        self._host_prefixes = tuple(h[:-1].encode() for h in settings.allowed_hosts if h.endswith(":*"))
        self._origins = frozenset(o.encode() for o in settings.allowed_origins if not o.endswith(":*"))
        self._origin_prefixes = tuple(o[:-1].encode() for o in settings.allowed_origins if o.endswith(":*"))

    def refusal(self, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        if not self._enabled:
            return None
        host = headers.get(b"host")
        if not host or not (host in self._hosts or host.startswith(self._host_prefixes)):
            return 421, "Invalid Host header"
        origin = headers.get(b"origin")
        if origin and not (origin in self._origins or origin.startswith(self._origin_prefixes)):
            return 403, "Invalid Origin header"
        return None


class EventRewriter(Protocol):
    """Rewrites an SSE body on its way through, whole events at a time."""

    def feed(self, chunk: bytes) -> bytes:
        """What may be sent of the body so far (complete events), given its next chunk."""
        ...

    def flush(self) -> bytes:
        """What is left at the end of the body."""
        ...

    def answered(self) -> bool:
        """Whether the answer has gone out (what follows it in the body is not waited for)."""
        ...

    def unanswered(self) -> bool:
        """Whether the body ended without an answer the caller must still get (`PassThrough.stream`
        then resumes the stream, or ends it with an error)."""
        ...


class PassThrough:
    def __init__(
        self,
        resolver_of: Callable[[], CredentialResolver],
        target_of: Callable[[McpServer], UpstreamTarget],
        security: TransportSecuritySettings,
        *,
        max_body: int,
        session_idle_seconds: float,
        wire: WirePool | None = None,
        max_sessions: int = 100_000,
    ) -> None:
        # Asked for on every request: the one resolver the upstream pool uses, even if it is swapped.
        self._resolver_of = resolver_of
        self._target_of = target_of
        self.security = SecurityCheck(security)
        self.max_body = max_body
        self._session_idle = session_idle_seconds
        self._max_sessions = max_sessions
        self.wire = wire or WirePool()
        self._sessions: dict[str, _Binding] = {}
        self._routes: dict[tuple[str, str, tuple[tuple[str, str], ...]], Route] = {}

    def bound_sessions(self) -> int:
        return len(self._sessions)

    # --- routing --------------------------------------------------------------------------------------

    async def handle(self, scope: Scope, receive: Receive, send: Send, auth: AuthContext) -> bool:
        """Serves the request and returns True, or returns False (having sent nothing) when it belongs to
        the terminating path."""
        assert auth.path_server is not None
        headers = dict(scope["headers"])
        refusal = self.security.refusal(headers)
        if refusal is not None:
            await _send_text(send, refusal[0], refusal[1])
            return True
        session_id = headers.get(SESSION_HEADER)
        server = auth.servers[auth.path_server]
        binding: _Binding | None = None
        if session_id is not None:
            binding = self._sessions.get(session_id.decode("latin-1"))
            if binding is None:
                return False  # one of the terminating path's sessions, or unknown: the SDK answers
        try:
            target = self._target_of(server)
        except MCPError:
            return False  # misconfigured: the terminating path reports it as an MCP error
        if target.openapi is not None or target.transport != "http" or not target.url:
            # OpenAPI-backed servers are served in-process by the terminating path; SSE and stdio
            # upstreams speak something else than the client does.
            return False
        if binding is not None and (binding.principal != auth.principal or binding.server_id != server.id):
            # Someone else's session (or another server's): as if it did not exist.
            await send_json(send, 404, error_body(None, INVALID_REQUEST, "Session not found"))
            return True
        try:
            credential = await self._resolver_of().resolve(auth.user_id, target)
        except HubError:
            # Not connected yet (the terminating path lists the `connect` tool), or a resolver error the
            # terminating path reports as an MCP error for the call.
            if binding is not None:
                await send_json(
                    send, 403, error_body(None, INVALID_REQUEST, "your credential for this server is gone")
                )
                return True
            return False
        if binding is not None:
            binding.last_seen = time.monotonic()
        policy = (lambda name: auth.tool_allowed(server, name)) if _policy_applies(auth, server) else None
        prepared = await self._prepare(scope, receive, send, headers, policy)
        if prepared is None:
            return True
        body, filter_tools = prepared
        exchange = self._exchange(
            scope, receive, send, auth, server, target, credential, headers, body, filter_tools
        )
        if (
            scope["method"] == "POST"
            and headers.get(b"mcp-protocol-version", b"").decode("latin-1") in MODERN_PROTOCOL_VERSIONS
        ):
            # A 2026-07-28 client cancels a request by closing its response; earlier revisions say a
            # disconnect is not a cancellation (they may resume the stream, or send notifications/cancelled).
            await cancelled_on_disconnect(receive, exchange)
        else:
            await exchange
        return True

    # --- one exchange -------------------------------------------------------------------------------------

    async def _prepare(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], policy: ToolPolicy
    ) -> tuple[bytes, _ToolFilter | None] | None:
        """The request's body and the tools/list filter its answer needs, or None having answered
        (a method not forwarded, a body over the cap, a call the allowlist (`policy`) refuses)."""
        method: str = scope["method"]
        if method not in FORWARDED_METHODS:
            # Streamable HTTP uses these three; anything else (HEAD would leave a length with no body
            # for the response parser) is refused here, as the SDK's transport refuses it.
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [(b"allow", b"GET, POST, DELETE"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return None
        body = b""
        if method == "POST":
            read = await self.read_body(receive, headers)
            if read is None:
                await _send_text(send, 413, "Request body too large")
                return None
            body = read
        filter_tools: _ToolFilter | None = None
        if policy is not None and body:
            verdict = self._check_policy(policy, body)
            if isinstance(verdict, bytes):
                await send_json(send, 200, verdict)
                return None
            filter_tools = verdict
        return body, filter_tools

    async def _exchange(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        auth: AuthContext,
        server: McpServer,
        target: UpstreamTarget,
        credential: ResolvedCredential,
        headers: dict[bytes, bytes],
        body: bytes,
        filter_tools: _ToolFilter | None,
    ) -> None:
        method: str = scope["method"]
        deadline = target.timeout_seconds
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + deadline
        response: Response | None = None
        try:
            for attempt in range(2):
                route = self.route(target, credential)
                head = request_head(method, route, scope["headers"], credential, len(body), method == "POST")
                try:
                    async with asyncio.timeout_at(ends_at):
                        response = await self.wire.request(route.origin, head, body)
                except TimeoutError:
                    await send_json(send, 504, _timed_out(request_id_of(body), target))
                    return
                except WireError as exc:
                    log.warning("upstream %s: %s", target.name, exc)
                    message = f"cannot connect to upstream {target.name!r}"
                    await send_json(send, 502, error_body(request_id_of(body), INTERNAL_ERROR, message))
                    return
                self._bind(response, auth, server, method, session_id=headers.get(SESSION_HEADER))
                if response.status != 401:
                    break
                # The upstream refused the user's credential (revoked or expired early). As on the
                # terminating path: the credential's own remedy once (an OAuth refresh, or "needs
                # reconnect" with the URL to connect again), then one retry with what it produced. The
                # client never sees the upstream's 401, which would send it to the upstream's own
                # authorization server.
                response.release()
                response = None
                if attempt == 0 and credential.on_rejected is not None:
                    try:
                        await credential.on_rejected()
                        credential = await self._resolver_of().resolve(auth.user_id, target)
                    except HubError as exc:
                        await send_json(send, 200, _hub_error_body(request_id_of(body), exc))
                        return
                    continue
                message = f"upstream {target.name!r} refused the credential presented for you (HTTP 401)"
                await send_json(send, 502, error_body(request_id_of(body), INTERNAL_ERROR, message))
                return
            assert response is not None
            if filter_tools is not None and response.status == 200:
                await self._send_filtered(send, response, filter_tools, ends_at, target)
                return
            if method == "GET":
                await self._stream_open_ended(receive, send, response)
            else:
                json_first = (
                    headers.get(b"mcp-protocol-version", b"").decode("latin-1")
                    not in MODERN_PROTOCOL_VERSIONS
                    and _accepts_json(headers.get(b"accept"))
                    and starts_an_object(body)
                )
                await self.stream(send, response, ends_at, body, target, json_first=json_first)
        finally:
            if response is not None:
                response.release()

    async def read_body(self, receive: Receive, headers: dict[bytes, bytes]) -> bytes | None:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return None
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def route(self, target: UpstreamTarget, credential: ResolvedCredential) -> Route:
        assert target.url is not None
        key = (target.fingerprint, target.url, tuple(sorted(credential.query.items())))
        route = self._routes.get(key)
        if route is None:
            parts = urlsplit(target.url)
            scheme = parts.scheme.lower()
            port = parts.port or (443 if scheme == "https" else 80)
            query = [*parse_qsl(parts.query, keep_blank_values=True), *sorted(credential.query.items())]
            path = (parts.path or "/") + (f"?{urlencode(query)}" if query else "")
            route = Route(Origin(scheme, parts.hostname or "", port), path.encode())
            if len(self._routes) > 10_000:
                self._routes.clear()
            self._routes[key] = route
        return route

    def _bind(
        self,
        response: Response,
        auth: AuthContext,
        server: McpServer,
        method: str,
        *,
        session_id: bytes | None,
    ) -> None:
        if session_id is not None:
            if (method == "DELETE" and response.status < 300) or response.status == 404:
                # Ended by the client, or forgotten by the upstream: the id is dead either way.
                self._sessions.pop(session_id.decode("latin-1"), None)
            return
        new_id = response.header(SESSION_HEADER)
        if new_id is None:
            return
        key = new_id.decode("latin-1")
        existing = self._sessions.get(key)
        if existing is not None and existing.principal != auth.principal:
            log.warning("upstream %s handed out a session id already bound to another key", server.name)
            return
        if len(self._sessions) >= self._max_sessions:
            self._forget_stale()
        self._sessions[key] = _Binding(auth.principal, server.id, time.monotonic())

    def _forget_stale(self) -> None:
        cutoff = time.monotonic() - self._session_idle
        self._sessions = {k: b for k, b in self._sessions.items() if b.last_seen >= cutoff}
        while len(self._sessions) >= self._max_sessions:
            self._sessions.pop(next(iter(self._sessions)))

    # --- policy ---------------------------------------------------------------------------------------

    def _check_policy(self, allowed: Callable[[str], bool], body: bytes) -> bytes | _ToolFilter | None:
        """With an allowlist in force (`allowed`: may this tool be used): a JSON-RPC error (bytes) for a
        tools/call it refuses, the filter for a tools/list whose result must be filtered, or None to
        forward untouched."""
        try:
            message = json.loads(body)
        except ValueError:
            return None  # the upstream answers a parse error itself
        if isinstance(message, list):
            if any(isinstance(m, dict) and m.get("method") in ("tools/call", "tools/list") for m in message):
                return error_body(None, INVALID_REQUEST, "batched tool requests are not accepted here")
            return None
        if not isinstance(message, dict):
            return None
        method = message.get("method")
        if method == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if not isinstance(name, str) or not allowed(name):
                return error_body(
                    message.get("id"), INVALID_PARAMS, f"Tool {name!r} is not allowed for this API key"
                )
            return None
        if method == "tools/list":
            return _ToolFilter(message.get("id"), allowed)
        return None

    async def _send_filtered(
        self, send: Send, response: Response, tool_filter: _ToolFilter, ends_at: float, target: UpstreamTarget
    ) -> None:
        try:
            async with asyncio.timeout_at(ends_at):
                raw = await response.read(MAX_FILTERED_RESPONSE_BYTES)
        except TimeoutError:
            await send_json(send, 504, _timed_out(tool_filter.request_id, target))
            return
        except WireError as exc:
            log.warning("upstream %s: %s", target.name, exc)
            message = f"upstream {target.name!r} closed the connection"
            await send_json(send, 502, error_body(tool_filter.request_id, INTERNAL_ERROR, message))
            return
        content_type = response.header(b"content-type") or b""
        body = (
            tool_filter.sse(raw) if content_type.startswith(b"text/event-stream") else tool_filter.json(raw)
        )
        headers = [(k, v) for k, v in response.headers if k not in _DROP_RESPONSE and k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # --- streaming ----------------------------------------------------------------------------------------

    async def stream(
        self,
        send: Send,
        response: Response,
        ends_at: float,
        body: bytes,
        target: UpstreamTarget,
        events: EventRewriter | None = None,
        *,
        answer_id: Any = None,
        reply_headers: Sequence[tuple[bytes, bytes]] = (),
        resume: Callable[[], Awaitable[Response | None]] | None = None,
        json_first: bool = False,
    ) -> None:
        """Streams a POST's answer back within the deadline; `events` (SSE answers only) may rewrite
        whole events on the way. `answer_id`: the id an error answer carries (the id in `body` when
        None); `reply_headers` replace the upstream's headers of those names. When the body ends and
        `events` still waits for an answer, `resume` gives the rest of the stream (None: there is none,
        and the caller gets an error). `json_first` (a 2025-era request whose client accepts JSON): an
        SSE answer whose first event with data is the response goes out as that response's JSON, if it
        comes within JSON_WINDOW_SECONDS (mcp_hub.gateway.sse)."""
        start = response_start(response)
        # Rewritten events change the body's length.
        replaced = {name for name, _ in reply_headers} | (
            {b"content-length"} if events is not None else set()
        )
        if replaced:
            start["headers"] = [(k, v) for k, v in start["headers"] if k not in replaced] + list(
                reply_headers
            )
        is_sse = (response.header(b"content-type") or b"").startswith(b"text/event-stream")
        held = b""
        if json_first and is_sse:
            first = FirstAnswer()
            window_ends = min(ends_at, asyncio.get_running_loop().time() + JSON_WINDOW_SECONDS)
            # A timeout or a broken connection before the answer is met again below, and reported there.
            with contextlib.suppress(TimeoutError, WireError):
                async with asyncio.timeout_at(window_ends):
                    async for chunk in response.chunks():
                        if first.feed(events.feed(chunk) if events is not None else chunk):
                            break
            if first.answer is not None and (events is None or events.answered()):
                headers = [(k, v) for k, v in start["headers"] if k not in _BODY_HEADERS]
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(first.answer)),
                ]
                await send({"type": "http.response.start", "status": start["status"], "headers": headers})
                # The client has its whole answer with this (its length is declared); the response only
                # ends once the rest of the upstream's body is read, as on the stream below, so that
                # the upstream connection is kept and no disconnect watch takes this for the client
                # leaving.
                await send({"type": "http.response.body", "body": first.answer, "more_body": True})
                await response.settle()
                await send({"type": "http.response.body", "body": b""})
                return
            held = bytes(first.held)
        await send(start)
        if held:
            await send({"type": "http.response.body", "body": held, "more_body": True})
        current: Response | None = response
        answered = False
        try:
            async with asyncio.timeout_at(ends_at):
                while current is not None:
                    # (The answer may have been among the bytes held above.)
                    if events is None or not events.answered():
                        async for chunk in current.chunks():
                            if events is not None:
                                chunk = events.feed(chunk)
                            await send({"type": "http.response.body", "body": chunk, "more_body": True})
                            if events is not None and events.answered():
                                break  # a resumed stream may stay open after it
                    if events is None or not events.unanswered():
                        answered = True
                        break
                    if current is not response:
                        current.release()  # (again in `finally` if `resume` fails: a no-op then)
                    current = await resume() if resume is not None else None
            if not answered:
                problem = (INTERNAL_ERROR, f"upstream {target.name!r} ended the stream without answering")
        except TimeoutError:
            problem = (REQUEST_TIMEOUT, timed_out_message(target))
        except WireError as exc:
            log.warning("upstream %s: %s", target.name, exc)
            problem = (INTERNAL_ERROR, f"upstream {target.name!r} closed the connection")
        finally:
            if current is not None and current is not response:
                current.release()
        if answered:
            # What the POST's body has left after the answer is read (within a bound, past the deadline
            # too) before the client's response ends, so that its connection is kept.
            await response.settle()
            await send({"type": "http.response.body", "body": events.flush() if events is not None else b""})
            return
        # The status line is out, so the status cannot say it any more. On an SSE stream the caller still
        # gets an answer to its request; the blank lines first end any event the upstream left half
        # written. Other bodies end short, and the server closes the connection.
        request_id = request_id_of(body) if answer_id is None else answer_id
        if is_sse and request_id is not None:
            error = error_body(request_id, *problem)
            tail = events.flush() if events is not None else b""
            await send(
                {"type": "http.response.body", "body": tail + b"\n\nevent: message\ndata: " + error + b"\n\n"}
            )

    async def _stream_open_ended(self, receive: Receive, send: Send, response: Response) -> None:
        """A GET stream stays open as long as both ends want it; the client leaving ends it upstream too."""
        await send(response_start(response))

        async def pump() -> None:
            with contextlib.suppress(WireError):
                async for chunk in response.chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            # Ended by the upstream, cleanly or not: either way the client reconnects if it wants to.
            await send({"type": "http.response.body", "body": b""})

        await cancelled_on_disconnect(receive, pump())


class _ToolFilter:
    """Keeps only allowed tools in the result of one tools/list (JSON or SSE framed)."""

    def __init__(self, request_id: Any, allowed: Callable[[str], bool]) -> None:
        self.request_id = request_id
        self._allowed = allowed

    def _filter_message(self, message: Any) -> Any:
        if isinstance(message, dict) and message.get("id") == self.request_id:
            result = message.get("result")
            if isinstance(result, dict) and isinstance(result.get("tools"), list):
                tools = [
                    t
                    for t in result["tools"]
                    if isinstance(t, dict) and isinstance(t.get("name"), str) and self._allowed(t["name"])
                ]
                return {**message, "result": {**result, "tools": tools}}
        return message

    def json(self, raw: bytes) -> bytes:
        try:
            message = json.loads(raw)
        except ValueError:
            return raw
        return json.dumps(self._filter_message(message), separators=(",", ":")).encode()

    def sse(self, raw: bytes) -> bytes:
        text = raw.decode("utf-8").replace("\r\n", "\n")
        events: list[str] = []
        for event in text.split("\n\n"):
            if not event.strip():
                continue
            lines = event.split("\n")
            data = "\n".join(line[5:].removeprefix(" ") for line in lines if line.startswith("data:"))
            others = [line for line in lines if not line.startswith("data:")]
            if data:
                with contextlib.suppress(ValueError):
                    data = json.dumps(self._filter_message(json.loads(data)), separators=(",", ":"))
                events.append("\n".join([*others, f"data: {data}"]))
            else:
                events.append("\n".join(others))
        return ("\n\n".join(events) + "\n\n").encode()


async def cancelled_on_disconnect(receive: Receive, work: Awaitable[T]) -> T | None:
    """Runs `work` in this task and returns its result, or None once the client has disconnected
    (`work` is then cancelled: nothing is left to answer). Only once the request body has been read:
    `receive` then reports nothing but the end.

    The watch begins WATCH_AFTER_SECONDS after `work` does: most answers come sooner, and a watching
    task per request cost 7% of the hub's instructions per forwarded 2026-07-28 call (callgrind). A
    client that leaves in that time still has its call cancelled, that much later (`receive` keeps the
    disconnect)."""
    task = asyncio.current_task()
    assert task is not None
    state = {"working": True, "gone": False}
    watcher: asyncio.Future[None] | None = None

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if state["working"]:
            state["gone"] = True
            task.cancel()

    def begin_watching() -> None:
        nonlocal watcher
        watcher = asyncio.ensure_future(watch())

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_SECONDS, begin_watching)
    try:
        return await work
    except asyncio.CancelledError:
        if state["gone"] and task.uncancel() == 0:
            return None
        raise
    finally:
        state["working"] = False
        timer.cancel()
        if watcher is not None:
            watcher.cancel()


def timed_out_message(target: UpstreamTarget) -> str:
    return f"upstream {target.name!r} did not answer within {target.timeout_seconds:g}s"


def _timed_out(request_id: Any, target: UpstreamTarget) -> bytes:
    return error_body(request_id, REQUEST_TIMEOUT, timed_out_message(target))


def _policy_applies(auth: AuthContext, server: McpServer) -> bool:
    key_tools = auth.caller.allowed_tools if auth.caller else None
    return server.allowed_tools is not None or key_tools is not None


def request_head(
    method: str,
    route: Route,
    client_headers: list[tuple[bytes, bytes]],
    credential: ResolvedCredential,
    body_length: int,
    has_body: bool,
    overrides: dict[bytes, bytes] | None = None,
) -> bytes:
    """The upstream request's head: the client's headers less the dropped ones, the credential's, and
    `overrides` (lowercase name -> value) in place of the client's values of those names."""
    replaced = {name.lower().encode() for name in credential.headers}
    lines = [method.encode(), b" ", route.path, b" HTTP/1.1\r\nhost: ", route.origin.host_header, b"\r\n"]
    for name, value in client_headers:
        if name in _DROP_REQUEST or name in replaced:
            continue
        if overrides and name in overrides:
            value = overrides[name]
        # Trimmed: RFC 9110 §5.5 excludes surrounding whitespace from a field value, and the
        # httptools parser leaves trailing whitespace in (MCP servers compare `Mcp-Name` exactly).
        lines += [name, b": ", value.strip(b" \t"), b"\r\n"]
    for cred_name, cred_value in credential.headers.items():
        lines += [cred_name.encode(), b": ", cred_value.encode(), b"\r\n"]
    if has_body:
        lines += [b"content-length: ", str(body_length).encode(), b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


def _accepts_json(accept: bytes | None) -> bool:
    """Whether an `Accept` header admits an application/json answer (every 2025-era client's must)."""
    return any(part.split(b";", 1)[0].strip().lower() in _JSON_TYPES for part in (accept or b"").split(b","))


def response_start(response: Response) -> Message:
    return {
        "type": "http.response.start",
        "status": response.status,
        "headers": [(k, v) for k, v in response.headers if k not in _DROP_RESPONSE],
    }


def request_id_of(body: bytes) -> Any:
    """The JSON-RPC id of a request's body, for error answers (parsed only on those paths), or None."""
    if not body:
        return None
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return message.get("id") if isinstance(message, dict) else None


def error_body(request_id: Any, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}, separators=(",", ":")).encode()


def _hub_error_body(request_id: Any, exc: HubError) -> bytes:
    """A hub error as the JSON-RPC error the terminating path would give (a not-connected or
    needs-reconnect error carries `data.connect_url`, from the same constructor)."""
    if isinstance(exc, NotConnectedError):
        error = not_connected_error(exc).error
        return error_body(request_id, error.code, error.message, error.data)
    return error_body(request_id, INTERNAL_ERROR, exc.message)


async def send_json(
    send: Send, status: int, body: bytes, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    await _send_body(send, status, body, b"application/json", extra_headers)


async def _send_text(send: Send, status: int, text: str) -> None:
    await _send_body(send, status, text.encode(), b"text/plain; charset=utf-8")


async def _send_body(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
