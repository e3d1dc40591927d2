"""One command, one run, side by side: an echo `tools/call` direct to a Python SDK upstream, through the hub at
`/mcp/{server}` and at `/mcp`, and through FastMCP's proxy on one shared, already-connected upstream client.

    python -m bench.run                 # or: make bench      (about 6 minutes with the defaults: both eras)
    python -m bench.run --duration 5 --concurrency 1 8 32 --era legacy --out bench-results.md

Servers (upstream, hub, FastMCP proxy) are pinned to core 0 and the load to core 1 (`taskset`), so CPU time
per call is each server's own. Two kinds of load at each concurrency:
  - sdk: N `mcp.Client` sessions over streamable HTTP, each calling `echo` in a loop;
  - raw: wrk posting one fixed JSON-RPC `tools/call` body over N keep-alive connections (one MCP session).
Per cell: calls/s, p50 and p99 latency, the front server's CPU ms per call (utime+stime from /proc before and
after the measured window; for "direct" the front server is the upstream itself), the upstream's CPU ms per
call, and the front server's peak RSS. A column whose server cannot serve the call (the hub's gateway not
mounted yet, say) says "not available" with the reason instead of failing the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE = "0"
LOAD_CORE = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
ECHO_TEXT = "hello from the benchmark"
LEGACY_VERSION = "2025-11-25"
# Unmeasured aggregate listings first: they open the hub's upstream sessions ("once warm" in the target).
WARM_LISTS = 2
MODERN_VERSION = "2026-07-28"


# ---- processes ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, deadline_s: float, process: subprocess.Popen[bytes]) -> None:
    """Until `url` answers at all (any status): the server is up."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            httpx2.get(url, timeout=0.5)
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up within {deadline_s}s")


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """utime + stime of the process (its threads included), from /proc/PID/stat."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        pages = int(Path(f"/proc/{self.pid}/statm").read_text().split()[1])
        return pages * PAGE_KB / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(name: str, argv: list[str], logdir: Path, env: dict[str, str] | None = None) -> Proc:
    """Start a server pinned to the server core; `taskset` execs it, so the PID is the server's own."""
    log = logdir / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *argv],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    return Proc(name, process, log)


# ---- targets ----------------------------------------------------------------------------------------------


@dataclass
class Target:
    key: str
    label: str
    url: str | None
    front: Proc | None
    tool: str = "echo"
    headers: dict[str, str] = field(default_factory=dict)
    unavailable: str | None = None


@dataclass
class Cell:
    calls: int = 0
    seconds: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    front_cpu_ms: float | None = None
    upstream_cpu_ms: float | None = None
    rss_mb: float | None = None
    errors: int = 0
    note: str | None = None

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def client_for(target: Target, era: str) -> Client:
    assert target.url is not None
    http = httpx2.AsyncClient(headers=target.headers, timeout=httpx2.Timeout(30.0))
    transport = streamable_http_client(target.url, http_client=http)
    # No response cache: every call must reach the server being measured.
    return Client(transport, mode="legacy" if era == "legacy" else MODERN_VERSION, cache=None)


