"""An upstream that speaks just enough streamable HTTP to be initialized, then answers with garbage.

    python -m tests.mcp_peers.garbage_server PORT

`tools/list` gets a result of the wrong shape, `tools/call` of tool `not_json` gets a body that is not
JSON, `tools/call` of tool `hang_up` gets its connection closed mid-response; anything else a valid
empty answer.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

SESSION = "garbage-session"


async def mcp(request: Request) -> Response:
    if request.method == "DELETE":
        return Response(status_code=200)
    if request.method == "GET":
        return Response(status_code=405)
    message: dict[str, Any] = json.loads(await request.body())
    method, request_id = message.get("method"), message.get("id")
    headers = {"mcp-session-id": SESSION}
    if request_id is None:
        return Response(status_code=202, headers=headers)
    if method == "initialize":
        result = {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "garbage", "version": "0"},
        }
    elif method == "tools/list":
        result = {"tools": "this should have been a list"}
    elif method == "tools/call" and message["params"]["name"] == "not_json":
        return Response(b"{this is not json", media_type="application/json", headers=headers)
    elif method == "tools/call" and message["params"]["name"] == "hang_up":

        async def half_a_stream() -> Any:
            yield b'event: message\ndata: {"jsonrpc": "2.0", "id": '
            raise ConnectionResetError("the upstream died mid-stream")

        return StreamingResponse(half_a_stream(), media_type="text/event-stream", headers=headers)
    else:
        result = {}
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result}, headers=headers)


app = Starlette(routes=[Route("/mcp", mcp, methods=["GET", "POST", "DELETE"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="critical")
