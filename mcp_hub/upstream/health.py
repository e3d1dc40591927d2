"""What this hub process last saw of each upstream: whether its last connect worked, and how many tools
it listed. Kept in memory (it describes this process's own sessions); the admin servers page shows it and
"test connection" refreshes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mcp_hub.store.models import utcnow

# Servers are few and admin-managed; the bound keeps a stream of unsaved-form tests from growing the map.
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class ServerHealth:
    ok: bool
    checked_at: datetime
    # A sentence for the admin, never a secret (see upstream.pool: errors carry no credential).
    error: str | None = None
    tool_count: int | None = None


class HealthBook:
    def __init__(self) -> None:
        self._entries: dict[str, ServerHealth] = {}

    def _put(self, server_id: str, entry: ServerHealth) -> None:
        if server_id not in self._entries and len(self._entries) >= MAX_ENTRIES:
            # Oldest first: dicts keep insertion order.
            self._entries.pop(next(iter(self._entries)))
        self._entries[server_id] = entry

    def connected(self, server_id: str) -> None:
        previous = self._entries.get(server_id)
        tools = previous.tool_count if previous is not None else None
        self._put(server_id, ServerHealth(ok=True, checked_at=utcnow(), tool_count=tools))

    def failed(self, server_id: str, error: str) -> None:
        previous = self._entries.get(server_id)
        tools = previous.tool_count if previous is not None else None
        self._put(server_id, ServerHealth(ok=False, checked_at=utcnow(), error=error, tool_count=tools))

    def listed_tools(self, server_id: str, count: int) -> None:
        self._put(server_id, ServerHealth(ok=True, checked_at=utcnow(), tool_count=count))

    def forget(self, server_id: str) -> None:
        self._entries.pop(server_id, None)

    def get(self, server_id: str) -> ServerHealth | None:
        return self._entries.get(server_id)
