"""No orphans, no zombies: the hub runs as its own process with a stdio upstream; the upstream is
killed (the hub reaps it and starts another on the next call), then the hub itself is killed."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from mcp_hub.crypto import generate_key_entry
from tests.conftest import ADMIN_KEY
from tests.gateway.clients import shttp_session, text_of
from tests.mcp_peers.procs import (
    ROOT,
    descendants_of,
    free_port,
    process_state,
    processes_with_marker,
    wait_for_port,
)

HUB_SCRIPT = (
    "import sys, uvicorn\n"
    "from mcp_hub.app import create_app\n"
    "from mcp_hub.settings import Settings\n"
    "uvicorn.run(create_app(Settings()), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')\n"
)


@dataclass
class HubProcess:
    process: subprocess.Popen[bytes]
    url: str


@pytest.fixture
def hub_process(tmp_path: Path) -> Iterator[HubProcess]:
    port = free_port()
    env = {
        **os.environ,
        "MCP_HUB_DATA_DIR": str(tmp_path / "data"),
        "MCP_HUB_PORT": str(port),
        "MCP_HUB_ADMIN_KEY": ADMIN_KEY,
        "MCP_HUB_ENCRYPTION_KEYS": generate_key_entry(),
    }
    process = subprocess.Popen([sys.executable, "-c", HUB_SCRIPT, str(port)], cwd=ROOT, env=env)
    try:
        wait_for_port(port)
        yield HubProcess(process, f"http://127.0.0.1:{port}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def _register(hub: HubProcess, marker: str) -> str:
    async with httpx2.AsyncClient(
        base_url=hub.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as admin:
        created = await admin.post(
            "/v1/servers",
            json={
                "name": "local",
                "transport": "stdio",
                "command": sys.executable,
                "args": ["-m", "tests.mcp_peers.echo_server", "stdio", marker],
            },
        )
        assert created.status_code == 201, created.text
        user = (await admin.post("/v1/users", json={"name": "pid-watcher"})).json()["id"]
        key: str = (await admin.post("/v1/keys", json={"user_id": user})).json()["key"]
        return key


async def _upstream_pid(hub: HubProcess, key: str) -> int:
    async with shttp_session(f"{hub.url}/mcp/local", key) as session:
        return int(text_of(await session.call_tool("pid", {})))


def _wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(process_state(pid) is None for pid in pids):
            return
        time.sleep(0.05)
    raise AssertionError({pid: process_state(pid) for pid in pids})


@pytest.mark.parametrize("hub_signal", [signal.SIGKILL, signal.SIGTERM])
async def test_no_orphans_or_zombies(hub_process: HubProcess, hub_signal: signal.Signals) -> None:
    marker = "mcphub-proc-" + secrets.token_hex(4)
    key = await _register(hub_process, marker)

    first = await _upstream_pid(hub_process, key)
    assert first in descendants_of(hub_process.process.pid)
    assert processes_with_marker(marker) == [first]

    # The upstream dies: the hub reaps it (no zombie left) and starts a new one on the next call.
    os.kill(first, signal.SIGKILL)
    _wait_gone([first])
    second = await _upstream_pid(hub_process, key)
    assert second != first and processes_with_marker(marker) == [second]

    # The hub goes away, gracefully or not: its upstream goes with it.
    hub_process.process.send_signal(hub_signal)
    hub_process.process.wait(30)
    _wait_gone([second])
    assert processes_with_marker(marker) == []
    if hub_signal == signal.SIGTERM:
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert hub_process.process.returncode in (0, -signal.SIGTERM)
