"""The upstream session pool: one live MCP client session per (server, credential identity), opened on
first use, shared by every call that resolves to the same key, replaced when it dies, closed when idle
and at shutdown.

Each pooled session is owned by one task in the pool's task group, which opens the transport, enters
the `ClientSession` and later leaves both again; anyio requires that a context is exited by the task
that entered it. Calls from request handlers only send on the session. A session is never closed while
a call holds it (eviction waits for `in_flight == 0`); at shutdown everything is closed.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.subscriptions import SubscriptionLost, listen
from mcp.shared._stream_protocols import ReadStream
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from mcp_hub.errors import UpstreamError, UpstreamTimeoutError
from mcp_hub.upstream.connectors import InProcessConnector, open_transport
from mcp_hub.upstream.credentials import CredentialResolver, ResolvedCredential
from mcp_hub.upstream.health import HealthBook
from mcp_hub.upstream.relay import DownstreamRelay
from mcp_hub.upstream.session import Era, UpstreamSession, era_of, negotiate
from mcp_hub.upstream.target import UpstreamTarget
from mcp_hub.upstream.wire import WirePool

log = logging.getLogger(__name__)

T = TypeVar("T")

# A 2026-07-28 upstream's change-notification stream that broke is opened again after this long,
# doubling up to the maximum.
LISTEN_RETRY_INITIAL_SECONDS = 1.0
LISTEN_RETRY_MAX_SECONDS = 60.0
# A stream that stayed open this long was healthy: the next break is retried after the initial delay.
LISTEN_HEALTHY_SECONDS = 60.0
# How long an upstream that answered `server/discover` with the handshake is taken to speak only that.
HANDSHAKE_VERDICT_SECONDS = 600.0
# A session that another one replaced is closed after this long without a call (its waiting callers
# are served first).
SUPERSEDED_GRACE_SECONDS = 10.0

# The change kinds a 2026-07-28 session listens for (the `subscriptions/listen` filter's flags), and the
# notification each is announced as when a broken stream is opened again.
_LISTENED_CHANGES: dict[str, type[types.ServerNotification]] = {
    "tools_list_changed": types.ToolListChangedNotification,
    "prompts_list_changed": types.PromptListChangedNotification,
    "resources_list_changed": types.ResourceListChangedNotification,
}

# Unsolicited upstream notifications (list_changed, resources/updated): (server id, notification).
NotificationSink = Callable[[str, types.ServerNotification], Awaitable[None]]
# Called in a new session's owner task once it is initialized (e.g. to restore subscriptions).
SessionOpened = Callable[["PooledSession", ClientSession], Awaitable[None]]


@dataclass(frozen=True)
class PoolKey:
    server_id: str
    fingerprint: str
    identity: str
    # The downstream clients it serves: handshake revisions or 2026-07-28 (mcp_hub.upstream.session).
    era: Era = "handshake"


@dataclass(frozen=True)
class ForwardingSession:
    """A live upstream session as a request forwarded as plain HTTP joins it (`forwarding_session`)."""

    protocol_version: str
    session_id: str | None  # None: the upstream keeps no session (always so on 2026-07-28)
    pooled: PooledSession = field(compare=False, repr=False)

    async def notify(self, message: dict[str, Any]) -> None:
        """A notification of the upstream that reached the hub on a forwarded request's stream, handled
        as the session handles those on its own streams. One the SDK's types refuse is logged."""
        try:
            notification = types.server_notification_adapter.validate_python(message)
        except ValidationError as exc:
            log.warning("upstream %s: a notification the hub cannot read: %s", self.pooled.target.name, exc)
            return
        await self.pooled._on_message(notification)


def forwardable(target: UpstreamTarget) -> bool:
    """Whether requests to `target` may go as plain HTTP (`UpstreamPool.forwarding_session`): a
    streamable-HTTP MCP server (not stdio, SSE or an OpenAPI service the hub serves itself)."""
    return target.transport == "http" and target.openapi is None


@dataclass(frozen=True)
class PoolSettings:
    connect_timeout: float = 10.0
    idle_seconds: float = 300.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # A session that stayed up this long is considered healthy again: its crash counter resets.
    healthy_after: float = 60.0


