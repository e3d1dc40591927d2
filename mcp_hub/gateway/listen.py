"""`subscriptions/listen` for 2026-07-28 clients: how they hear that an upstream's tools, prompts or
resources changed (their revision has no session to notify later).

One listen request is one stream: the acknowledgment first, then a notification each time an upstream
the caller may use announces a change of a requested kind (handshake upstreams on their session,
2026-07-28 upstreams on the hub's own listen stream to them, see mcp_hub.upstream.pool), and a
`notifications/resources/updated` for each subscribed resource that changed (the gateway holds those
subscriptions upstream while the stream lasts). Changes that arrive while a notification is being
written are folded into the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY

from mcp_hub.auth.context import AuthContext, access_generation

ChangeKind = Literal["tools", "prompts", "resources"]

# What tells a client that a list of each kind changed (the listen stream's events, and the
# notifications the gateway sends 2025-era sessions).
CHANGE_NOTIFICATIONS: dict[
    ChangeKind,
    type[types.ToolListChangedNotification]
    | type[types.PromptListChangedNotification]
    | type[types.ResourceListChangedNotification],
] = {
    "tools": types.ToolListChangedNotification,
    "prompts": types.PromptListChangedNotification,
    "resources": types.ResourceListChangedNotification,
}

# Open listen streams per hub process, and per presented credential; each holds one request (and, over
# HTTP, one connection), so one caller cannot take every slot.
MAX_LISTENERS = 1024
MAX_LISTENERS_PER_CALLER = 16
# A stream with nothing to tell looks at the access decisions this often.
ACCESS_RECHECK_SECONDS = 30.0


@dataclass(eq=False)
class _Listener:
    principal: str
    server_ids: frozenset[str]
    kinds: frozenset[ChangeKind]
    # The access decisions the stream was opened under (auth.context.access_generation).
    generation: tuple[int, int]
    # Subscribed resources: (server id, upstream URI) -> the URI as the client named it.
    resources: dict[tuple[str, str], str] = field(default_factory=dict)
    pending: set[ChangeKind] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    wake: anyio.Event = field(default_factory=anyio.Event)


class ChangeListeners:
    def __init__(self) -> None:
        self._listeners: set[_Listener] = set()

    def changed(self, server_id: str, kind: ChangeKind) -> None:
        """An upstream announced a change: every listener that may see that server and asked for the
        kind is woken (a listener never learns of servers outside its caller's access)."""
        for listener in self._listeners:
            if server_id in listener.server_ids and kind in listener.kinds:
                listener.pending.add(kind)
                listener.wake.set()

    def resource_updated(self, server_id: str, uri: str) -> None:
        """An upstream resource changed: every listener subscribed to it is woken."""
        for listener in self._listeners:
            public = listener.resources.get((server_id, uri))
            if public is not None:
                listener.updated.add(public)
                listener.wake.set()

    def admit(self, auth: AuthContext) -> None:
        """Refuses a new stream at the caps (also checked when it registers, which is what counts)."""
        if len(self._listeners) >= MAX_LISTENERS:
            raise MCPError(types.INTERNAL_ERROR, "too many open listen streams on this hub; try again later")
        if (
            sum(listener.principal == auth.principal for listener in self._listeners)
            >= MAX_LISTENERS_PER_CALLER
        ):
            raise MCPError(
                types.INTERNAL_ERROR,
                f"this credential already holds {MAX_LISTENERS_PER_CALLER} listen streams; close one first",
            )

    async def serve(
        self,
        ctx: ServerRequestContext[Any, Any],
        auth: AuthContext,
        params: types.SubscriptionsListenRequestParams,
        resources: dict[tuple[str, str], str],
        generation: tuple[int, int],
    ) -> types.SubscriptionsListenResult:
        """Serves one stream until the client goes away. `resources`: the resources held for it (server
        id and upstream URI -> the URI the client used); `generation`: the access decisions it was
        opened under. It ends (gracefully: the client may listen again, and is authenticated again)
        when an access change or a revocation in this process makes the caller's access uncertain;
        that is checked when there is something to tell, and every ACCESS_RECHECK_SECONDS on a quiet
        stream."""
        request_id = ctx.request_id
        if request_id is None:
            raise MCPError(types.INVALID_REQUEST, "subscriptions/listen requires a request id")
        self.admit(auth)
        wanted = params.notifications
        asked: dict[ChangeKind, bool | None] = {
            "tools": wanted.tools_list_changed,
            "prompts": wanted.prompts_list_changed,
            "resources": wanted.resources_list_changed,
        }
        kinds = frozenset(kind for kind, yes in asked.items() if yes)
        honored = types.SubscriptionFilter(
            tools_list_changed=True if "tools" in kinds else None,
            prompts_list_changed=True if "prompts" in kinds else None,
            resources_list_changed=True if "resources" in kinds else None,
            resource_subscriptions=sorted(set(resources.values())) or None,
        )
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: request_id}
        listener = _Listener(
            auth.principal,
            frozenset(server.id for server in auth.servers.values()),
            kinds,
            generation,
            resources,
        )
        # Registered before the acknowledgment, so a change during its write is not lost.
        self._listeners.add(listener)
        try:
            await ctx.session.send_notification(
                types.SubscriptionsAcknowledgedNotification(
                    params=types.SubscriptionsAcknowledgedNotificationParams(
                        notifications=honored, _meta=meta
                    )
                ),
                related_request_id=request_id,
            )
            while kinds or resources:
                # Woken by a change, or now and then to notice an access change on a quiet stream
                # (which would otherwise keep its upstream subscriptions for a caller that lost access).
                with anyio.move_on_after(ACCESS_RECHECK_SECONDS):
                    await listener.wake.wait()
                listener.wake = anyio.Event()
                if access_generation() != listener.generation:
                    break
                changed, listener.pending = sorted(listener.pending), set()
                for kind in changed:
                    await ctx.session.send_notification(
                        CHANGE_NOTIFICATIONS[kind](params=types.NotificationParams(_meta=meta)),
                        related_request_id=request_id,
                    )
                updated, listener.updated = sorted(listener.updated), set()
                for uri in updated:
                    await ctx.session.send_notification(
                        types.ResourceUpdatedNotification(
                            params=types.ResourceUpdatedNotificationParams(uri=uri, _meta=meta)
                        ),
                        related_request_id=request_id,
                    )
            # Nothing this hub can deliver was asked for: the stream ends at once, gracefully.
        finally:
            self._listeners.discard(listener)
        return types.SubscriptionsListenResult(_meta=meta)
