"""Drives the hub's OAuth client the way a person connecting an upstream would, for the official
conformance suite's client `auth/*` scenarios:

    npx conformance client --command "python tests/credentials/conformance_auth_client.py" --suite auth

The suite appends the mock MCP server's URL as the last argument and starts mock authorization servers
that approve at once. This script opens a throwaway hub (SQLite in a temp dir, loopback allowlisted),
registers the URL as an `oauth2` server, runs start_authorization → (the browser's GET of the
authorization URL) → complete_authorization → resolve, then uses the resolved `Authorization` header
for an MCP session (initialize, tools/list, and a call of the first tool).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_hub.admin.schemas import ServerCreate
from mcp_hub.credentials.oauth import CallbackParams, complete_authorization, start_authorization
from mcp_hub.credentials.resolver import resolve
from mcp_hub.crypto import generate_key_entry
from mcp_hub.runtime import open_hub
from mcp_hub.settings import Settings
from mcp_hub.store import servers, users
from mcp_hub.store.engine import transaction


async def main(server_url: str) -> None:
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            encryption_keys=generate_key_entry(),
            oauth_allowed_hosts=["localhost", "127.0.0.1", "::1"],
        )
        async with open_hub(settings) as hub:
            async with transaction(hub.sessions) as session:
                user = await users.create_user(session, "conformance")
                spec = ServerCreate.model_validate(
                    {
                        "name": "conformance",
                        "transport": "http",
                        "url": server_url,
                        "auth_type": "oauth2",
                        **{k: context[k] for k in ("client_id", "client_secret") if context.get(k)},
                    }
                )
                server = await servers.create_server(session, hub.keyring, spec)
            flow = await start_authorization(hub, user_id=user.id, server_id=server.id, redirect_after="/")
            async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
                answer = await browser.get(flow.authorization_url)
            location = answer.headers.get("location")
            if location is None:
                raise SystemExit(f"authorization server answered {answer.status_code} without a redirect")
            query = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
            await complete_authorization(
                hub,
                CallbackParams(
                    state=query.get("state"),
                    code=query.get("code"),
                    iss=query.get("iss"),
                    error=query.get("error"),
                    error_description=query.get("error_description"),
                ),
                cookies={flow.cookie_name: flow.cookie_value},
                bearer_user_id=None,
            )
            auth = await resolve(hub, user.id, server.id)
    async with (
        httpx2.AsyncClient(headers=dict(auth.headers), timeout=30) as http,
        streamable_http_client(server_url, http_client=http) as (read, write),
        ClientSession(read, write) as mcp,
    ):
        await mcp.initialize()
        tools = await mcp.list_tools()
        if tools.tools:
            await mcp.call_tool(tools.tools[0].name, {})
    print("ok", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[-1]))
