"""The health the admin's servers page shows follows what the gateway itself saw: a tools/list through
/mcp records the connect and the tool count; an upstream that cannot be reached is recorded as failed
with its reason (mcp_hub/upstream/health.py, fed by the pool and the gateway)."""

from __future__ import annotations

from tests.gateway.clients import shttp_session
from tests.gateway.conftest import RunningHub
from tests.mcp_peers.procs import free_port


async def _health(hub: RunningHub, *server_ids: str) -> dict[str, dict[str, object]]:
    response = await hub.admin.get("/v1/server-health", params=[("server_id", i) for i in server_ids])
    assert response.status_code == 200, response.text
    return {item["server_id"]: item for item in response.json()["items"]}


async def test_listing_through_mcp_records_connects_and_tool_counts(
    hub_server: RunningHub, echo_http: str
) -> None:
    echo = await hub_server.add_server("echo", transport="http", url=echo_http)
    dead = await hub_server.add_server("dead", transport="http", url=f"http://127.0.0.1:{free_port()}/mcp")
    before = await _health(hub_server, echo["id"], dead["id"])
    assert before[echo["id"]]["state"] == "unknown" and before[dead["id"]]["state"] == "unknown"

    user = await hub_server.add_user("alice")
    key = await hub_server.add_key(user)
    async with shttp_session(f"{hub_server.url}/mcp", key) as session:
        tools = [tool.name for tool in (await session.list_tools()).tools]
    echo_tools = [name for name in tools if name.startswith("echo__")]
    assert echo_tools and not any(name.startswith("dead__") for name in tools)  # fail open

    after = await _health(hub_server, echo["id"], dead["id"])
    assert after[echo["id"]]["state"] == "ok"
    assert after[echo["id"]]["tool_count"] == len(echo_tools)
    assert after[dead["id"]]["state"] == "failed"
    assert "cannot connect to upstream 'dead'" in str(after[dead["id"]]["error"])
