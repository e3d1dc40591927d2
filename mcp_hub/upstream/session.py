"""The hub's MCP client session to one upstream, and which protocol revision it speaks.

Each pooled upstream session serves downstream clients of one era (the pool keys sessions by it):
clients on a handshake revision (2025-06-18, 2025-11-25) get an upstream session opened with
`initialize`, so the upstream behaves exactly as it would for them directly (server-to-client requests
in the middle of a call, `logging/setLevel`, `resources/subscribe`). 2026-07-28 clients get an upstream
session of their revision where the upstream speaks it (`server/discover`; the handshake otherwise):
its multi-round "input required" results reach them as they are, and each request carries the client's
own capabilities and log level, as a direct request would. The SDK's 2026 client also gets plain JSON
answers instead of an SSE stream per call, which is cheaper at both ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import mcp_types as types
from mcp.client._probe import negotiate_auto
from mcp.client.session import ClientSession
from mcp.shared.dispatcher import CallOptions
from mcp_types import CLIENT_CAPABILITIES_META_KEY, LOG_LEVEL_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

Era = Literal["handshake", "modern"]

# `_meta` keys of a 2026-07-28 request that describe its client rather than the request. The gateway
# copies them from the downstream request; only a 2026-07-28 upstream session sends them on.
FORWARDED_META_KEYS = (CLIENT_CAPABILITIES_META_KEY, LOG_LEVEL_META_KEY)


def era_of(protocol_version: str | None) -> Era:
    return "modern" if protocol_version in MODERN_PROTOCOL_VERSIONS else "handshake"


def forwarded_meta(protocol_version: str | None, meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What of a downstream request's `_meta` the upstream request carries: on 2026-07-28, the client's
    declared capabilities (an upstream refuses a tool call needing one the client lacks, -32021) and
    its log level (log messages are opt-in per request). Nothing for older revisions."""
    if protocol_version not in MODERN_PROTOCOL_VERSIONS or not meta:
        return None
    forwarded = {key: meta[key] for key in FORWARDED_META_KEYS if key in meta}
    return forwarded or None


class UpstreamSession(ClientSession):
    """A `ClientSession` whose requests may carry a downstream client's capabilities and log level.

    The SDK stamps every 2026-07-28 request with the session's own capabilities (the hub's: it can
    relay sampling, elicitation and roots), overwriting whatever the request's `_meta` held. For a
    request made on behalf of one client those must be the client's, so the stamp is wrapped: the
    forwarded values win on a 2026-07-28 session, and are dropped on a handshake session (whose
    capabilities were fixed at `initialize`)."""

    def adopt(self, result: types.InitializeResult | types.DiscoverResult) -> None:
        super().adopt(result)
        sdk_stamp = self._stamp
        modern = self.protocol_version in MODERN_PROTOCOL_VERSIONS

        def stamp(data: dict[str, Any], opts: CallOptions) -> None:
            params = data.get("params")
            meta = params.get("_meta") if isinstance(params, dict) else None
            forwarded = {}
            if isinstance(meta, dict):
                forwarded = {key: meta.pop(key) for key in FORWARDED_META_KEYS if key in meta}
                if not modern:
                    meta.pop(PROTOCOL_VERSION_META_KEY, None)
            sdk_stamp(data, opts)
            if modern and forwarded:
                data.setdefault("params", {}).setdefault("_meta", {}).update(forwarded)

        self._stamp = stamp

    @property
    def modern(self) -> bool:
        return self.protocol_version in MODERN_PROTOCOL_VERSIONS


async def negotiate(session: UpstreamSession, era: Era) -> None:
    """Opens `session` for `era`: the handshake, or `server/discover` with the handshake as fallback
    (the SDK's own `mode="auto"` policy, which knows the ways servers say they are older)."""
    if era == "modern":
        await negotiate_auto(session)
    else:
        await session.initialize()
