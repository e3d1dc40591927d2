"""Settings: environment (`MCP_HUB_*`), an optional YAML file, and defaults that work on one machine."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

DEFAULT_PORT = 4000
# Cursor's OAuth callback: a private-use scheme, so it has to be allowed by name.
DEFAULT_PRIVATE_REDIRECT_URIS = ("cursor://anysphere.cursor-mcp/oauth/callback",)


def _split_commas(value: str) -> list[str]:
    """A comma-separated setting as its non-empty, stripped parts."""
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(BaseSettings):
    """Every knob of the hub. Read from `MCP_HUB_*` variables, then the YAML file named by
    `MCP_HUB_CONFIG_FILE` (if any), then these defaults."""

    model_config = SettingsConfigDict(env_prefix="MCP_HUB_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".mcp-hub"), description="Where the SQLite file and generated keys live"
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///<data_dir>/mcp-hub.db. "
        "For PostgreSQL: postgresql+asyncpg://user:pass@host/db",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    public_base_url: str | None = Field(
        default=None,
        description="Origin clients use to reach the hub (scheme://host[:port], no path); default "
        "http://<host>:<port>. It is the OAuth issuer and the base of the `/mcp` resource: claude.ai and "
        "ChatGPT need it to be a public https URL",
    )
    encryption_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated 'key_id:base64(32 bytes)' list; the first encrypts, all decrypt. "
        "Default: generated once into <data_dir>/encryption.keys",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="Bootstrap admin API key; default: generated at first start and printed once",
    )
    log_level: str = "INFO"
    upstream_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Default total deadline per upstream call"
    )
    max_request_bytes: int = Field(default=4 * 1024 * 1024, gt=0, description="Request body cap")
    upstream_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Deadline to open and initialize an upstream session"
    )
    upstream_list_deadline_seconds: float = Field(
        default=5.0, gt=0, description="How long aggregate listings on /mcp wait for each upstream"
    )
    upstream_idle_seconds: float = Field(
        default=300.0, gt=0, description="Upstream sessions (and stdio processes) unused this long are closed"
    )
    upstream_restart_backoff_max_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait before restarting an upstream that keeps crashing"
    )
    mcp_session_idle_seconds: float = Field(
        default=1800.0, gt=0, description="Downstream MCP sessions idle this long are closed"
    )
    max_mcp_sessions: int = Field(default=10_000, ge=1, description="Open downstream MCP sessions at most")
    mcp_auth_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long an MCP request's authentication is reused (0: never); revocations and "
        "access changes take up to this long to apply on the MCP endpoints",
    )
    rotate_batch_size: int = Field(default=200, ge=1, le=10_000)
    oauth_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated host names (or IP addresses) on private, loopback or internal "
        "networks that the hub may still reach for OAuth discovery, registration and tokens. "
        "Link-local and cloud metadata addresses are refused even when listed",
    )
    oauth_refresh_skew_seconds: int = Field(
        default=60, ge=0, le=3600, description="Refresh OAuth tokens this long before they expire"
    )
    oauth_http_timeout_seconds: float = Field(
        default=15.0, gt=0, le=300, description="Total deadline of each call to an authorization server"
    )

    oauth_access_token_seconds: int = Field(
        default=3600, ge=1, le=86_400, description="Lifetime of access tokens the hub issues to MCP clients"
    )
    oauth_refresh_token_seconds: int = Field(
        default=30 * 86_400,
        ge=3600,
        description="Lifetime of refresh tokens the hub issues (each rotation starts a new one)",
    )
    oauth_code_seconds: int = Field(
        default=120, ge=10, le=600, description="Lifetime of authorization codes the hub issues"
    )
    oauth_client_idle_days: int = Field(
        default=90, ge=1, description="Registered MCP clients unused this long are forgotten (invalid_client)"
    )
    oauth_session_seconds: int = Field(
        default=12 * 3600, ge=300, description="How long a browser stays signed in to the hub's sign-in page"
    )
    oauth_cimd_cache_seconds: int = Field(
        default=300, ge=0, description="How long a fetched client ID metadata document is reused"
    )
    oauth_private_redirect_uris: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_PRIVATE_REDIRECT_URIS),
        description="Comma-separated redirect URIs with private-use schemes (e.g. cursor://...) that MCP "
        "clients may register; https and loopback http redirect URIs need no listing. javascript:, data: "
        "and file: are refused even when listed",
    )
    mcp_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated browser origins (scheme://host[:port]) allowed to call /mcp from a web "
        "page, e.g. a browser-based MCP client. The OAuth metadata, /token, /register and /revoke allow "
        "any origin",
    )
    openapi_max_spec_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest OpenAPI document the hub reads"
    )
    openapi_max_response_bytes: int = Field(
        default=5 * 1024 * 1024,
        gt=0,
        description="Largest REST response an OpenAPI tool call reads; a longer one is cut off and reported",
    )
    openapi_spec_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated directories whose files the admin API may use as spec_location; "
        "file paths elsewhere are refused over HTTP (the CLI, run on the hub's machine, may read any)",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("MCP_HUB_CONFIG_FILE")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @field_validator("database_url")
    @classmethod
    def _async_driver_only(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith(("postgres://", "postgresql://")):
            raise ValueError("use the asyncpg driver: postgresql+asyncpg://user:pass@host/db")
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("oauth_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.lower() for part in _split_commas(value)]
        return value

    # openapi_spec_dirs too: pydantic turns each listed string into a Path.
    @field_validator("oauth_private_redirect_uris", "mcp_cors_origins", "openapi_spec_dirs", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _split_commas(value)
        return value

    @field_validator("public_base_url")
    @classmethod
    def _origin_only(cls, value: str | None) -> str | None:
        # The OAuth issuer is this URL and must have no path (RFC 8414 metadata lives at its root).
        if value is None:
            return value
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("public_base_url must be an http(s) URL such as https://hub.example.com")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("public_base_url must be an origin only (scheme://host[:port]), with no path")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("admin_key")
    @classmethod
    def _admin_key_strong(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 32 <= len(value.get_secret_value()) <= 256:
            raise ValueError("MCP_HUB_ADMIN_KEY must be 32 to 256 characters long")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mcp-hub.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "encryption.keys"


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
