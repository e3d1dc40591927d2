"""MCP clients for the gateway tests: the Python SDK's, over streamable HTTP and SSE, and the reading of
answers to JSON-RPC posted by hand."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


def auth_headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@asynccontextmanager
async def shttp_session(url: str, key: str | None, **callbacks: Any) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=auth_headers(key), timeout=httpx2.Timeout(30, read=300)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, **callbacks) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def sse_session(url: str, key: str | None, **callbacks: Any) -> AsyncIterator[ClientSession]:
    body_done = False
    try:
        async with (
            sse_client(url, headers=auth_headers(key)) as (read, write),
            ClientSession(read, write, **callbacks) as session,
        ):
            await session.initialize()
            yield session
            body_done = True
    except* anyio.BrokenResourceError:
        # The SDK's SSE client races its own teardown: a message that arrives on the stream while the
        # session is closing (server-everything logs every few seconds) makes its reader task raise
        # BrokenResourceError. Only that race, after the test's body has finished, is tolerated.
        if not body_done:
            raise


def text_of(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def sample_by_echo(
    context: ClientRequestContext, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    """A sampling callback that answers `sampled: <the prompt>`."""
    prompt = params.messages[0].content
    assert isinstance(prompt, types.TextContent)
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"sampled: {prompt.text}"),
        model="test-model",
    )


def sse_messages(body: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE body."""
    messages = []
    for event in body.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].strip() for line in event.split("\n") if line.startswith("data:"))
        if data:
            messages.append(json.loads(data))
    return messages


def result_of(response: httpx2.Response, request_id: int) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("application/json"):
        messages = [response.json()]
    else:
        messages = sse_messages(response.text)
    answer = next(m for m in messages if m.get("id") == request_id)
    return dict(answer)
