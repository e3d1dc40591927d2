"""A small upstream MCP server for the hub's tests, written with the Python SDK.

python -m tests.mcp_peers.echo_server stdio
python -m tests.mcp_peers.echo_server http PORT      # streamable HTTP at /mcp
python -m tests.mcp_peers.echo_server http-json PORT # the same, answering with JSON bodies only
python -m tests.mcp_peers.echo_server sse PORT       # SSE at /sse, messages at /messages/
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Annotated, Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

mcp = MCPServer("echo-fixture")


@mcp.tool()
def echo(text: str) -> str:
    """Returns its input."""
    return text


@mcp.tool()
def add(a: int, b: int) -> int:
    return a + b


@mcp.tool()
def whoami(ctx: Context) -> str:
    """The HTTP headers this server received (so tests can see what the hub sends upstream)."""
    headers = ctx.headers or {}
    return json.dumps({key.lower(): value for key, value in headers.items()})


@mcp.tool()
def query_digest(ctx: Context) -> str:
    """SHA-256 of the query string of the HTTP request that carried this call (where a BYOK key may
    travel): tests compare it with the key they stored without the key itself entering any message."""
    url = getattr(ctx.request_context.request, "url", None)
    return hashlib.sha256(str(url.query if url is not None else "").encode()).hexdigest()


@mcp.tool()
def env(name: str) -> str:
    return os.environ.get(name, "")


@mcp.tool()
def pid() -> int:
    return os.getpid()


@mcp.tool()
async def slow(seconds: float) -> str:
    await anyio.sleep(seconds)
    return f"slept {seconds}"


@mcp.tool()
async def progress(steps: int, ctx: Context) -> str:
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await anyio.sleep(0.01)
    return "done"


# RFC 5424's severities, least first, as `logging/setLevel` names them.
LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
# Each client connection's level from `logging/setLevel`, by the connection's id (the SDK builds a
# ServerSession per request; the connection under it is the client's, and has no public accessor).
SESSION_LEVELS: dict[int, str] = {}


@mcp.tool()
async def log(message: str, ctx: Context) -> str:
    """Says `message` at info, unless the session set a higher level (the SDK leaves that filter to the
    server's own `logging/setLevel` handler)."""
    level = SESSION_LEVELS.get(id(ctx.session._connection), "debug")
    if LOG_LEVELS.index(level) <= LOG_LEVELS.index("info"):
        await ctx.info(message)
    return "logged"


async def _set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
    SESSION_LEVELS[id(ctx.session._connection)] = params.level
    return types.EmptyResult()


@mcp.tool()
async def sample(prompt: str, ctx: Context) -> str:
    result = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
        max_tokens=20,
    )
    content = result.content
    return content.text if isinstance(content, types.TextContent) else str(content)


class Answer(BaseModel):
    answer: str


@mcp.tool()
async def ask(question: str, ctx: Context) -> str:
    result = await ctx.elicit(message=question, schema=Answer)
    return f"{result.action}:{getattr(getattr(result, 'data', None), 'answer', '')}"


@mcp.tool()
async def roots(ctx: Context) -> str:
    result = await ctx.session.list_roots()
    return ",".join(str(root.uri) for root in result.roots)


@mcp.tool()
async def touch_tools(ctx: Context) -> str:
    # Handshake-era clients get list_changed on their session; 2026-07-28 clients on the
    # subscriptions/listen streams they hold (the SDK drops the other spelling in each era).
    await ctx.session.send_tool_list_changed()
    await ctx.notify_tools_changed()
    return "notified"


@mcp.tool()
async def touch_resources(ctx: Context, times: int = 1) -> str:
    """Says `times` times in a row that the resource list changed (both eras' spellings, as
    `touch_tools`)."""
    for _ in range(times):
        await ctx.session.send_resource_list_changed()
        await ctx.notify_resources_changed()
    return "notified"


@mcp.tool()
async def touch_prompts(ctx: Context, times: int = 1) -> str:
    """Says `times` times in a row that the prompt list changed (both eras' spellings, as
    `touch_tools`)."""
    for _ in range(times):
        await ctx.session.send_prompt_list_changed()
        await ctx.notify_prompts_changed()
    return "notified"


@mcp.tool()
async def grow(name: str, ctx: Context) -> str:
    """Adds a tool called `name` (answering its own name), then says the tool list changed."""

    def grown() -> str:
        return name

    mcp.add_tool(grown, name=name)
    await ctx.session.send_tool_list_changed()
    await ctx.notify_tools_changed()
    return f"added {name}"


@mcp.tool()
def progress_token(ctx: Context) -> str:
    """The progress token this call's request carried, as JSON (null when it carried none)."""
    meta = ctx.request_context.meta or {}
    return json.dumps(meta.get("progress_token"))