class _WatchedReadStream:
    """Passes the transport's messages through and tells the owner when the stream ends, so a session
    whose process crashed or whose server went away is known dead before the next call tries it."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception], on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    async def receive(self) -> SessionMessage | Exception:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return None


class PooledSession:
    def __init__(
        self,
        key: PoolKey,
        target: UpstreamTarget,
        credential: ResolvedCredential,
        settings: PoolSettings,
        sink: NotificationSink | None,
        on_open: SessionOpened | None = None,
        openapi: InProcessConnector | None = None,
        wire: WirePool | None = None,
        on_handshake_fallback: Callable[[PooledSession], None] | None = None,
    ) -> None:
        self.key = key
        self._openapi = openapi
        self._wire = wire
        self._on_open = on_open
        self.target = target
        self._credential = credential
        self._settings = settings
        self._sink = sink
        self.session: UpstreamSession | None = None
        self.error: BaseException | None = None
        self.ready = anyio.Event()
        self.done = anyio.Event()
        self._stop = anyio.Event()
        self.closing = False
        self.dead = False
        self.crashed = False
        # The upstream answered 401 on this session: the credential it was opened with is refused.
        self.unauthorized = False
        self.in_flight = 0
        self.last_used = time.monotonic()
        self.started_at = time.monotonic()
        self._relays: list[DownstreamRelay] = []
        # Re-keys a session opened for 2026-07-28 clients that fell back to the handshake (the pool's).
        self.on_handshake_fallback = on_handshake_fallback
        # Another session serves its key's clients now: closed once idle for a moment, not after minutes.
        self.superseded = False
        # The upstream's `Mcp-Session-Id` for this session (streamable HTTP upstreams that keep sessions).
        self.http_session_id: str | None = None

    # --- lifecycle (runs in the owner task) ------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            async with AsyncExitStack() as stack:
                read, write = await open_transport(
                    self.target,
                    self._credential,
                    stack,
                    connect_timeout=self._settings.connect_timeout,
                    on_unauthorized=self._on_unauthorized,
                    on_session_id=self._on_session_id,
                    openapi=self._openapi,
                    wire=self._wire,
                )
                session = UpstreamSession(
                    _WatchedReadStream(read, self._on_stream_end),
                    write,
                    sampling_callback=self._on_sampling,
                    elicitation_callback=self._on_elicitation,
                    list_roots_callback=self._on_list_roots,
                    logging_callback=self._on_log,
                    message_handler=self._on_message,
                    client_info=types.Implementation(name="mcp-hub", version="0.1.0"),
                )
                await stack.enter_async_context(session)
                with anyio.fail_after(self._settings.connect_timeout):
                    await negotiate(session, self.key.era)
                if self.key.era == "modern" and not session.modern and self.on_handshake_fallback is not None:
                    # Filed under the handshake key before `_restore`, which restores (and drops the
                    # cached listings of) whatever key the session then serves.
                    self.on_handshake_fallback(self)
                if self._on_open is not None:
                    # Before the session is handed out, so nothing races the restored state.
                    await self._restore(session)
                self.session = session
                self.started_at = self.last_used = time.monotonic()
                self.ready.set()
                log.info(
                    "upstream %s: session open (%s, %s)",
                    self.target.name,
                    self.target.transport,
                    session.protocol_version,
                )
                if session.modern:
                    await self._listen_until_stopped(session)
                else:
                    await self._stop.wait()
        except TimeoutError as exc:
            self.error = exc
            log.warning(
                "upstream %s: no answer to initialize within %.1fs",
                self.target.name,
                self._settings.connect_timeout,
            )
        # The owner task is a supervisor: whatever the transport raises (spawn failures, refused
        # connections, HTTP errors wrapped in exception groups by the SDK's task groups) ends only this
        # session, is logged with its cause, and is reported to the callers waiting on it.
        except Exception as exc:
            self.error = exc
            log.warning("upstream %s: session failed: %s", self.target.name, _describe(exc))
        finally:
            if not self.closing:
                self.crashed = True
            self.dead = True
            self.session = None
            self.ready.set()
            self.done.set()
            log.info("upstream %s: session closed", self.target.name)

    async def _listen_until_stopped(self, session: UpstreamSession) -> None:
        """A 2026-07-28 upstream tells of changed lists only on a `subscriptions/listen` stream (it has no
        session to notify later), so one stays open for as long as this session. Its events reach
        `_on_message` like any notification, which drops the listings cached from this session."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._listen, session)
            await self._stop.wait()
            tg.cancel_scope.cancel()

    async def _listen(self, session: UpstreamSession) -> None:
        capabilities = session.server_capabilities
        if capabilities is None:
            return
        wanted = {
            "tools_list_changed": bool(capabilities.tools and capabilities.tools.list_changed),
            "prompts_list_changed": bool(capabilities.prompts and capabilities.prompts.list_changed),
            "resources_list_changed": bool(capabilities.resources and capabilities.resources.list_changed),
        }
        if not any(wanted.values()):
            return
        delay = LISTEN_RETRY_INITIAL_SECONDS
        for attempt in itertools.count():
            acknowledged_at: float | None = None
            try:
                async with listen(
                    session,
                    tools_list_changed=wanted["tools_list_changed"],
                    prompts_list_changed=wanted["prompts_list_changed"],
                    resources_list_changed=wanted["resources_list_changed"],
                ) as subscription:
                    acknowledged_at = time.monotonic()
                    if attempt > 0:
                        # No replay across streams: whatever changed in between is announced now.
                        await self._announce_changed(wanted)
                    async for _ in subscription:
                        pass  # each event was also handed to `_on_message`
                problem = "the upstream ended the stream"
            except MCPError as exc:
                if exc.code == types.METHOD_NOT_FOUND:
                    return  # it does not serve change notifications at all
                problem = exc.message
            except (SubscriptionLost, TimeoutError) as exc:
                problem = str(exc) or type(exc).__name__
            if acknowledged_at is not None and time.monotonic() - acknowledged_at >= LISTEN_HEALTHY_SECONDS:
                # Only a stream that stayed up for a while starts the backoff over: one that is acknowledged
                # and then ends at once (an upstream or proxy that closes long responses) would otherwise be
                # opened again every second, each time announcing every list as changed.
                delay = LISTEN_RETRY_INITIAL_SECONDS
            log.info(
                "upstream %s: change notifications interrupted (%s), listening again in %.0fs",
                self.target.name,
                problem,
                delay,
            )
            await anyio.sleep(delay)
            delay = min(delay * 2, LISTEN_RETRY_MAX_SECONDS)

    async def _announce_changed(self, wanted: dict[str, bool]) -> None:
        if self._sink is None:
            return
        for flag, notification in _LISTENED_CHANGES.items():
            if wanted[flag]:
                await self._sink(self.target.server_id, notification())

    async def _restore(self, session: ClientSession) -> None:
        assert self._on_open is not None
        try:
            with anyio.fail_after(self._settings.connect_timeout):
                await self._on_open(self, session)
        except (MCPError, TimeoutError, ValidationError) as exc:
            log.warning("upstream %s: restoring state on a new session failed: %s", self.target.name, exc)

    @property
    def credential(self) -> ResolvedCredential:
        return self._credential

    def _on_unauthorized(self) -> None:
        if not self.unauthorized:
            log.info("upstream %s: refused the credential (HTTP 401)", self.target.name)
        self.unauthorized = True
        # Nothing more will work on this session. Closing it also ends the calls waiting on it: over SSE
        # a refused POST is only logged by the SDK, and its caller would otherwise wait out its deadline.
        # Closed, not crashed: the upstream is fine, so no restart backoff for this credential.
        self.close()

    def _on_session_id(self, session_id: str) -> None:
        self.http_session_id = session_id

    def _on_stream_end(self) -> None:
        if not self.closing:
            self.crashed = True
            log.warning("upstream %s: connection ended unexpectedly", self.target.name)
        self.dead = True
        self._stop.set()

    def close(self) -> None:
        self.closing = True
        self.dead = True
        self._stop.set()

    # --- calls ---------------------------------------------------------------------------------------

    @asynccontextmanager
    async def lease(self, relay: DownstreamRelay | None) -> AsyncIterator[UpstreamSession]:
        if self.session is None or self.dead:
            raise UpstreamError(f"upstream {self.target.name!r} is not connected")
        if relay is not None:
            self._relays.append(relay)
        try:
            with self.held():
                yield self.session
        finally:
            if relay is not None:
                self._relays.remove(relay)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keeps the session from the idle reaper while a request is in flight in it: one through the
        SDK's client (`lease`), or one the gateway forwards as plain HTTP (`forwarding_session`)."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.last_used = time.monotonic()

    def _pick_relay(self) -> DownstreamRelay | None:
        """The downstream client an upstream request belongs to. The MCP wire does not say which call a
        server→client request is about, so it is routed only when every call in flight on this session
        comes from one downstream session; otherwise guessing could show one user another's prompt."""
        owners = {relay.owner for relay in self._relays}
        if len(owners) != 1:
            return None
        return self._relays[-1]

    async def _on_sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        relay = self._pick_relay()
        if relay is None:
            return _unroutable("sampling/createMessage")
        return await relay.create_message(params)

    async def _on_elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        relay = self._pick_relay()
        if relay is None:
            return _unroutable("elicitation/create")
        return await relay.elicit(params)

    async def _on_list_roots(self, context: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
        relay = self._pick_relay()
        if relay is None:
            return _unroutable("roots/list")
        return await relay.list_roots()

    async def _on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        relay = self._pick_relay()
        if relay is None:
            log.debug(
                "upstream %s: log message with no single caller in flight, not relayed", self.target.name
            )
            return
        await relay.log(params)

    async def _on_message(self, message: types.ServerNotification | Exception) -> None:
        if isinstance(message, Exception):
            log.warning("upstream %s: transport error: %s", self.target.name, _describe(message))
            return
        if self._sink is not None and isinstance(
            message,
            types.ToolListChangedNotification
            | types.ResourceListChangedNotification
            | types.PromptListChangedNotification
            | types.ResourceUpdatedNotification,
        ):
            await self._sink(self.target.server_id, message)


def _unroutable(method: str) -> types.ErrorData:
    return types.ErrorData(
        code=types.INVALID_REQUEST,
        message=f"mcp-hub cannot relay {method}: no single client is waiting on this upstream",
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _CrashRecord:
    count: int = 0
    last: float = 0.0


class UpstreamPool:
    def __init__(
        self,
        resolver: CredentialResolver,
        settings: PoolSettings | None = None,
        sink: NotificationSink | None = None,
        on_open: SessionOpened | None = None,
        openapi: InProcessConnector | None = None,
    ) -> None:
        self.resolver = resolver
        self.openapi = openapi
        self.settings = settings or PoolSettings()
        self.sink = sink
        self.on_open = on_open
        # Outcome of the latest connect per server, for the admin's servers page.
        self.health = HealthBook()
        # HTTP connections to upstreams, shared by the pooled MCP sessions and the pass-through.
        self.wire = WirePool()
        self._sessions: dict[PoolKey, PooledSession] = {}
        self._crashes: dict[tuple[str, str], _CrashRecord] = {}
        # (server id, config fingerprint) -> when an upstream answered a discover with the handshake.
        self._handshake_only: dict[tuple[str, str], float] = {}
        # Keys whose sessions stay open when idle (they carry resource subscriptions clients hold).
        self._pins: dict[PoolKey, int] = {}
        self._open_lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None

    @asynccontextmanager
    async def run(self) -> AsyncIterator[UpstreamPool]:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._reap_idle)
            try:
                yield self
            finally:
                self._tg = None
                await self._close_all()
                self.wire.close()
                tg.cancel_scope.cancel()

    async def _close_all(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for pooled in sessions:
            pooled.close()
        # Every wait in the SDK's transport shutdown is bounded (stdio: grace period, then the process
        # group is killed); this bound is only a backstop.
        with anyio.move_on_after(15):
            for pooled in sessions:
                await pooled.done.wait()

    async def _reap_idle(self) -> None:
        interval = max(0.05, min(self.settings.idle_seconds / 4, 5.0))
        while True:
            await anyio.sleep(interval)
            self.reap_idle_now()

    def reap_idle_now(self) -> None:
        now = time.monotonic()
        for key, pooled in list(self._sessions.items()):
            if pooled.dead and pooled.in_flight == 0:
                del self._sessions[key]
                pooled.close()
            elif not pooled.ready.is_set():
                continue  # still opening: its first caller is waiting for it
            elif pooled.key in self._pins:
                continue
            elif pooled.in_flight == 0 and now - pooled.last_used >= self._idle_limit(pooled):
                log.info("upstream %s: idle for %.0fs, closing", pooled.target.name, now - pooled.last_used)
                del self._sessions[key]
                pooled.close()

    def _idle_limit(self, pooled: PooledSession) -> float:
        if pooled.superseded:
            return min(self.settings.idle_seconds, SUPERSEDED_GRACE_SECONDS)
        return self.settings.idle_seconds

    def pin(self, key: PoolKey) -> None:
        self._pins[key] = self._pins.get(key, 0) + 1

    def unpin(self, key: PoolKey) -> None:
        remaining = self._pins.get(key, 0) - 1
        if remaining > 0:
            self._pins[key] = remaining
        else:
            self._pins.pop(key, None)

    def sessions(self) -> list[PooledSession]:
        return list(self._sessions.values())

    def _backoff_delay(self, crash_key: tuple[str, str]) -> float:
        record = self._crashes.get(crash_key)
        if record is None or record.count == 0:
            return 0.0
        delay = min(self.settings.backoff_max, self.settings.backoff_initial * float(2 ** (record.count - 1)))
        return max(0.0, record.last + delay - time.monotonic())

    async def key_for(self, target: UpstreamTarget, user_id: str | None, era: Era = "handshake") -> PoolKey:
        """The pool key a caller's requests to `target` use (caches keyed by it follow the credential)."""
        credential = await self.resolver.resolve(user_id, target)
        return self._key(target, credential, era)

    def _key(self, target: UpstreamTarget, credential: ResolvedCredential, era: Era) -> PoolKey:
        if era == "modern" and not self._speaks_modern(target):
            era = "handshake"
        return PoolKey(target.server_id, target.fingerprint, credential.identity, era)

    def _speaks_modern(self, target: UpstreamTarget) -> bool:
        """Whether 2026-07-28 clients get an upstream session of their own revision. Streamable HTTP and
        stdio upstreams may speak it (negotiated when the session opens); the legacy SSE transport and
        the hub's in-process OpenAPI servers are handshake-only. An upstream that answered a discover
        with the handshake is remembered, so its clients of both eras share one session (one process)."""
        if target.openapi is not None or target.transport not in ("http", "stdio"):
            return False
        since = self._handshake_only.get((target.server_id, target.fingerprint))
        # Not for ever: one failed discover (an upstream restarting, a transient error) downgrades its
        # 2026-07-28 clients for a while, and an upgraded upstream is noticed.
        return since is None or time.monotonic() - since >= HANDSHAKE_VERDICT_SECONDS

    def forwarding_session(
        self, target: UpstreamTarget, credential: ResolvedCredential, era: Era
    ) -> ForwardingSession | None:
        """The session over streamable HTTP that this credential's requests of `era` use, if one is up
        right now: the upstream took the credential and negotiated a revision of that era, so a request
        may go to it as plain HTTP instead of through the SDK's client (mcp_hub.gateway.call_forward),
        joining the session by its `Mcp-Session-Id` on the handshake revisions. The forwarded request
        holds the session (`PooledSession.held`), which keeps it (and a 2026-07-28 session's list_changed
        stream) open."""
        if not forwardable(target):
            return None
        key = self._key(target, credential, era)
        pooled = self._sessions.get(key) if key.era == era else None
        if pooled is None or pooled.dead or pooled.superseded or pooled.session is None:
            return None
        version = pooled.session.protocol_version
        if version is None or era_of(version) != era:
            return None
        return ForwardingSession(version, pooled.http_session_id, pooled)

    def restart_pending(self, key: PoolKey) -> float:
        """Seconds until an upstream that failed may be tried again (0 when it is up or may be tried).
        Aggregate listings skip such upstreams instead of waiting for them."""
        pooled = self._sessions.get(key)
        if pooled is not None and not pooled.dead:
            return 0.0
        return self._backoff_delay((key.server_id, key.identity))

    async def acquire(
        self, target: UpstreamTarget, user_id: str | None, era: Era = "handshake"
    ) -> PooledSession:
        """A live session for this caller's credential on `target`, opened if needed. Waits out the
        restart backoff of a crashed upstream; the caller's deadline bounds the wait."""
        credential = await self.resolver.resolve(user_id, target)
        key = self._key(target, credential, era)
        while True:
            pooled = self._sessions.get(key)
            if pooled is not None and pooled.dead:
                # Its owner task books the crash (the restart backoff) only once it has ended; opening
                # the successor before then would start it with the previous, shorter backoff.
                await pooled.done.wait()
                self._forget(key, pooled)
                pooled = None
            opened_here = pooled is None
            if pooled is None:
                pooled = await self._open(key, target, credential)
            await pooled.ready.wait()
            if pooled.session is not None and not pooled.dead:
                pooled.last_used = time.monotonic()
                if opened_here:  # not on every call: this is the hot path
                    self.health.connected(target.server_id)
                return pooled
            self._forget(key, pooled)
            if pooled.unauthorized:
                raise CredentialRejectedError(target.name, credential)
            error = UpstreamError(
                f"cannot connect to upstream {target.name!r}: {_describe(pooled.error or EOFError())}"
            )
            self.health.failed(target.server_id, error.message)
            raise error

    def _file_as_handshake(self, pooled: PooledSession) -> None:
        """A session opened for 2026-07-28 clients fell back to the handshake: the upstream does not
        speak that revision. From now on clients of both eras share its handshake session."""
        self._handshake_only[(pooled.key.server_id, pooled.key.fingerprint)] = time.monotonic()
        handshake_key = replace(pooled.key, era="handshake")
        if self._sessions.get(pooled.key) is not pooled:
            return
        if handshake_key in self._sessions:
            # A handshake session is already up: this one serves the callers waiting for it, and no new
            # ones (they are sent to the handshake session), so the reaper closes it soon.
            pooled.superseded = True
            return
        del self._sessions[pooled.key]
        pooled.key = handshake_key
        self._sessions[handshake_key] = pooled

    def close_server(self, server_id: str) -> None:
        """Closes the idle sessions of one server (one in use is left to the idle reaper: a session is
        never closed under a call). For sessions opened only to test a server that was never saved."""
        for key, pooled in list(self._sessions.items()):
            if key.server_id == server_id and pooled.in_flight == 0:
                del self._sessions[key]
                pooled.close()
        self._crashes = {k: v for k, v in self._crashes.items() if k[0] != server_id}
        self.health.forget(server_id)

    def _forget(self, key: PoolKey, pooled: PooledSession) -> None:
        if self._sessions.get(key) is pooled:
            del self._sessions[key]
        pooled.close()

    async def _open(
        self, key: PoolKey, target: UpstreamTarget, credential: ResolvedCredential
    ) -> PooledSession:
        async with self._open_lock:
            existing = self._sessions.get(key)
            if existing is not None and not existing.dead:
                return existing
            if self._tg is None:
                raise UpstreamError("the upstream pool is not running")
            delay = self._backoff_delay((key.server_id, key.identity))
            if delay > 0:
                log.info("upstream %s: restarting in %.1fs after a crash", target.name, delay)
            pooled = PooledSession(
                key,
                target,
                credential,
                self.settings,
                self.sink,
                self.on_open,
                openapi=self.openapi,
                wire=self.wire,
                on_handshake_fallback=self._file_as_handshake,
            )
            self._sessions[key] = pooled
            self._tg.start_soon(self._start_after, pooled, delay)
            return pooled

    async def _start_after(self, pooled: PooledSession, delay: float) -> None:
        if delay > 0:
            await anyio.sleep(delay)
        if pooled.closing:
            pooled.dead = True
            pooled.ready.set()
            pooled.done.set()
            return
        await pooled.run()
        crash_key = (pooled.key.server_id, pooled.key.identity)
        if not pooled.crashed:
            self._crashes.pop(crash_key, None)
            return
        record = self._crashes.setdefault(crash_key, _CrashRecord())
        # A session that ran fine for a while and then died starts the backoff over.
        if pooled.error is None and time.monotonic() - pooled.started_at >= self.settings.healthy_after:
            record.count = 0
        record.count += 1
        record.last = time.monotonic()

    async def call(
        self,
        target: UpstreamTarget,
        user_id: str | None,
        operation: Callable[[UpstreamSession], Awaitable[T]],
        *,
        relay: DownstreamRelay | None = None,
        deadline_seconds: float | None = None,
        era: Era = "handshake",
    ) -> T:
        """Runs `operation` on a pooled session within the upstream's total deadline (connecting,
        waiting out a restart backoff and the call itself all count). `era`: the revision family of the
        downstream client the call is made for (see mcp_hub.upstream.session)."""
        deadline = deadline_seconds if deadline_seconds is not None else target.timeout_seconds
        try:
            with anyio.fail_after(deadline):
                for attempt in range(2):
                    try:
                        return await self._call_once(target, user_id, operation, relay, era)
                    except CredentialRejectedError as exc:
                        if attempt > 0 or exc.credential.on_rejected is None:
                            raise
                        # Replaced (a refreshed token: the next resolve gives a new pool key) or an
                        # error that says what the user must do, e.g. connect again.
                        await exc.credential.on_rejected()
                    except _SessionGoneError:
                        if attempt > 0:
                            raise UpstreamError(
                                f"upstream {target.name!r} keeps forgetting its session"
                            ) from None
                raise UpstreamError(f"upstream {target.name!r} refused the credential again")
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"upstream {target.name!r} did not answer within {_seconds(deadline)}"
            ) from None

    async def _call_once(
        self,
        target: UpstreamTarget,
        user_id: str | None,
        operation: Callable[[UpstreamSession], Awaitable[T]],
        relay: DownstreamRelay | None,
        era: Era,
    ) -> T:
        """One attempt. Raises CredentialRejectedError when the upstream answered 401 and
        _SessionGoneError when it forgot the session; both are safe to retry (the request did not run)."""
        pooled = await self.acquire(target, user_id, era)
        try:
            async with pooled.lease(relay) as session:
                return await operation(session)
        except MCPError as exc:
            if pooled.unauthorized:
                pooled.close()
                raise CredentialRejectedError(target.name, pooled.credential) from None
            if exc.code == types.CONNECTION_CLOSED:
                pooled.close()
                raise UpstreamError(f"upstream {target.name!r} closed the connection") from None
            if exc.code == types.PARSE_ERROR:
                # Made up by the SDK's transport when the upstream's answer does not parse; its text
                # would quote the upstream's bytes.
                raise UpstreamError(
                    f"upstream {target.name!r} answered with something that is not JSON-RPC"
                ) from None
            if _session_gone(exc):
                # The upstream restarted and forgot our session. The request was refused before it
                # ran, so it is safe to send again on a fresh session.
                log.info("upstream %s: session expired upstream, reconnecting", target.name)
                pooled.close()
                raise _SessionGoneError from None
            raise
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pooled.close()
            if pooled.unauthorized:
                raise CredentialRejectedError(target.name, pooled.credential) from None
            raise UpstreamError(f"upstream {target.name!r} closed the connection") from None
        except ValidationError:
            # The SDK validates every result against the protocol's types; the details would echo the
            # upstream's payload, so only the fact is reported.
            raise UpstreamError(f"upstream {target.name!r} answered with an invalid result") from None


class CredentialRejectedError(UpstreamError):
    """The upstream answered 401 to the credential presented for the caller."""

    def __init__(self, server_name: str, credential: ResolvedCredential) -> None:
        super().__init__(f"upstream {server_name!r} refused the credential presented for you (HTTP 401)")
        self.credential = credential


class _SessionGoneError(Exception):
    """The upstream answered 404 for our session id (it restarted): retry on a new session."""


SESSION_GONE_MESSAGES = frozenset({"Session not found", "Session terminated"})


def _session_gone(exc: MCPError) -> bool:
    """What the SDK's streamable-HTTP client reports when the server answers 404 for our session id."""
    return exc.code == types.INVALID_REQUEST and exc.message in SESSION_GONE_MESSAGES


def _seconds(value: float) -> str:
    return f"{value:g}s" if math.isfinite(value) else "its deadline"


def describe_error(exc: BaseException) -> str:
    return _describe(exc)
