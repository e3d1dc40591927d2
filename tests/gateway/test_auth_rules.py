"""The access rules of AuthContext on every branch: allowed, resolved but not allowed, not resolved."""

from __future__ import annotations

from mcp_hub.auth.context import AuthContext, server_visible_to
from mcp_hub.auth.keys import Caller
from mcp_hub.store.models import McpServer


def server(name: str, access: str, allowed_tools: list[str] | None = None) -> McpServer:
    return McpServer(id=f"id-{name}", name=name, alias=name, access=access, allowed_tools=allowed_tools)


def caller(allowed_servers: list[str] | None = None, allowed_tools: list[str] | None = None) -> Caller:
    return Caller(
        user_id="u1",
        user_name="alice",
        key_id="k1",
        is_admin=False,
        allowed_servers=frozenset(allowed_servers) if allowed_servers is not None else None,
        allowed_tools=frozenset(allowed_tools) if allowed_tools is not None else None,
    )


def test_public_servers_need_no_key() -> None:
    assert server_visible_to(server("p", "public"), None, set())
    assert not server_visible_to(server("a", "all_users"), None, set())
    assert not server_visible_to(server("l", "listed_users"), None, {"id-l"})


def test_all_users_and_listed_users() -> None:
    assert server_visible_to(server("a", "all_users"), caller(), set())
    assert server_visible_to(server("l", "listed_users"), caller(), {"id-l"})
    assert not server_visible_to(server("l", "listed_users"), caller(), {"id-other"})


def test_key_server_allowlist_narrows_every_access_mode() -> None:
    key = caller(allowed_servers=["a"])
    assert server_visible_to(server("a", "all_users"), key, set())
    assert not server_visible_to(server("b", "all_users"), key, set())
    assert not server_visible_to(server("p", "public"), key, set())
    assert not server_visible_to(server("l", "listed_users"), key, {"id-l"})


def test_tool_allowlists_of_server_and_key() -> None:
    limited = server("s", "all_users", allowed_tools=["echo", "add"])
    anything = AuthContext(caller=caller())
    assert anything.tool_allowed(limited, "echo") and not anything.tool_allowed(limited, "delete")
    by_name = AuthContext(caller=caller(allowed_tools=["echo"]))
    assert by_name.tool_allowed(limited, "echo") and not by_name.tool_allowed(limited, "add")
    qualified = AuthContext(caller=caller(allowed_tools=["s.add"]))
    assert qualified.tool_allowed(limited, "add") and not qualified.tool_allowed(limited, "echo")
    assert not qualified.tool_allowed(server("t", "all_users"), "add")
    anonymous = AuthContext(caller=None)
    assert anonymous.tool_allowed(server("p", "public"), "anything")
