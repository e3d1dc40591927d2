"""What the pool needs to know about one upstream server, detached from the database row."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mcp_hub.crypto import Keyring
from mcp_hub.errors import ConfigError
from mcp_hub.store.models import PER_USER_AUTH_TYPES, McpServer
from mcp_hub.store.servers import read_secrets


@dataclass(frozen=True)
class OpenApiSource:
    """An OpenAPI-backed server's stored spec and the settings that shape its tools and calls."""

    document: dict[str, Any] = field(repr=False)
    spec_location: str
    base_url_override: str | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    # The admin named where BYOK keys go (byok_name): then the spec's security schemes do not decide.
    placement_configured: bool = False

    @cached_property
    def digest(self) -> str:
        material = json.dumps(
            [self.document, self.base_url_override, self.include, self.exclude, self.placement_configured],
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class UpstreamTarget:
    """An upstream server as the connectors see it. `env` and `headers` hold decrypted secrets: the
    object lives in memory only and its repr never shows them."""

    server_id: str
    name: str
    alias: str
    transport: str
    url: str | None
    command: str | None
    args: tuple[str, ...]
    timeout_seconds: float
    # A per-user server (BYOK or OAuth2) presents each caller's own credential; others share the row's.
    per_user: bool = False
    env: dict[str, str] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    # Set for OpenAPI-backed servers: their tools come from this spec, served in-process.
    openapi: OpenApiSource | None = None
    # A server form tested before it is saved: its id is new on every test and exists nowhere else, so
    # nothing keyed by it (a pooled HTTP client) would ever be reused.
    unsaved: bool = False

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever anything that shapes the connection changes, so an edited server gets a new
        pooled session instead of reusing one built from the old settings. Computed once per target
        (targets are immutable): it keys the pool on every call."""
        material = json.dumps(
            [
                self.transport,
                self.url,
                self.command,
                list(self.args),
                sorted(self.env.items()),
                sorted(self.headers.items()),
                self.openapi.digest if self.openapi is not None else None,
            ],
            separators=(",", ":"),
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]


def target_from_row(keyring: Keyring, server: McpServer, default_timeout: float) -> UpstreamTarget:
    secrets = read_secrets(keyring, server)
    return UpstreamTarget(
        server_id=server.id,
        name=server.name,
        alias=server.alias,
        transport=server.transport,
        url=server.url,
        command=server.command,
        args=tuple(server.args or ()),
        timeout_seconds=server.timeout_seconds or default_timeout,
        per_user=server.auth_type in PER_USER_AUTH_TYPES,
        env=dict(secrets.env),
        headers=dict(secrets.headers),
        openapi=_openapi_source(server),
    )


def _openapi_source(server: McpServer) -> OpenApiSource | None:
    if server.transport != "http" or not server.spec_location:
        return None
    if server.spec_document is None:
        raise ConfigError(
            f"server {server.name!r} has no stored OpenAPI document: run `mcp-hub servers refresh {server.name}`"
        )
    return OpenApiSource(
        document=server.spec_document,
        spec_location=server.spec_location,
        base_url_override=server.openapi_base_url,
        include=tuple(server.openapi_include) if server.openapi_include else None,
        exclude=tuple(server.openapi_exclude) if server.openapi_exclude else None,
        placement_configured=bool(server.byok_name),
    )
