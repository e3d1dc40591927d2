"""The pass-through of `/mcp/{server}` for streamable-HTTP upstreams (mcp_hub/gateway/passthrough.py):
the HTTP exchange reaches a real SDK upstream with the user's credential instead of the hub key, policy
is applied where an allowlist is in force, upstream session ids are bound to the key that opened them,
bodies are capped, errors are JSON-RPC errors, and SSE streams flow while the call runs."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_hub.settings import Settings
from tests.gateway.clients import result_of, sample_by_echo, shttp_session, text_of
from tests.gateway.conftest import RunningHub, serve_hub
from tests.gateway.test_gateway_access import INIT, MCP_HEADERS
from tests.gateway.test_gateway_robustness import open_raw_session
from tests.mcp_peers.procs import free_port, running


async def call(
    http: httpx2.AsyncClient,
    path: str,
    headers: dict[str, str],
    request_id: int,
    method: str,
    params: dict[str, Any] | None = None,
) -> httpx2.Response:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return await http.post(path, json=body, headers=headers)


async def test_the_upstream_answers_and_sees_the_users_credential_not_the_hub_key(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http, headers={"X-Upstream-Key": "s3cret"})
    key = await hub_server.add_key(await hub_server.add_user("ann"))
    async with httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http:
        # Both ways of presenting the hub key, and a cookie for the hub's origin: none goes upstream.
        sent = {"Authorization": f"Bearer {key}", "x-mcp-hub-key": key, "Cookie": "hub_session=abc"}
        opened = await http.post("/mcp/echo", json=INIT, headers={**MCP_HEADERS, **sent})
        # The upstream's own answer to the client's own initialize: nothing terminated in between.
        init = result_of(opened, INIT["id"])
        assert init["result"]["serverInfo"]["name"] == "echo-fixture"
        session = await open_raw_session(
            http, "/mcp/echo", key, {"x-mcp-hub-key": key, "Cookie": "hub_session=abc"}
        )
        whoami = result_of(await call(http, "/mcp/echo", session, 2, "tools/call", {"name": "whoami"}), 2)
    seen = json.loads(whoami["result"]["content"][0]["text"])
    assert seen["x-upstream-key"] == "s3cret"
    assert "authorization" not in seen and "x-mcp-hub-key" not in seen and "cookie" not in seen
    assert key not in json.dumps(seen)
    assert seen["host"] == echo_http.split("/")[2]  # the upstream's own host, not the hub's


async def test_allowlists_filter_tools_list_and_refuse_calls_without_reaching_the_upstream(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server(
        "limited", transport="http", url=echo_http, allowed_tools=["echo", "add", "pid"]
    )
    key = await hub_server.add_key(await hub_server.add_user("bea"), allowed_tools=["limited.echo", "pid"])
    other = await hub_server.add_key(await hub_server.add_user("cid"))
    async with httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http:
        session = await open_raw_session(http, "/mcp/limited", key)
        listed = result_of(await call(http, "/mcp/limited", session, 2, "tools/list"), 2)
        assert sorted(tool["name"] for tool in listed["result"]["tools"]) == ["echo", "pid"]
        refused = await call(
            http, "/mcp/limited", session, 3, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}
        )
        assert refused.status_code == 200 and refused.headers["content-type"] == "application/json"
        assert refused.json() == {
            "jsonrpc": "2.0",
            "id": 3,
            "error": {"code": -32602, "message": "Tool 'add' is not allowed for this API key"},
        }
        # Not in the server's allowlist at all (whoami): refused the same way.
        assert (
            "error" in (await call(http, "/mcp/limited", session, 4, "tools/call", {"name": "whoami"})).json()
        )
        allowed = result_of(
            await call(
                http, "/mcp/limited", session, 5, "tools/call", {"name": "echo", "arguments": {"text": "hi"}}
            ),
            5,
        )
        assert allowed["result"]["content"][0]["text"] == "hi"
        # A key with no allowlist of its own still gets the server's.
        session = await open_raw_session(http, "/mcp/limited", other)
        listed = result_of(await call(http, "/mcp/limited", session, 6, "tools/list"), 6)
        assert sorted(tool["name"] for tool in listed["result"]["tools"]) == ["add", "echo", "pid"]


async def test_upstream_sessions_are_bound_to_the_key_that_opened_them(
    hub_server: RunningHub, echo_http: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    alice = await hub_server.add_key(await hub_server.add_user("alice"))
    bob = {"Authorization": f"Bearer {await hub_server.add_key(await hub_server.add_user('bob'))}"}
    async with httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http:
        session = await open_raw_session(http, "/mcp/echo", alice)
        stolen = {**session, **bob}
        assert (await call(http, "/mcp/echo", stolen, 2, "tools/list")).status_code == 404
        assert (await http.delete("/mcp/echo", headers=stolen)).status_code == 404
        assert (
            await http.get("/mcp/echo", headers={**stolen, "Accept": "text/event-stream"})
        ).status_code == 404
        # Bob's attempts changed nothing: Alice's session still works, and she may end it.
        echoed = result_of(
            await call(
                http, "/mcp/echo", session, 3, "tools/call", {"name": "echo", "arguments": {"text": "mine"}}
            ),
            3,
        )
        assert echoed["result"]["content"][0]["text"] == "mine"
        assert (await http.delete("/mcp/echo", headers=session)).status_code in (200, 204)
        # Ended upstream: the id is gone for everyone.
        assert (await call(http, "/mcp/echo", session, 4, "tools/list")).status_code == 404


async def test_bodies_over_the_cap_are_refused(settings: Settings, echo_http: str) -> None:
    # A cap far below the upstream's own (4 MiB), so only the hub can be what refuses.
    cap = 64 * 1024
    async with serve_hub(settings.model_copy(update={"max_request_bytes": cap})) as hub:
        await hub.add_server("echo", transport="http", url=echo_http)
        key = await hub.add_key(await hub.add_user("dan"))
        async with httpx2.AsyncClient(base_url=hub.url, timeout=30) as http:
            session = await open_raw_session(http, "/mcp/echo", key)

            def echo_of(text: str, request_id: int) -> bytes:
                params = {"name": "echo", "arguments": {"text": text}}
                return json.dumps(
                    {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
                ).encode()

            assert (
                await http.post("/mcp/echo", content=echo_of("x" * 2 * cap, 2), headers=session)
            ).status_code == 413

            async def chunks() -> Any:
                # No Content-Length: the cap applies to what arrives, not only to what is declared.
                body = echo_of("y" * 2 * cap, 3)
                for start in range(0, len(body), 8192):
                    yield body[start : start + 8192]

            assert (await http.post("/mcp/echo", content=chunks(), headers=session)).status_code == 413
            under = result_of(
                await http.post("/mcp/echo", content=echo_of("z" * (cap // 2), 4), headers=session), 4
            )
            assert under["result"]["content"][0]["text"] == "z" * (cap // 2)


async def test_progress_and_server_requests_stream_while_the_call_runs(
    hub_server: RunningHub, echo_http: str
) -> None:
    """The `sample` tool waits for the client's answer to its sampling request, which travels on the
    call's own SSE stream: the call can only complete if the hub passes that stream on as it flows
    rather than when it ends."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("eve"))
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with shttp_session(f"{hub_server.url}/mcp/echo", key, sampling_callback=sample_by_echo) as session:
        assert (
            text_of(await session.call_tool("progress", {"steps": 3}, progress_callback=on_progress))
            == "done"
        )
        assert progress == [1, 2, 3]
        assert text_of(await session.call_tool("sample", {"prompt": "hi"})) == "sampled: hi"


