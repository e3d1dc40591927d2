"""Where an upstream's messages about an in-flight call go: the downstream client that made it.

The gateway hands the pool one `DownstreamRelay` per call. Upstream → client requests (sampling,
elicitation, roots) and log messages arrive on the shared upstream session without saying which call
they belong to, so the pool routes them to the relays currently in flight on that session (see
`PooledSession._pick_relay`).
"""

from __future__ import annotations

from typing import Protocol

import mcp_types as types


class DownstreamRelay(Protocol):
    @property
    def owner(self) -> str:
        """Identifies the downstream MCP session; relays with the same owner reach the same client."""
        ...

    async def create_message(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData: ...

    async def elicit(self, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData: ...

    async def list_roots(self) -> types.ListRootsResult | types.ErrorData: ...

    async def log(self, params: types.LoggingMessageNotificationParams) -> None: ...