@mcp.tool()
async def grow_here(name: str, ctx: Context) -> str:
    """As `grow`, but says the tool list changed on this call's own stream (as a server may)."""

    def grown() -> str:
        return name

    mcp.add_tool(grown, name=name)
    await ctx.session.send_notification(
        types.ToolListChangedNotification(), related_request_id=ctx.request_id
    )
    return f"added {name}"


@mcp.tool()
def protocol(ctx: Context) -> str:
    """The protocol revision of this request and the capabilities its client declared."""
    capabilities = ctx.client_capabilities
    declared = capabilities.model_dump(by_alias=True, exclude_none=True) if capabilities else None
    return json.dumps({"version": ctx.protocol_version, "capabilities": declared})


@mcp.tool()
def regional(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
    """A tool whose argument a 2026-07-28 client mirrors into an Mcp-Param-Region header."""
    return region


@mcp.tool()
async def touch_resource(uri: str, ctx: Context) -> str:
    await ctx.session.send_resource_updated(uri)
    return "notified"


@mcp.tool()
async def link(uri: str, steps: int, ctx: Context) -> list[types.ContentBlock]:
    """A resource link and the same resource embedded; `steps` progress notifications first (which
    makes a 2026-07-28 answer an SSE stream instead of one JSON body)."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps)
    return [
        types.ResourceLink(type="resource_link", name="linked", uri=uri),
        types.EmbeddedResource(
            type="resource",
            resource=types.TextResourceContents(uri=uri, text="embedded", mime_type="text/plain"),
        ),
    ]


CANCELLED: list[str] = []


@mcp.tool()
async def wait_for_cancel(tag: str) -> str:
    """Waits until cancelled, and remembers that it was (`cancelled` lists the tags)."""
    try:
        await anyio.sleep(60)
    except anyio.get_cancelled_exc_class():
        CANCELLED.append(tag)
        raise
    return "never cancelled"


@mcp.tool()
def cancelled() -> str:
    return ",".join(CANCELLED)


@mcp.tool()
def crash() -> str:
    os._exit(3)


@mcp.resource("fixture://greeting")
def greeting() -> str:
    return "hello from the fixture"


@mcp.resource("fixture://items/{item_id}")
def item(item_id: str) -> str:
    return f"item {item_id}"


@mcp.prompt()
def greet(name: str) -> str:
    return f"Say hello to {name}"


SUBSCRIBED: set[str] = set()


async def _subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
    SUBSCRIBED.add(str(params.uri))
    return types.EmptyResult()


async def _unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    SUBSCRIBED.discard(str(params.uri))
    return types.EmptyResult()


@mcp.tool()
def subscriptions() -> str:
    return ",".join(sorted(SUBSCRIBED))


# MCPServer has no subscription API; the low-level server underneath takes the handlers.
mcp._lowlevel_server.add_request_handler("resources/subscribe", types.SubscribeRequestParams, _subscribe)
mcp._lowlevel_server.add_request_handler(
    "resources/unsubscribe", types.UnsubscribeRequestParams, _unsubscribe
)
mcp._lowlevel_server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _set_level)


@mcp.tool()
def garbage() -> str:
    """Over streamable HTTP its call is answered with a body that is not JSON-RPC (`misbehaving`)."""
    return "not reached over HTTP"


@mcp.tool()
def http_error() -> str:
    """Over streamable HTTP its call is answered with HTTP 500 and an HTML page quoting the request's
    Authorization header, as careless error pages do (`misbehaving`)."""
    return "not reached over HTTP"


def misbehaving(app: Any) -> Any:
    """The HTTP app, except that calls of `garbage` and `http_error` get broken answers."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            name = json.loads(body).get("params", {}).get("name")
        except (ValueError, AttributeError):
            name = None
        if name in ("garbage", "http_error"):
            headers = dict(scope["headers"])
            status, content_type, text = (
                (200, b"application/json", b'{"jsonrpc": "2.0", "id": "someone else"}')
                if name == "garbage"
                else (
                    500,
                    b"text/html",
                    b"<html>500: saw " + headers.get(b"authorization", b"-") + b"</html>",
                )
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", content_type)],
                }
            )
            await send({"type": "http.response.body", "body": text})
            return
        replayed = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Any:
            return replayed.pop() if replayed else await receive()

        await app(scope, replay, send)

    return wrapped


def main(argv: list[str]) -> None:
    transport = argv[0] if argv else "stdio"
    if transport == "stdio":
        mcp.run("stdio")
        return
    port = int(argv[1])
    if transport == "sse":
        app = mcp.sse_app()
    else:  # "http", or "http-json": answers as one JSON body, never an SSE stream
        app = misbehaving(mcp.streamable_http_app(json_response=transport == "http-json"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