async def check_echo(target: Target, era: str) -> str | None:
    """None when one echo call through the target returns the echo; otherwise why not."""
    try:
        async with asyncio.timeout(20), client_for(target, era) as client:
            if target.tool == "":
                names = [tool.name for tool in (await client.list_tools()).tools]
                found = [name for name in names if name.endswith("__echo") or name == "echo"]
                if not found:
                    return f"no echo tool listed (tools: {names[:10]})"
                target.tool = found[0]
            result = await client.call_tool(target.tool, {"message": ECHO_TEXT})
    except (MCPError, httpx2.HTTPError, OSError, TimeoutError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    except ExceptionGroup as group:  # the SDK's task groups wrap transport failures
        first = group.exceptions[0]
        return f"{type(first).__name__}: {str(first)[:200]}"
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    if result.is_error or texts != [ECHO_TEXT]:
        return f"echo returned {texts!r} (is_error={result.is_error})"
    return None


# ---- load: SDK clients ------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


@contextlib.contextmanager
def measured(target: Target, upstream: Proc, cell: Cell) -> Iterator[None]:
    """CPU of the front server and the upstream across the block; peak RSS of the front server."""
    front_before = target.front.cpu_seconds() if target.front else 0.0
    upstream_before = upstream.cpu_seconds()
    yield
    if cell.calls:
        if target.front is not None:
            cell.front_cpu_ms = (target.front.cpu_seconds() - front_before) * 1000 / cell.calls
            cell.rss_mb = target.front.rss_mb()
        cell.upstream_cpu_ms = (upstream.cpu_seconds() - upstream_before) * 1000 / cell.calls


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """This process's heap frozen for one cell: all N clients run here, and a full collection over the
    SDK, pydantic and every earlier cell's leftovers stalled all of them at once (44-165 ms measured),
    which lands in every column's p99 alike. Unfrozen after the cell, so its garbage is collected."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def sdk_load(
    target: Target, upstream: Proc, concurrency: int, warmup: float, duration: float, era: str
) -> Cell:
    cell = Cell()
    latencies: list[float] = []
    state = {"recording": False, "stop": False}

    async def worker(client: Client) -> None:
        while not state["stop"]:
            began = time.perf_counter()
            try:
                result = await client.call_tool(target.tool, {"message": ECHO_TEXT})
                failed = result.is_error
            except MCPError:
                failed = True
            if state["recording"] and not state["stop"]:
                if failed:
                    cell.errors += 1
                else:
                    latencies.append(time.perf_counter() - began)

    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(client_for(target, era)) for _ in range(concurrency)]
        stack.enter_context(frozen_heap())
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(worker(client))
            await asyncio.sleep(warmup)
            state["recording"] = True
            began = time.perf_counter()
            with measured(target, upstream, cell):
                await asyncio.sleep(duration)
                state["stop"] = True
                cell.calls = len(latencies)
                cell.seconds = time.perf_counter() - began
    if latencies:
        latencies.sort()
        cell.p50_ms = percentile(latencies, 0.50) * 1000
        cell.p99_ms = percentile(latencies, 0.99) * 1000
    return cell


# ---- load: raw HTTP (wrk) ---------------------------------------------------------------------------------


def legacy_initialize(client_name: str) -> dict[str, object]:
    """The JSON-RPC `initialize` of a 2025-11-25 session."""
    return {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": client_name, "version": "1"},
        },
    }


def post_headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus the content type and accept list every MCP post carries."""
    return {**headers, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


async def open_legacy_session(
    http: httpx2.AsyncClient, url: str, base: dict[str, str], client_name: str
) -> dict[str, str]:
    """Opens a 2025-11-25 session (initialize + initialized); returns `base` plus the headers its requests
    carry."""
    response = await http.post(url, headers=base, json=legacy_initialize(client_name))
    response.raise_for_status()
    headers = {
        **base,
        "mcp-session-id": response.headers["mcp-session-id"],
        "MCP-Protocol-Version": LEGACY_VERSION,
    }
    done = await http.post(
        url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    done.raise_for_status()
    return headers


async def raw_request(target: Target, era: str) -> tuple[dict[str, str], str]:
    """Headers and body for a fixed `tools/call`; for the 2025 era, on a session opened here."""
    assert target.url is not None
    base = post_headers(target.headers)
    arguments = {"message": ECHO_TEXT}
    if era == "modern":
        meta = {
            "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": target.tool, "arguments": arguments, "_meta": meta},
        }
        headers = {
            **base,
            "MCP-Protocol-Version": MODERN_VERSION,
            "Mcp-Method": "tools/call",
            "Mcp-Name": target.tool,
        }
        async with httpx2.AsyncClient(timeout=10) as http:
            await probe_echo(http, target.url, headers, json.dumps(body))
        return headers, json.dumps(body)
    async with httpx2.AsyncClient(timeout=10) as http:
        headers = await open_legacy_session(http, target.url, base, "bench-raw")
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": target.tool, "arguments": arguments},
        }
        await probe_echo(http, target.url, headers, json.dumps(body))
    return headers, json.dumps(body)


async def probe_echo(http: httpx2.AsyncClient, url: str, headers: dict[str, str], body: str) -> None:
    """One post of the exact body wrk will send: it must come back with the echo, not an error."""
    probe = await http.post(url, headers=headers, content=body)
    if probe.status_code != 200 or ECHO_TEXT not in probe.text or '"isError":true' in probe.text:
        raise RuntimeError(f"raw tools/call answered {probe.status_code}: {probe.text[:200]}")


def lua_script(headers: dict[str, str], body: str) -> str:
    """wrk posts `body` with a fresh JSON-RPC id per request: on a 2025-era session, requests in flight at
    once must not share an id (the server routes each response to its request by id)."""
    head, tail = body.split('"id": 1,', 1)
    lines = ['wrk.method = "POST"']
    lines += [f'wrk.headers["{name}"] = [==[{value}]==]' for name, value in headers.items()]
    lines += [
        "local sent = 0",
        "request = function()",
        "  sent = sent + 1",
        f'  return wrk.format(nil, nil, nil, [==[{head}"id": ]==] .. sent .. [==[,{tail}]==])',
        "end",
    ]
    return "\n".join(lines) + "\n"


WRK_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
WRK_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.MULTILINE)
WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*?timeout (\d+)")
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(out: str, cell: Cell) -> Cell:
    """Fill calls, seconds, p50, p99 and errors from `wrk --latency` output."""
    if match := WRK_REQUESTS.search(out):
        cell.calls = int(match.group(1))
        cell.seconds = float(match.group(2)) * UNIT_MS[match.group(3)] / 1000
    for pct, value, unit in WRK_LATENCY.findall(out):
        setattr(cell, "p50_ms" if pct == "50" else "p99_ms", float(value) * UNIT_MS[unit])
    for non_2xx, timeouts in WRK_ERRORS.findall(out):
        cell.errors += int(non_2xx or 0) + int(timeouts or 0)
    if not cell.calls:
        cell.note = f"wrk: {out.strip()[-200:]}"
    return cell


