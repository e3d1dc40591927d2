"""The upstream pool against real MCP servers: the Python SDK echo fixture over streamable HTTP, SSE
and stdio."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession

from mcp_hub.errors import UpstreamError, UpstreamTimeoutError
from mcp_hub.upstream.credentials import StaticCredentialResolver
from mcp_hub.upstream.pool import PoolSettings, UpstreamPool
from mcp_hub.upstream.target import UpstreamTarget
from tests.mcp_peers.procs import (
    descendants_of,
    echo_upstream,
    free_port,
    process_state,
    processes_with_marker,
    running,
)


def target(
    transport: str,
    *,
    url: str | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> UpstreamTarget:
    return UpstreamTarget(
        server_id=f"srv-{transport}",
        name=f"echo-{transport}",
        alias=f"echo_{transport}",
        transport=transport,
        url=url,
        command=sys.executable if transport == "stdio" else None,
        args=args,
        timeout_seconds=timeout,
        headers=headers or {},
        env=env or {},
    )


def stdio_target(marker: str, **kwargs: object) -> UpstreamTarget:
    return target("stdio", args=("-m", "tests.mcp_peers.echo_server", "stdio", marker), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def http_url() -> Iterator[str]:
    with echo_upstream("http") as url:
        yield url


@pytest.fixture
def sse_url() -> Iterator[str]:
    with echo_upstream("sse") as url:
        yield url


@asynccontextmanager
async def open_pool(**settings: float) -> AsyncIterator[UpstreamPool]:
    # Not a fixture: the pool's task group must be entered and left by the same task, and
    # pytest-asyncio runs a fixture's setup and teardown in different tasks.
    defaults = {"idle_seconds": 60.0, "backoff_initial": 0.3, "backoff_max": 2.0}
    upstreams = UpstreamPool(StaticCredentialResolver(), PoolSettings(**{**defaults, **settings}))
    async with upstreams.run():
        yield upstreams


async def call_text(
    pool: UpstreamPool, tgt: UpstreamTarget, tool: str, arguments: dict[str, object] | None = None
) -> str:
    async def op(session: ClientSession) -> types.CallToolResult:
        return await session.send_request(
            types.CallToolRequest(params=types.CallToolRequestParams(name=tool, arguments=arguments or {})),
            types.CallToolResult,
        )

    result = await pool.call(tgt, None, op)
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_http_session_is_reused_and_sends_static_headers(http_url: str) -> None:
    async with open_pool() as pool:
        tgt = target("http", url=http_url, headers={"X-Upstream-Token": "static-secret"})
        assert await call_text(pool, tgt, "echo", {"text": "one"}) == "one"
        first = pool.sessions()
        assert await call_text(pool, tgt, "echo", {"text": "two"}) == "two"
        assert pool.sessions() == first and len(first) == 1
        seen = json.loads(await call_text(pool, tgt, "whoami"))
        assert seen["x-upstream-token"] == "static-secret"
        assert "authorization" not in seen and "x-mcp-hub-key" not in seen


async def test_sse_upstream(sse_url: str) -> None:
    async with open_pool() as pool:
        tgt = target("sse", url=sse_url, headers={"X-Upstream-Token": "sse-secret"})
        assert await call_text(pool, tgt, "add", {"a": 2, "b": 3}) == "5"
        assert json.loads(await call_text(pool, tgt, "whoami"))["x-upstream-token"] == "sse-secret"
        assert len(pool.sessions()) == 1


async def test_deadline_gives_a_clear_error_and_the_session_survives(http_url: str) -> None:
    async with open_pool() as pool:
        tgt = target("http", url=http_url, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeoutError, match=r"did not answer within 0\.5s"):
            await call_text(pool, tgt, "slow", {"seconds": 5})
        assert time.monotonic() - started < 2
        assert await call_text(pool, tgt, "echo", {"text": "still here"}) == "still here"


async def test_unreachable_upstream_fails_fast() -> None:
    async with open_pool() as pool:
        tgt = target("http", url="http://127.0.0.1:9/mcp", timeout=5)
        with pytest.raises(UpstreamError, match="cannot connect"):
            await call_text(pool, tgt, "echo", {"text": "x"})


async def test_stdio_starts_on_first_use_is_reused_and_replaced_after_a_crash() -> None:
    async with open_pool() as pool:
        marker = "mcphub-test-" + secrets.token_hex(4)
        tgt = stdio_target(marker, env={"FIXTURE_SECRET": "from-env"})
        assert processes_with_marker(marker) == []
        first_pid = int(await call_text(pool, tgt, "pid"))
        assert processes_with_marker(marker) == [first_pid]
        assert int(await call_text(pool, tgt, "pid")) == first_pid
        assert await call_text(pool, tgt, "env", {"name": "FIXTURE_SECRET"}) == "from-env"

        with pytest.raises(UpstreamError, match="closed the connection"):
            await call_text(pool, tgt, "crash")
        # The crashed process is reaped (no zombie) and the next call gets a new one, after a backoff.
        with anyio.fail_after(5):
            while process_state(first_pid) is not None:
                await anyio.sleep(0.05)
        started = time.monotonic()
        second_pid = int(await call_text(pool, tgt, "pid"))
        assert second_pid != first_pid
        assert time.monotonic() - started >= 0.25  # backoff_initial
        assert processes_with_marker(marker) == [second_pid]


async def test_stdio_crash_loop_backs_off_longer_each_time() -> None:
    async with open_pool() as pool:
        marker = "mcphub-test-" + secrets.token_hex(4)
        tgt = stdio_target(marker)
        delays = []
        for _ in range(3):
            # Timed from before the crash: the backoff runs from the moment the crash is seen, which a
            # loaded machine may report to this caller late, so only this bound holds under any load.
            started = time.monotonic()
            with pytest.raises(UpstreamError):
                await call_text(pool, tgt, "crash")
            await call_text(pool, tgt, "pid")
            delays.append(time.monotonic() - started)
        # backoff_initial 0.3 s (open_pool), doubled per crash in a row.
        assert delays[0] >= 0.29 and delays[1] >= 0.59 and delays[2] >= 1.19, delays


async def test_stdio_stops_when_idle_and_at_shutdown() -> None:
    marker = "mcphub-test-" + secrets.token_hex(4)
    tgt = stdio_target(marker)
    async with open_pool(idle_seconds=0.5) as upstreams:
        pid = int(await call_text(upstreams, tgt, "pid"))
        with anyio.fail_after(10):
            while process_state(pid) is not None:
                await anyio.sleep(0.1)
        assert upstreams.sessions() == []
        # Used again after being stopped: started again.
        pid = int(await call_text(upstreams, tgt, "pid"))
        assert processes_with_marker(marker) == [pid]
    # Shutdown stops it, reaps it, and leaves nothing behind.
    assert process_state(pid) is None
    assert processes_with_marker(marker) == []
    assert [p for p in descendants_of(os.getpid()) if process_state(p) == "Z"] == []


async def test_a_session_in_use_is_not_closed_by_the_idle_reaper() -> None:
    marker = "mcphub-test-" + secrets.token_hex(4)
    tgt = stdio_target(marker)
    async with open_pool(idle_seconds=0.2) as upstreams:
        # A call longer than the idle period completes on the same process.
        assert await call_text(upstreams, tgt, "slow", {"seconds": 1.0}) == "slept 1.0"


async def test_http_upstream_restarted_is_reconnected_transparently() -> None:
    port = free_port()
    command = [sys.executable, "-m", "tests.mcp_peers.echo_server", "http", str(port)]
    tgt = target("http", url=f"http://127.0.0.1:{port}/mcp")
    async with open_pool() as pool:
        with running(command, port):
            assert await call_text(pool, tgt, "echo", {"text": "before"}) == "before"
            [before] = pool.sessions()
        with running(command, port):
            # The new server process does not know the pooled session id (404): the pool opens a new
            # session and sends the call again, without the caller seeing an error.
            assert await call_text(pool, tgt, "echo", {"text": "after"}) == "after"
            [after] = pool.sessions()
            assert after is not before


async def test_dead_http_upstream_gives_an_error_then_is_replaced() -> None:
    port = free_port()
    command = [sys.executable, "-m", "tests.mcp_peers.echo_server", "http", str(port)]
    tgt = target("http", url=f"http://127.0.0.1:{port}/mcp", timeout=5)
    async with open_pool() as pool:
        with running(command, port):
            assert await call_text(pool, tgt, "echo", {"text": "1"}) == "1"
        with pytest.raises(UpstreamError):
            await call_text(pool, tgt, "echo", {"text": "while down"})
        with running(command, port):
            assert await call_text(pool, tgt, "echo", {"text": "2"}) == "2"


async def test_a_pinned_session_stays_open_when_idle() -> None:
    marker = "mcphub-test-" + secrets.token_hex(4)
    tgt = stdio_target(marker)
    async with open_pool(idle_seconds=0.3) as upstreams:
        pid = int(await call_text(upstreams, tgt, "pid"))
        key = await upstreams.key_for(tgt, None)
        upstreams.pin(key)
        await anyio.sleep(1.0)
        assert process_state(pid) not in (None, "Z")
        upstreams.unpin(key)
        with anyio.fail_after(10):
            while process_state(pid) is not None:
                await anyio.sleep(0.1)
