"""The hub's tables as SQLAlchemy 2 typed models. `schema.prisma` describes the same tables; a test keeps
the two in step."""

from __future__ import annotations

import enum
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    """A UUIDv7 (RFC 9562): random, but ordered by creation time, so keyset pagination by id follows
    creation order and inserts stay index-friendly."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return str(uuid.UUID(int=_uuid7_int(millis, rand)))


def _uuid7_int(millis: int, rand: int) -> int:
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    return ((millis & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Transport(enum.StrEnum):
    http = "http"
    sse = "sse"
    stdio = "stdio"


class AuthType(enum.StrEnum):
    none = "none"
    static = "static"
    byok = "byok"
    oauth2 = "oauth2"


# Auth types under which each user presents their own credential (never a shared one).
PER_USER_AUTH_TYPES = frozenset({AuthType.byok.value, AuthType.oauth2.value})


class Access(enum.StrEnum):
    """Who may use a server."""

    public = "public"  # anyone, even without a hub key
    all_users = "all_users"
    listed_users = "listed_users"


class CredentialType(enum.StrEnum):
    oauth2 = "oauth2"
    byok = "byok"


class CredentialStatus(enum.StrEnum):
    active = "active"
    needs_reconnect = "needs_reconnect"


class ByokMode(enum.StrEnum):
    """How a user's BYOK key reaches the upstream."""

    header = "header"  # `byok_name: byok_template` with {key} replaced
    query = "query"  # `?byok_name=key` on the upstream URL
    env = "env"  # `byok_name=key` in a stdio upstream's environment (one process per user)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    # The key itself is never stored: only its SHA-256 (the key has 256 bits of entropy, so a slow hash
    # adds nothing) and a short prefix that people can recognise and revoke by.
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    allowed_servers: Mapped[list[str] | None] = mapped_column(JSON)
    allowed_tools: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class McpServer(TimestampMixin, Base):
    __tablename__ = "mcp_servers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    alias: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    transport: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(2048))
    spec_location: Mapped[str | None] = mapped_column(String(2048))
    command: Mapped[str | None] = mapped_column(String(1024))
    args: Mapped[list[str]] = mapped_column(JSON, default=list)
    # stdio env and static headers often carry secrets: both are encrypted as one JSON object each.
    env_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    auth_type: Mapped[str] = mapped_column(String(16), default=AuthType.none.value)
    authorization_url: Mapped[str | None] = mapped_column(String(2048))
    token_url: Mapped[str | None] = mapped_column(String(2048))
    registration_url: Mapped[str | None] = mapped_column(String(2048))
    client_id: Mapped[str | None] = mapped_column(String(512))
    client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_tools: Mapped[list[str] | None] = mapped_column(JSON)
    access: Mapped[str] = mapped_column(String(16), default=Access.all_users.value)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    # BYOK delivery; NULL means the defaults (header `Authorization: Bearer {key}`).
    byok_mode: Mapped[str | None] = mapped_column(String(16))
    byok_name: Mapped[str | None] = mapped_column(String(256))
    byok_template: Mapped[str | None] = mapped_column(String(512))
    # OAuth discovery results, stored so discovery runs once per server (and never when an admin set
    # authorization_url). `oauth_metadata` holds the few authorization-server facts the client relies on
    # (PKCE methods, RFC 9207 support, the RFC 8707 resource, the registered client's auth method).
    resource_metadata_url: Mapped[str | None] = mapped_column(String(2048))
    issuer: Mapped[str | None] = mapped_column(String(2048))
    oauth_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    oauth_discovered_at: Mapped[datetime | None] = mapped_column()
    # OpenAPI-backed servers (transport http + spec_location): the validated document is stored so a
    # connection never refetches it (and a spec that later breaks upstream keeps serving the last good
    # one until an admin refreshes); the base URL override and the tag/operationId filters shape the tools.
    spec_document: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    spec_fetched_at: Mapped[datetime | None] = mapped_column()
    openapi_base_url: Mapped[str | None] = mapped_column(String(2048))
    openapi_include: Mapped[list[str] | None] = mapped_column(JSON)
    openapi_exclude: Mapped[list[str] | None] = mapped_column(JSON)
    # Key that encrypted this row's secrets (all of them are re-wrapped together on rotation).
    key_id: Mapped[str | None] = mapped_column(String(64))