def raw_load(
    target: Target, upstream: Proc, concurrency: int, warmup: float, duration: float, script: Path
) -> Cell:
    assert target.url is not None
    wrk = ["taskset", "-c", str(LOAD_CORE), "wrk", "-t1", f"-c{concurrency}", "--latency", "-s", str(script)]
    subprocess.run([*wrk, f"-d{max(1, round(warmup))}s", target.url], capture_output=True, check=False)
    cell = Cell()
    with measured(target, upstream, cell):
        out = subprocess.run(
            [*wrk, f"-d{max(1, round(duration))}s", target.url], capture_output=True, text=True, check=False
        ).stdout
        # Parsed inside the block: `measured` divides CPU by the calls, so it needs them on exit.
        parse_wrk(out, cell)
    if target.key == "floor":
        cell.upstream_cpu_ms = None  # the floor never calls the upstream
    return cell


# ---- hub-only figures: idle sessions, aggregate listing ---------------------------------------------------


@dataclass
class HubExtras:
    idle_sessions: int = 0
    idle_added_mb: float | None = None
    idle_seconds: float | None = None
    idle_note: str | None = None
    list_servers: int = 0
    list_tools: int | None = None
    list_p50_ms: float | None = None
    list_p99_ms: float | None = None
    list_note: str | None = None
    # The same listing read by a raw HTTP client (no SDK parsing of 1,000 tools on the client side).
    raw_list_p50_ms: float | None = None
    raw_list_p99_ms: float | None = None
    raw_list_bytes: int | None = None


async def open_idle_sessions(url: str, headers: dict[str, str], count: int, parallel: int = 8) -> int:
    """Open `count` 2025-11-25 sessions (initialize + initialized) and leave them idle; returns how many opened."""
    base = post_headers(headers)
    init = legacy_initialize("bench-idle")
    gate = asyncio.Semaphore(parallel)
    opened = 0

    async def one(http: httpx2.AsyncClient) -> None:
        nonlocal opened
        async with gate:
            response = await http.post(url, headers=base, json=init)
            session = response.headers.get("mcp-session-id")
            if response.status_code != 200 or not session:
                return
            done = await http.post(
                url,
                headers={**base, "mcp-session-id": session, "MCP-Protocol-Version": LEGACY_VERSION},
                json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            )
            if done.status_code in (200, 202):
                opened += 1

    async with httpx2.AsyncClient(timeout=30) as http, asyncio.TaskGroup() as group:
        for _ in range(count):
            group.create_task(one(http))
    return opened


