"""Starting and stopping real peer processes (upstream MCP servers, the hub) on loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[2]
NODE_EVERYTHING = ROOT / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


@contextmanager
def running(
    args: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@contextmanager
def echo_upstream(transport: str) -> Iterator[str]:
    """A Python-SDK echo server over `http`, `http-json` or `sse`; yields its MCP URL."""
    port = free_port()
    with running([sys.executable, "-m", "tests.mcp_peers.echo_server", transport, str(port)], port):
        yield f"http://127.0.0.1:{port}/sse" if transport == "sse" else f"http://127.0.0.1:{port}/mcp"


@contextmanager
def everything_upstream(transport: str) -> Iterator[str]:
    """`@modelcontextprotocol/server-everything` over `streamableHttp` or `sse`; yields its URL."""
    port = free_port()
    with running(["node", str(NODE_EVERYTHING), transport], port, env={"PORT": str(port)}):
        yield (
            f"http://127.0.0.1:{port}/mcp"
            if transport == "streamableHttp"
            else f"http://127.0.0.1:{port}/sse"
        )


def descendants_of(pid: int) -> list[int]:
    """Live processes whose parent chain leads to `pid` (zombies included, so they count as leaks)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def process_state(pid: int) -> str | None:
    """The /proc state letter (R, S, Z...) or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def processes_with_marker(marker: str) -> list[int]:
    """Processes whose command line contains `marker` (a unique string a test put in argv)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = (
                Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if marker in cmdline and process_state(int(entry)) not in (None, "Z"):
            found.append(int(entry))
    return found


def http_ok(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=2).status_code < 500
    except httpx2.HTTPError:
        return False
