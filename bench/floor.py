"""The HTTP floor: a bare Starlette endpoint answering every POST with a fixed JSON-RPC result.

Not an MCP server: it calibrates the machine. Its CPU per request is the least any Python server on
uvicorn pays here, which puts the MCP figures (and the issue's reference figures, measured elsewhere) in
proportion.
    python -m bench.floor --port 3403
"""

from __future__ import annotations

import argparse
import gc

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

RESULT = (
    b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello from the benchmark"}],'
    b'"isError":false}}'
)


async def answer(request: Request) -> Response:
    await request.body()
    return Response(RESULT, media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description="bare Starlette HTTP floor")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = Starlette(routes=[Route("/mcp", answer, methods=["POST"])])
    # As the hub does after its start-up (see docs/benchmarks.md, "Garbage collection").
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