async def hub_extras(args: argparse.Namespace, hub: Target, workdir: Path, procs: list[Proc]) -> HubExtras:
    """1,000 idle downstream sessions (RSS they add) and a warm aggregate tools/list over many upstreams."""
    assert hub.front is not None and hub.url is not None
    extras = HubExtras()
    if args.idle_sessions:
        before = hub.front.rss_mb()
        began = time.perf_counter()
        extras.idle_sessions = await open_idle_sessions(hub.url, hub.headers, args.idle_sessions)
        extras.idle_seconds = time.perf_counter() - began
        await asyncio.sleep(1)
        extras.idle_added_mb = hub.front.rss_mb() - before
        if extras.idle_sessions < args.idle_sessions:
            extras.idle_note = f"only {extras.idle_sessions} of {args.idle_sessions} sessions opened"
    if args.many_servers:
        port = free_port()
        many = start(
            "many",
            [
                sys.executable,
                "-m",
                "bench.many",
                "--port",
                str(port),
                "--servers",
                str(args.many_servers),
                "--tools",
                str(args.many_tools),
            ],
            workdir,
        )
        procs.append(many)
        wait_http(f"http://127.0.0.1:{port}/s0/mcp", 60, many.process)
        base = hub.url.rsplit("/mcp", 1)[0]
        async with httpx2.AsyncClient(base_url=base, headers=hub.headers, timeout=30) as http:
            for index in range(args.many_servers):
                created = await http.post(
                    "/v1/servers",
                    json={
                        "name": f"many{index:02d}",
                        "transport": "http",
                        "url": f"http://127.0.0.1:{port}/s{index}/mcp",
                        "access": "all_users",
                    },
                )
                if created.status_code not in (200, 201):
                    extras.list_note = f"registering upstream {index} failed: HTTP {created.status_code}"
                    return extras
        extras.list_servers = args.many_servers
        timings: list[float] = []
        try:
            async with client_for(hub, args.era[0]) as client:
                for round_ in range(WARM_LISTS + args.list_rounds):
                    began = time.perf_counter()
                    listed = await client.list_tools()
                    if round_ >= WARM_LISTS:
                        timings.append(time.perf_counter() - began)
                extras.list_tools = len(listed.tools)
        except (MCPError, httpx2.HTTPError, OSError) as exc:
            extras.list_note = f"{type(exc).__name__}: {str(exc)[:200]}"
        if timings:
            timings.sort()
            extras.list_p50_ms = percentile(timings, 0.5) * 1000
            extras.list_p99_ms = percentile(timings, 0.99) * 1000
        try:
            raw = await raw_list_timings(hub, args.list_rounds)
        except (httpx2.HTTPError, KeyError, RuntimeError) as exc:
            extras.list_note = f"raw listing: {type(exc).__name__}: {str(exc)[:200]}"
        else:
            extras.raw_list_bytes, raw_timings = raw
            extras.raw_list_p50_ms = percentile(raw_timings, 0.5) * 1000
            extras.raw_list_p99_ms = percentile(raw_timings, 0.99) * 1000
    return extras


async def raw_list_timings(hub: Target, rounds: int) -> tuple[int, list[float]]:
    """Times `tools/list` posts on one 2025-11-25 session, each read to the end of its body but not
    parsed: the hub's latency without an SDK client's cost of validating every listed tool."""
    assert hub.url is not None
    timings: list[float] = []
    size = 0
    async with httpx2.AsyncClient(timeout=30) as http:
        headers = await open_legacy_session(http, hub.url, post_headers(hub.headers), "bench-list")
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        for round_ in range(WARM_LISTS + rounds):
            began = time.perf_counter()
            response = await http.post(hub.url, headers=headers, content=body)
            size = len(await response.aread())
            if response.status_code != 200 or b'"tools"' not in response.content:
                raise RuntimeError(f"tools/list answered {response.status_code}: {response.text[:200]}")
            if round_ >= WARM_LISTS:
                timings.append(time.perf_counter() - began)
    timings.sort()
    return size, timings


