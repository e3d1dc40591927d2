"""A second hub process for the cross-process refresh test: opens the same database with the same keys,
prints "ready", waits for "go" on stdin, resolves one user's credential N times at once, and prints the
SHA-256 of each Authorization header it got (never the token itself) as one JSON line.

Usage: python refresh_worker.py DATABASE_URL USER_ID SERVER_ID COUNT   (keys in MCP_HUB_ENCRYPTION_KEYS)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from mcp_hub.credentials.resolver import resolve
from mcp_hub.runtime import open_hub
from mcp_hub.settings import Settings


async def main(database_url: str, user_id: str, server_id: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir), database_url=database_url, oauth_allowed_hosts=["127.0.0.1"]
        )
        async with open_hub(settings) as hub:
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            results = await asyncio.gather(*(resolve(hub, user_id, server_id) for _ in range(count)))
    digests = [hashlib.sha256(result.headers["Authorization"].encode()).hexdigest() for result in results]
    print(json.dumps(digests), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