async def test_an_upstream_that_goes_away_gives_a_json_rpc_error(hub_server: RunningHub) -> None:
    port = free_port()
    key = await hub_server.add_key(await hub_server.add_user("fay"))
    await hub_server.add_server("brief", transport="http", url=f"http://127.0.0.1:{port}/mcp")
    async with httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http:
        with running([sys.executable, "-m", "tests.mcp_peers.echo_server", "http", str(port)], port):
            session = await open_raw_session(http, "/mcp/brief", key)
            ok = result_of(
                await call(
                    http,
                    "/mcp/brief",
                    session,
                    2,
                    "tools/call",
                    {"name": "echo", "arguments": {"text": "up"}},
                ),
                2,
            )
            assert ok["result"]["content"][0]["text"] == "up"
        gone = await call(
            http, "/mcp/brief", session, 3, "tools/call", {"name": "echo", "arguments": {"text": "down"}}
        )
    assert gone.status_code == 502
    assert gone.json() == {
        "jsonrpc": "2.0",
        "id": 3,
        "error": {"code": -32603, "message": "cannot connect to upstream 'brief'"},
    }


async def test_upstream_connections_are_kept_alive_on_both_paths(
    hub_server: RunningHub, echo_http: str
) -> None:
    """One call after another reuses the same upstream connection: on the pass-through, and under the
    terminating path's SDK client, which closes each SSE response before its end (the hub reads the
    rest so the connection can be reused)."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("gil"))
    wire = hub_server.app.state.gateway.pool.wire
    forwarder = hub_server.app.state.gateway.forwarder
    for url, tool in ((f"{hub_server.url}/mcp/echo", "echo"), (f"{hub_server.url}/mcp", "echo__echo")):
        async with shttp_session(url, key) as session:
            assert text_of(await session.call_tool(tool, {"text": "warm"})) == "warm"
            opened, requests, forwarded = wire.opened, wire.requests, forwarder.sent
            for i in range(20):
                assert text_of(await session.call_tool(tool, {"text": str(i)})) == str(i)
            assert wire.requests - requests >= 20  # this path's upstream HTTP goes through the pool
            assert wire.opened - opened <= 1, (url, wire.opened - opened)
            # On /mcp these calls were forwarded (mcp_hub/gateway/call_forward.py), whose SSE answers are
            # read to their end after the answer too.
            assert forwarder.sent - forwarded == (20 if url.endswith("/mcp") else 0)


async def test_methods_other_than_get_post_delete_are_refused(hub_server: RunningHub, echo_http: str) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("hal"))
    async with httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http:
        session = await open_raw_session(http, "/mcp/echo", key)
        for method in ("PUT", "HEAD", "PATCH"):
            refused = await http.request(method, "/mcp/echo", headers=session)
            assert refused.status_code == 405, method
            assert refused.headers["allow"] == "GET, POST, DELETE"
        ok = result_of(
            await call(
                http, "/mcp/echo", session, 2, "tools/call", {"name": "echo", "arguments": {"text": "after"}}
            ),
            2,
        )
        assert ok["result"]["content"][0]["text"] == "after"


async def test_an_sse_answer_with_nothing_before_its_response_comes_back_as_json(
    hub_server: RunningHub, echo_http: str
) -> None:
    """The JSON-first rule on the pass-through (mcp_hub/gateway/sse.py): the upstream streams every
    answer, and the client gets one JSON body when the response is all there is to say, the stream
    when something comes before it. The SDK's client reads a JSON answer whole, so it keeps its
    connection from call to call (an SSE answer it stops reading at the response, and loses it)."""
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("ivy"))
    async with httpx2.AsyncClient(base_url=hub_server.url, timeout=30) as http:
        session = await open_raw_session(http, "/mcp/echo", key)
        params = {"name": "echo", "arguments": {"text": "plain"}}
        plain = await call(http, "/mcp/echo", session, 2, "tools/call", params)
        assert plain.headers["content-type"] == "application/json"
        assert plain.headers["content-length"] == str(len(plain.content))
        assert plain.json()["id"] == 2 and plain.json()["result"]["content"][0]["text"] == "plain"
        assert plain.headers["mcp-session-id"] == session["mcp-session-id"]
        meta = {"name": "progress", "arguments": {"steps": 2}, "_meta": {"progressToken": "p"}}
        streamed = await call(http, "/mcp/echo", session, 3, "tools/call", meta)
        assert streamed.headers["content-type"].startswith("text/event-stream")
        methods = [
            json.loads(line[5:]).get("method")
            for line in streamed.text.splitlines()
            if line.startswith("data:")
        ]
        assert methods == ["notifications/progress"] * 2 + [None]

    client_ports: list[int] = []

    async def note_port(response: httpx2.Response) -> None:
        if response.request.method == "POST":
            client_ports.append(response.extensions["network_stream"].get_extra_info("client_addr")[1])

    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, event_hooks={"response": [note_port]}, timeout=30
    )
    async with (
        http,
        streamable_http_client(f"{hub_server.url}/mcp/echo", http_client=http) as (read, write),
        ClientSession(read, write) as sdk,
    ):
        await sdk.initialize()
        for i in range(5):
            assert text_of(await sdk.call_tool("echo", {"text": str(i)})) == str(i)
    assert len(client_ports) >= 6 and len(set(client_ports[-5:])) == 1, client_ports
