"""Many upstreams in one process, for the aggregate `tools/list` figure: N SDK servers of M tools each.

Server i is at /s{i}/mcp. One process instead of N keeps the machine's two cores for the hub and the load;
each server still has its own MCP session manager, so to the hub they are N independent upstreams.
    python -m bench.many --port 3404 --servers 20 --tools 50
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Mount


def make_tool(index: int) -> Callable[[str], str]:
    def tool(text: str) -> str:
        return f"{index}:{text}"

    return tool


def build_app(port: int, servers: int, tools: int) -> Starlette:
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"127.0.0.1:{port}"],
        allowed_origins=[f"http://127.0.0.1:{port}"],
    )
    apps: list[Starlette] = []
    for s in range(servers):
        server = MCPServer(name=f"bench-many-{s}", version="1.0.0", log_level="WARNING")
        for t in range(tools):
            server.add_tool(
                make_tool(t),
                name=f"tool_{t:03d}",
                description=f"Tool {t} of server {s}: returns its input prefixed with its number",
            )
        apps.append(server.streamable_http_app(streamable_http_path="/mcp", transport_security=security))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Mounted sub-apps' lifespans do not run on their own; each session manager must be entered.
        async with AsyncExitStack() as stack:
            for app in apps:
                await stack.enter_async_context(app.router.lifespan_context(app))
            yield

    routes = [Mount(f"/s{s}", app=app) for s, app in enumerate(apps)]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description="N echo-like MCP upstreams in one process")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--tools", type=int, default=50)
    args = parser.parse_args()
    app = build_app(args.port, args.servers, args.tools)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