def render_extras(extras: HubExtras | None, args: argparse.Namespace) -> str:
    if extras is None:
        return "Hub-only figures: not available (the hub column is not available in this run)."
    lines = ["| hub figure | value |", "|---|---|"]
    if args.idle_sessions:
        per = (
            f"{extras.idle_added_mb * 1024 / extras.idle_sessions:.0f} KB/session"
            if extras.idle_added_mb is not None and extras.idle_sessions
            else "-"
        )
        lines.append(
            f"| {extras.idle_sessions} idle sessions on /mcp: RSS added | {fmt(extras.idle_added_mb, 1)} MB "
            f"({per}; opened in {fmt(extras.idle_seconds, 1)} s){' ' + extras.idle_note if extras.idle_note else ''} |"
        )
    if args.many_servers:
        lines.append(
            f"| warm aggregate tools/list on /mcp, {args.many_servers} upstreams x {args.many_tools} tools "
            f"({extras.list_tools} tools listed, {args.list_rounds} calls) | p50 {fmt(extras.list_p50_ms)} ms, "
            f"p99 {fmt(extras.list_p99_ms)} ms{' ' + extras.list_note if extras.list_note else ''} |"
        )
        lines.append(
            f"| the same, raw HTTP client (body read, not parsed; {extras.raw_list_bytes} bytes) "
            f"| p50 {fmt(extras.raw_list_p50_ms)} ms, p99 {fmt(extras.raw_list_p99_ms)} ms |"
        )
    return "\n".join(lines)


# ---- the run ----------------------------------------------------------------------------------------------


async def hub_targets(
    hub: Proc, port: int, upstream_url: str, admin_key: str, eras: Sequence[str]
) -> list[Target]:
    """Register the upstream through the admin API, then probe /mcp/echo and /mcp."""
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {admin_key}"}
    targets = [
        Target("hub-server", "hub /mcp/{server}", f"{base}/mcp/echo", hub, "echo", auth),
        Target("hub-aggregate", "hub /mcp", f"{base}/mcp", hub, "", auth),
    ]
    async with httpx2.AsyncClient(base_url=base, headers=auth, timeout=10) as http:
        created = await http.post(
            "/v1/servers",
            json={"name": "echo", "transport": "http", "url": upstream_url, "access": "all_users"},
        )
    if created.status_code not in (200, 201):
        reason = f"registering the upstream failed: HTTP {created.status_code} {created.text[:200]}"
        for target in targets:
            target.unavailable = reason
        return targets
    for target in targets:
        target.unavailable = await check_eras(target, eras)
    return targets


async def check_eras(target: Target, eras: Sequence[str]) -> str | None:
    """The first era in which `target` does not answer an echo call, and why; None when all do."""
    for era in eras:
        problem = await check_echo(target, era)
        if problem:
            return f"era {era}: {problem}"
    return None


def fmt_load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(
    targets: list[Target],
    results: dict[tuple[str, str, int], Cell],
    concurrency: list[int],
    args: argparse.Namespace,
    era: str,
) -> str:
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: era {era} "
        f"({LEGACY_VERSION if era == 'legacy' else MODERN_VERSION}), warmup {args.warmup}s, "
        f"measured {args.duration}s per cell, servers on core {SERVER_CORE}, load on core {LOAD_CORE}, "
        f"Python {sys.version.split()[0]}.",
        "",
        "| load | conc | target | calls/s | p50 ms | p99 ms | front CPU ms/call | upstream CPU ms/call "
        "| front RSS MB | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in ("sdk", "raw"):
        for conc in concurrency:
            for target in targets:
                if target.unavailable:
                    lines.append(f"| {kind} | {conc} | {target.label} | not available | | | | | | |")
                    continue
                cell = results.get((kind, target.key, conc))
                if cell is None:
                    continue
                lines.append(
                    f"| {kind} | {conc} | {target.label} | {cell.rate:.0f} | {fmt(cell.p50_ms)} | "
                    f"{fmt(cell.p99_ms)} | {fmt(cell.front_cpu_ms)} | {fmt(cell.upstream_cpu_ms)} | "
                    f"{fmt(cell.rss_mb, 0)} | {cell.errors}{' ' + cell.note if cell.note else ''} |"
                )
    unavailable = {t.label: t.unavailable for t in targets if t.unavailable}
    if unavailable:
        lines += ["", "Not available in this run:"]
        lines += [f"- {label}: {reason}" for label, reason in unavailable.items()]
    lines += ["", ratio_summary(targets, results, concurrency)]
    return "\n".join(lines) + "\n"


