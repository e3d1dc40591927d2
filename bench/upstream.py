"""The benchmark's upstream: a Python SDK MCP server with one `echo` tool, over streamable HTTP.

Its own process, so its CPU is measured apart from whatever sits in front of it.
    python -m bench.upstream --port 3401     # http://127.0.0.1:3401/mcp
"""

from __future__ import annotations

import argparse
import gc

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette


def build_app(port: int) -> Starlette:
    server = MCPServer(name="bench-echo", version="1.0.0", log_level="WARNING")

    @server.tool(description="Returns its input")
    def echo(message: str) -> str:
        return message

    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"127.0.0.1:{port}", f"localhost:{port}"],
        allowed_origins=[f"http://127.0.0.1:{port}", f"http://localhost:{port}"],
    )
    return server.streamable_http_app(transport_security=security)


async def serve(host: str, port: int) -> None:
    config = uvicorn.Config(build_app(port), host=host, port=port, log_level="warning", access_log=False)
    # As the hub does after its start-up: full collections stop scanning the start-up heap (every server
    # in the run is treated alike; see docs/benchmarks.md, "Garbage collection").
    gc.collect()
    gc.freeze()
    await uvicorn.Server(config).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description="echo MCP upstream for the benchmark")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    anyio.run(serve, args.host, args.port)


if __name__ == "__main__":
    main()
