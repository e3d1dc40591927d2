"""FastMCP's proxy in its best configuration: one upstream client, connected once, shared by every request.

FastMCP's default proxy opens a fresh upstream session per request; handing `create_proxy` a client that
is already connected makes it reuse that one session for all requests (FastMCP logs that this may mix
request contexts under concurrency; for an echo tool that does not matter, and it is the fastest path).
    python -m bench.fastmcp_proxy --upstream http://127.0.0.1:3401/mcp --port 3402
"""

from __future__ import annotations

import argparse
import gc
import logging

import anyio
from fastmcp import Client
from fastmcp.server import create_proxy


async def serve(upstream: str, host: str, port: int) -> None:
    async with Client(upstream) as client:
        proxy = create_proxy(client, name="fastmcp-proxy")
        # As the hub does after its start-up (see docs/benchmarks.md, "Garbage collection").
        gc.collect()
        gc.freeze()
        await proxy.run_http_async(
            show_banner=False,
            transport="http",
            host=host,
            port=port,
            path="/mcp",
            log_level="warning",
            uvicorn_config={"access_log": False},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="FastMCP proxy with one shared upstream session")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    anyio.run(serve, args.upstream, args.host, args.port)


if __name__ == "__main__":
    main()