def ratio_summary(
    targets: list[Target], results: dict[tuple[str, str, int], Cell], concurrency: list[int]
) -> str:
    """Throughput relative to direct, and added p50, per proxy and load kind."""
    rows = ["| load | conc | target | x direct calls/s | added p50 ms |", "|---|---:|---|---:|---:|"]
    for kind in ("sdk", "raw"):
        for conc in concurrency:
            direct = results.get((kind, "direct", conc))
            for target in targets:
                cell = results.get((kind, target.key, conc))
                if target.key in ("direct", "floor") or direct is None or cell is None or not direct.rate:
                    continue
                added = (
                    cell.p50_ms - direct.p50_ms
                    if cell.p50_ms is not None and direct.p50_ms is not None
                    else None
                )
                rows.append(
                    f"| {kind} | {conc} | {target.label} | {cell.rate / direct.rate:.2f} | {fmt(added)} |"
                )
    return "\n".join(rows)


@contextlib.asynccontextmanager
async def servers(
    args: argparse.Namespace, workdir: Path
) -> AsyncIterator[tuple[Proc, list[Target], list[Proc]]]:
    procs: list[Proc] = []
    try:
        up_port, hub_port, fm_port = free_port(), free_port(), free_port()
        upstream = start(
            "upstream", [sys.executable, "-m", "bench.upstream", "--port", str(up_port)], workdir
        )
        procs.append(upstream)
        upstream_url = f"http://127.0.0.1:{up_port}/mcp"
        wait_http(upstream_url, 20, upstream.process)
        targets = [Target("direct", "direct", upstream_url, upstream)]
        floor_port = free_port()
        floor = start("floor", [sys.executable, "-m", "bench.floor", "--port", str(floor_port)], workdir)
        procs.append(floor)
        floor_url = f"http://127.0.0.1:{floor_port}/mcp"
        wait_http(floor_url, 20, floor.process)

        if args.skip_hub:
            targets += [
                Target("hub-server", "hub /mcp/{server}", None, None, unavailable="skipped (--skip-hub)"),
                Target("hub-aggregate", "hub /mcp", None, None, unavailable="skipped (--skip-hub)"),
            ]
        else:
            admin_key = "mcph_bench_" + secrets.token_hex(24)
            hub_env = {
                "MCP_HUB_DATA_DIR": str(workdir / "hub-data"),
                "MCP_HUB_ADMIN_KEY": admin_key,
                "MCP_HUB_LOG_LEVEL": "WARNING",
            }
            hub_bin = shutil.which("mcp-hub", path=str(Path(sys.executable).parent)) or "mcp-hub"
            hub = start("hub", [hub_bin, "serve", "--port", str(hub_port)], workdir, hub_env)
            procs.append(hub)
            try:
                wait_http(f"http://127.0.0.1:{hub_port}/healthz", 60, hub.process)
                targets += await hub_targets(hub, hub_port, upstream_url, admin_key, args.era)
            except (RuntimeError, TimeoutError, httpx2.HTTPError) as exc:
                reason = f"hub did not start: {exc} (log: {hub.log})"
                targets += [
                    Target("hub-server", "hub /mcp/{server}", None, None, unavailable=reason),
                    Target("hub-aggregate", "hub /mcp", None, None, unavailable=reason),
                ]

        proxy = start(
            "fastmcp",
            [sys.executable, "-m", "bench.fastmcp_proxy", "--upstream", upstream_url, "--port", str(fm_port)],
            workdir,
        )
        procs.append(proxy)
        fm_url = f"http://127.0.0.1:{fm_port}/mcp"
        fastmcp = Target("fastmcp", "FastMCP proxy (shared session)", fm_url, proxy)
        try:
            wait_http(fm_url, 60, proxy.process)
            fastmcp.unavailable = await check_eras(fastmcp, args.era)
        except (RuntimeError, TimeoutError) as exc:
            fastmcp.unavailable = f"FastMCP proxy did not start: {exc} (log: {proxy.log})"
        targets.append(fastmcp)
        direct_problem = await check_eras(targets[0], args.era)
        if direct_problem:
            raise RuntimeError(f"the upstream itself does not answer: {direct_problem}")
        # Raw load only: the floor is plain HTTP, not MCP; it is listed first as the machine's calibration.
        targets.insert(0, Target("floor", "HTTP floor (bare Starlette, not MCP)", floor_url, floor))
        yield upstream, targets, procs
    finally:
        for proc in reversed(procs):
            proc.stop()