class McpServerUser(Base):
    """The users a `listed_users` server is shared with."""

    __tablename__ = "mcp_server_users"
    __table_args__ = (Index(None, "user_id"),)

    server_id: Mapped[str] = mapped_column(ForeignKey("mcp_servers.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class McpUserCredential(TimestampMixin, Base):
    """The one typed credential table: a user's OAuth2 tokens or BYOK key for one server."""

    __tablename__ = "mcp_user_credentials"
    __table_args__ = (
        UniqueConstraint("user_id", "server_id"),
        Index(None, "server_id"),
        # Finds soon-expiring rows of a type for proactive refresh.
        Index(None, "type", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    server_id: Mapped[str] = mapped_column(ForeignKey("mcp_servers.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    payload_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(32), default=CredentialStatus.active.value)


class OAuthState(Base):
    """One started OAuth authorize flow. Kept in the database (not in memory) so the callback may land on
    any hub instance; single-use (`used_at`) and short-lived (`expires_at`). Only hashes of the `state`
    value and of the browser cookie are stored, so a database reader cannot complete someone's flow."""

    __tablename__ = "oauth_states"
    __table_args__ = (Index(None, "user_id"), Index(None, "server_id"), Index(None, "expires_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    server_id: Mapped[str] = mapped_column(ForeignKey("mcp_servers.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(512))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    redirect_after: Mapped[str] = mapped_column(String(2048))
    resource: Mapped[str | None] = mapped_column(String(2048))
    # The person asked to replace a BYOK key of theirs on this server with the OAuth tokens.
    replace_existing: Mapped[bool] = mapped_column(Boolean, default=False)
    code_verifier_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "created_at"), Index(None, "actor_user_id", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_user_id: Mapped[str | None] = mapped_column(String(36))
    actor_key_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# --- the hub as an OAuth authorization server for MCP clients (mcp_hub/authserver) ---------------------


class UserPassword(Base):
    """A user's sign-in password for the hub's own authorization pages (scrypt; never the password)."""

    __tablename__ = "user_passwords"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OAuthClient(Base):
    """An MCP client known to the hub's authorization server: registered dynamically (RFC 7591, `kind`
    dcr) or described by a client ID metadata document (`kind` cimd, `client_id` is the document's URL,
    `metadata` the cached document). Only the SHA-256 of a client secret is kept."""

    __tablename__ = "oauth_clients"
    __table_args__ = (Index(None, "last_used_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(2048), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    client_secret_hash: Mapped[str | None] = mapped_column(String(64))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    fetched_at: Mapped[datetime | None] = mapped_column()


class OAuthCode(Base):
    """An authorization code: single-use (`used_at`), short-lived; its id is the grant id that every
    token issued from it carries, so replaying the code can revoke them all."""

    __tablename__ = "oauth_codes"
    __table_args__ = (Index(None, "client_ref"), Index(None, "user_id"), Index(None, "expires_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_ref: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    redirect_uri_explicit: Mapped[bool] = mapped_column(Boolean)
    code_challenge: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    resource: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class OAuthToken(Base):
    """An access or refresh token the hub issued (`kind`), by SHA-256 only. `grant_id` ties together
    every token of one authorization. A refresh token's `parent_id` is the token it replaced; the parent
    stays valid until this one is first used (`used_at`), then it is `superseded_at`."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        Index(None, "grant_id"),
        Index(None, "client_ref"),
        Index(None, "user_id"),
        Index(None, "parent_id"),
        Index(None, "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    grant_id: Mapped[str] = mapped_column(String(36))
    client_ref: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    resource: Mapped[str] = mapped_column(String(2048))
    parent_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    superseded_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class OAuthConsent(TimestampMixin, Base):
    """A user's remembered approval of one client, for the scopes listed."""

    __tablename__ = "oauth_consents"
    __table_args__ = (UniqueConstraint("user_id", "client_ref"), Index(None, "client_ref"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_ref: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON)


class OAuthBrowserSession(Base):
    """A browser signed in to the hub's authorization pages (the cookie's SHA-256 only)."""

    __tablename__ = "oauth_browser_sessions"
    __table_args__ = (Index(None, "user_id"), Index(None, "expires_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
