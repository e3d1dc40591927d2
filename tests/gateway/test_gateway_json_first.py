"""How the terminating path frames its answers to 2025-era sessions (mcp_hub/gateway/json_first.py): one JSON
body when the response is the request's first message, the SDK's SSE stream when anything precedes it or
the response is slow, with every message of the stream kept."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp.server.streamable_http import REQUEST_STREAM_BUFFER_SIZE
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import JSONRPCNotification, JSONRPCResponse

from mcp_hub.gateway import json_first
from mcp_hub.gateway.json_first import JsonFirstTransport
from tests.gateway.clients import result_of, sse_messages
from tests.gateway.conftest import RunningHub
from tests.gateway.test_gateway_http_passthrough import call
from tests.gateway.test_gateway_robustness import open_raw_session


@asynccontextmanager
async def session_on(hub: RunningHub, path: str) -> AsyncIterator[tuple[httpx2.AsyncClient, dict[str, str]]]:
    """A 2025-11-25 session opened by hand on `path`, and the headers that address it."""
    key = await hub.add_key(await hub.add_user("alice"))
    async with httpx2.AsyncClient(base_url=hub.url, timeout=30) as http:
        yield http, await open_raw_session(http, path, key)


def tool_call(request_id: int, name: str, arguments: dict[str, Any], **meta: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


@pytest.mark.parametrize("path", ["/mcp", "/mcp/local"])
async def test_a_quick_answer_is_one_json_body(hub_server: RunningHub, path: str) -> None:
    await hub_server.add_stdio_echo("local")
    tool = "local__echo" if path == "/mcp" else "echo"
    async with session_on(hub_server, path) as (http, session):
        assert tool in {
            t["name"]
            for t in result_of(await call(http, path, session, 2, "tools/list"), 2)["result"]["tools"]
        }
        answer = await http.post(path, json=tool_call(3, tool, {"text": "quick"}), headers=session)
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["mcp-session-id"] == session["mcp-session-id"]
        assert answer.json()["result"]["content"][0]["text"] == "quick"
        listed = await call(http, path, session, 4, "tools/list")
        assert listed.headers["content-type"] == "application/json"
        assert tool in {t["name"] for t in listed.json()["result"]["tools"]}


async def test_progress_before_the_answer_opens_the_stream_with_every_message(hub_server: RunningHub) -> None:
    await hub_server.add_stdio_echo("local")
    async with session_on(hub_server, "/mcp") as (http, session):
        assert result_of(await call(http, "/mcp", session, 1, "tools/list"), 1)  # the upstream is up
        answer = await http.post(
            "/mcp", json=tool_call(2, "local__progress", {"steps": 3}, progressToken="p1"), headers=session
        )
        assert answer.headers["content-type"].startswith("text/event-stream")
        messages = sse_messages(answer.text)
        progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
        assert [(p["progressToken"], p["progress"], p["message"]) for p in progress] == [
            ("p1", 1, "step 1"),
            ("p1", 2, "step 2"),
            ("p1", 3, "step 3"),
        ]
        assert messages[-1]["id"] == 2 and messages[-1]["result"]["content"][0]["text"] == "done"


async def test_a_log_message_during_the_call_reaches_its_stream(hub_server: RunningHub) -> None:
    await hub_server.add_stdio_echo("local")
    async with session_on(hub_server, "/mcp") as (http, session):
        assert result_of(await call(http, "/mcp", session, 2, "logging/setLevel", {"level": "info"}), 2)
        answer = await http.post(
            "/mcp", json=tool_call(3, "local__log", {"message": "hello"}), headers=session
        )
        assert answer.headers["content-type"].startswith("text/event-stream")
        logged = [
            m["params"] for m in sse_messages(answer.text) if m.get("method") == "notifications/message"
        ]
        assert [entry["data"] for entry in logged] == ["hello"]
        assert result_of(answer, 3)["result"]["content"][0]["text"] == "logged"


async def test_a_slow_answer_streams_with_headers_sent_while_it_runs(
    hub_server: RunningHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(json_first, "JSON_WINDOW_SECONDS", 0.1)
    await hub_server.add_stdio_echo("local")
    async with session_on(hub_server, "/mcp") as (http, session):
        body = tool_call(2, "local__slow", {"seconds": 2.0})
        async with http.stream("POST", "/mcp", json=body, headers=session) as answer:
            headers_at = time.monotonic()
            assert answer.headers["content-type"].startswith("text/event-stream")
            text = (await answer.aread()).decode()
        # The headers came at the end of the window, long before the two-second call ended.
        assert time.monotonic() - headers_at > 1.0
        assert sse_messages(text)[-1]["result"]["content"][0]["text"] == "slept 2.0"


async def test_ending_the_session_answers_a_call_still_in_the_window(hub_server: RunningHub) -> None:
    await hub_server.add_stdio_echo("local")
    async with session_on(hub_server, "/mcp") as (http, session):
        answers: list[httpx2.Response] = []

        async def slow_call() -> None:
            answers.append(
                await http.post("/mcp", json=tool_call(2, "local__slow", {"seconds": 5}), headers=session)
            )

        transport = hub_server.app.state.gateway.manager._server_instances[session["mcp-session-id"]]
        with anyio.fail_after(4):
            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_call)
                while "2" not in transport._request_streams:  # dispatched, waiting for its answer
                    await anyio.sleep(0.01)
                assert (await http.delete("/mcp", headers=session)).status_code == 200
        assert answers[0].status_code == 500
        assert answers[0].json()["error"]["message"] == "Session terminated before the request completed"


async def test_a_client_gone_before_its_stream_starts_leaves_the_session_working() -> None:
    """The transport alone, with a scripted session behind it (the hub's server is not what this is
    about) and a client that is gone as soon as its body is read: the request's first message is a
    progress notification, so the answer becomes a stream that cannot be delivered. Its streams must be
    unregistered, or the messages that follow would fill them and stop the session's message router."""
    transport = JsonFirstTransport(mcp_session_id="s1")
    meta = ServerMessageMetadata(related_request_id=7)
    later_sent = anyio.Event()
    async with transport.connect() as (read, write):

        async def session() -> None:
            async for incoming in read:
                assert isinstance(incoming, SessionMessage)
                progress = {"progressToken": 1, "progress": 0}
                await write.send(
                    SessionMessage(
                        JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params=progress),
                        metadata=meta,
                    )
                )
                await anyio.sleep(0.2)
                for step in range(1, 2 * REQUEST_STREAM_BUFFER_SIZE):
                    progress = {"progressToken": 1, "progress": step}
                    await write.send(
                        SessionMessage(
                            JSONRPCNotification(
                                jsonrpc="2.0", method="notifications/progress", params=progress
                            ),
                            metadata=meta,
                        )
                    )
                await write.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=7, result={})))
                later_sent.set()

        body = json.dumps(
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "x"}}
        ).encode()
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            pass

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/mcp",
            "query_string": b"",
            "headers": [
                (b"content-type", b"application/json"),
                (b"accept", b"application/json, text/event-stream"),
                (b"mcp-session-id", b"s1"),
                (b"host", b"127.0.0.1"),
            ],
        }
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(session)
                await transport.handle_request(scope, receive, send)
                await later_sent.wait()  # the router kept taking the session's messages
                tg.cancel_scope.cancel()
        assert transport._request_streams == {} and transport._sse_stream_writers == {}