async def load_matrix(
    args: argparse.Namespace, era: str, live: list[Target], upstream: Proc, workdir: Path
) -> dict[tuple[str, str, int], Cell]:
    """Every live target under both kinds of load at every concurrency, in one protocol era."""
    results: dict[tuple[str, str, int], Cell] = {}
    for target in live:
        if target.key != "floor":
            print(f"{target.label}: sdk load ({era})", file=sys.stderr, flush=True)
        for conc in args.concurrency if target.key != "floor" else []:
            results[("sdk", target.key, conc)] = await sdk_load(
                target, upstream, conc, args.warmup, args.duration, era
            )
        print(f"{target.label}: raw load ({era})", file=sys.stderr, flush=True)
        if target.key == "floor":
            headers, body = (
                {"Content-Type": "application/json"},
                '{"jsonrpc": "2.0", "id": 1, "method": "ping"}',
            )
        else:
            try:
                headers, body = await raw_request(target, era)
            except (RuntimeError, KeyError, httpx2.HTTPError) as exc:
                reason = f"raw setup failed: {type(exc).__name__}: {str(exc)[:150]}"
                for conc in args.concurrency:
                    results[("raw", target.key, conc)] = Cell(note=reason)
                continue
        script = workdir / f"{target.key}-{era}.lua"
        script.write_text(lua_script(headers, body))
        for conc in args.concurrency:
            results[("raw", target.key, conc)] = await asyncio.to_thread(
                raw_load, target, upstream, conc, args.warmup, args.duration, script
            )
    return results


async def run(args: argparse.Namespace) -> str:
    os.sched_setaffinity(0, {LOAD_CORE})
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="mcp-hub-bench-"))
    tables: list[str] = []
    try:
        async with servers(args, workdir) as (upstream, targets, procs):
            live = [t for t in targets if not t.unavailable]
            for era in args.era:
                results = await load_matrix(args, era, live, upstream, workdir)
                tables.append(render(targets, results, args.concurrency, args, era))
            hub = next((t for t in targets if t.key == "hub-aggregate" and not t.unavailable), None)
            extras = None
            if hub is not None and (args.idle_sessions or args.many_servers):
                print("hub: idle sessions and aggregate listing", file=sys.stderr, flush=True)
                extras = await hub_extras(args, hub, workdir, procs)
            load = (
                f"Machine load (1/5/15-minute load averages, 2 cores shared with other work): "
                f"{fmt_load(load_before)} at the start, {fmt_load(os.getloadavg())} at the end.\n"
            )
            return "\n".join(tables) + "\n" + render_extras(extras, args) + "\n\n" + load
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--era",
        choices=["legacy", "modern"],
        nargs="+",
        default=["legacy", "modern"],
        help="load matrices to run: 2025-11-25 sessions, 2026-07-28 requests (default: both, one after "
        "the other); the aggregate-listing SDK client uses the first",
    )
    parser.add_argument("--skip-hub", action="store_true", help="measure direct and FastMCP only")
    parser.add_argument(
        "--idle-sessions", type=int, default=1000, help="idle /mcp sessions to open (0: skip)"
    )
    parser.add_argument(
        "--many-servers", type=int, default=20, help="upstreams for the aggregate listing (0: skip)"
    )
    parser.add_argument(
        "--many-tools", type=int, default=50, help="tools per upstream for the aggregate listing"
    )
    parser.add_argument("--list-rounds", type=int, default=10, help="measured aggregate tools/list calls")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is needed for the raw-HTTP load: apt-get install -y wrk")
    if shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        parser.error("needs taskset and two cores (servers on one, load on the other)")
    table = asyncio.run(run(args))
    print(table)
    if args.out:
        args.out.write_text(table)


if __name__ == "__main__":
    main()
