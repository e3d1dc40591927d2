"""An upstream whose subscriptions/listen acknowledges and then closes the stream gracefully at once
(e.g. a server behind a proxy that ends long responses). Counts listen requests on stderr."""

from __future__ import annotations

import sys
from typing import Any

import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY

mcp = MCPServer("quick-close")


@mcp.tool()
def echo(text: str) -> str:
    return text


async def _listen(
    ctx: Any, params: types.SubscriptionsListenRequestParams
) -> types.SubscriptionsListenResult:
    meta = {SUBSCRIPTION_ID_META_KEY: ctx.request_id}
    print("LISTEN", file=sys.stderr, flush=True)
    await ctx.session.send_notification(
        types.SubscriptionsAcknowledgedNotification(
            params=types.SubscriptionsAcknowledgedNotificationParams(
                notifications=types.SubscriptionFilter(tools_list_changed=True), _meta=meta
            )
        ),
        related_request_id=ctx.request_id,
    )
    return types.SubscriptionsListenResult(_meta=meta)


mcp._lowlevel_server.add_request_handler(
    "subscriptions/listen", types.SubscriptionsListenRequestParams, _listen
)

if __name__ == "__main__":
    mcp.run("stdio")
