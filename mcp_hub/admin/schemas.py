"""Boundary models of the admin API (also used by the CLI and `servers apply`, so that a server made any
of those ways ends as the same row). Secrets are write-only: inputs accept them, outputs only say
whether they are set."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from mcp_hub.store.models import Access, AuthType, ByokMode

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ALIAS_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
MAX_LIST = 500
MAX_TEXT = 4096
BYOK_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,255}$"

OPENAPI_TRANSPORT_MESSAGE = (
    "transport 'openapi' is only a label in the UI: send transport 'http' with spec_location set to "
    "the OpenAPI document's URL or file path"
)


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


HttpUrl = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]
ShortText = Annotated[str, Field(min_length=1, max_length=512)]
SecretMap = dict[
    Annotated[str, Field(min_length=1, max_length=256)], Annotated[str, Field(max_length=MAX_TEXT)]
]
TransportName = Literal["http", "sse", "stdio"]
OperationFilter = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=MAX_LIST)
]
OPENAPI_FIELDS = ("openapi_base_url", "openapi_include", "openapi_exclude")


def _transport(value: Any) -> Any:
    if isinstance(value, str) and value.lower() == "openapi":
        raise ValueError(OPENAPI_TRANSPORT_MESSAGE)
    return value


def default_alias(name: str) -> str:
    """Tool-name prefix on /mcp, derived from the server name."""
    return re.sub(r"[^a-z0-9_-]", "_", name.lower())[:32]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ServerFields(_Strict):
    """Everything a server can be given, all optional (what PATCH takes)."""

    alias: Annotated[str, Field(pattern=ALIAS_PATTERN)] | None = None
    description: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    transport: TransportName | None = None
    url: HttpUrl | None = None
    spec_location: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    command: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    args: Annotated[list[Annotated[str, Field(max_length=MAX_TEXT)]], Field(max_length=MAX_LIST)] | None = (
        None
    )
    env: Annotated[SecretMap, Field(max_length=MAX_LIST)] | None = Field(
        default=None, description="stdio environment (write-only; stored encrypted)"
    )
    headers: Annotated[SecretMap, Field(max_length=MAX_LIST)] | None = Field(
        default=None, description="static headers sent upstream (write-only; stored encrypted)"
    )
    auth_type: AuthType | None = None
    authorization_url: HttpUrl | None = None
    token_url: HttpUrl | None = None
    registration_url: HttpUrl | None = None
    # A plain string, not HttpUrl: RFC 9207 compares `iss` exactly, and HttpUrl would add a trailing "/".
    issuer: Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")] | None = Field(
        default=None,
        description="the authorization server's issuer, checked against `iss` on the callback (RFC 9207); "
        "the discover action returns it",
    )
    client_id: ShortText | None = None
    client_secret: Annotated[SecretStr, Field(max_length=MAX_TEXT)] | None = Field(
        default=None, description="write-only; stored encrypted"
    )
    scopes: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=MAX_LIST)]
        | None
    ) = None
    allowed_tools: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=MAX_LIST)]
        | None
    ) = None
    access: Access | None = None
    allowed_users: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=MAX_LIST)] | None
    ) = Field(default=None, description="user ids, for access = listed_users")
    enabled: bool | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] | None = None
    byok_mode: ByokMode | None = Field(
        default=None, description="how a user's BYOK key reaches the upstream: header (default), query, env"
    )
    byok_name: Annotated[str, Field(pattern=BYOK_NAME_PATTERN)] | None = Field(
        default=None,
        description="header name (default Authorization), query parameter or env variable for the key",
    )
    byok_template: Annotated[str, Field(min_length=5, max_length=512)] | None = Field(
        default=None, description="header value with {key} where the key goes; default 'Bearer {key}'"
    )
    openapi_base_url: HttpUrl | None = Field(
        default=None, description="OpenAPI servers: where calls go, instead of the spec's `servers` URL"
    )
    openapi_include: OperationFilter | None = Field(
        default=None, description="OpenAPI servers: only operations with one of these tags or operationIds"
    )
    openapi_exclude: OperationFilter | None = Field(
        default=None,
        description="OpenAPI servers: leave out operations with one of these tags or operationIds",
    )

    _transport_check = field_validator("transport", mode="before")(_transport)

    @field_validator("byok_template")
    @classmethod
    def _template_has_key(cls, value: str | None) -> str | None:
        if value is not None and ("{key}" not in value or any(ord(ch) < 32 for ch in value)):
            raise ValueError("byok_template must contain {key} and no control characters")
        return value


class ServerCreate(ServerFields):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
    transport: TransportName

    @model_validator(mode="after")
    def _complete(self) -> ServerCreate:
        check_server_shape(
            transport=self.transport,
            url=self.url,
            spec_location=self.spec_location,
            command=self.command,
            openapi_settings=any(getattr(self, name) for name in OPENAPI_FIELDS),
        )
        return self


class ServerUpdate(ServerFields):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)] | None = None


def check_server_shape(
    *,
    transport: str,
    url: str | None,
    spec_location: str | None,
    command: str | None,
    openapi_settings: bool = False,
) -> None:
    """A server must be reachable the way its transport says."""
    if openapi_settings and not (transport == "http" and spec_location):
        raise ValueError("openapi_base_url, openapi_include and openapi_exclude need an OpenAPI server")
    if transport == "stdio":
        if not command:
            raise ValueError("a stdio server needs a command")
        if url or spec_location:
            raise ValueError("a stdio server takes a command, not a url or spec_location")
    elif transport == "sse":
        if not url:
            raise ValueError("an sse server needs a url")
        if command or spec_location:
            raise ValueError("an sse server takes a url only")
    else:
        if not url and not spec_location:
            raise ValueError(
                "an http server needs a url (MCP endpoint) or a spec_location (OpenAPI document)"
            )
        if command:
            raise ValueError("an http server takes a url, not a command")
        if url and spec_location:
            raise ValueError(
                "an OpenAPI server (spec_location) takes no url: its calls go to the spec's server URL, "
                "or to openapi_base_url"
            )


class ServerOut(BaseModel):
    id: str
    name: str
    alias: str
    description: str | None
    transport: str
    url: str | None
    spec_location: str | None
    command: str | None
    args: list[str]
    env_names: list[str] = Field(
        description="names of the stdio env variables set (values are never returned)"
    )
    header_names: list[str] = Field(description="names of the static headers set (values are never returned)")
    auth_type: str
    authorization_url: str | None
    token_url: str | None
    registration_url: str | None
    client_id: str | None
    client_secret_set: bool
    scopes: list[str]
    allowed_tools: list[str] | None
    access: str
    allowed_users: list[str]
    enabled: bool
    timeout_seconds: float | None
    byok_mode: str | None = None
    byok_name: str | None = None
    byok_template: str | None = None
    issuer: str | None = Field(
        default=None, description="authorization server issuer (configured or discovered)"
    )
    resource_metadata_url: str | None = None
    oauth_discovered_at: datetime | None = Field(default=None, description="when OAuth discovery last ran")
    openapi_base_url: str | None = None
    openapi_include: list[str] | None = None
    openapi_exclude: list[str] | None = None
    spec_fetched_at: datetime | None = Field(
        default=None, description="when the OpenAPI document was last read and validated"
    )
    created_at: datetime
    updated_at: datetime


class UserCreate(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None


class UserUpdate(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)] | None = None
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    disabled: bool | None = None


class UserOut(BaseModel):
    id: str
    name: str
    email: str | None
    disabled: bool
    created_at: datetime
    updated_at: datetime


class KeyCreate(_Strict):
    user_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    is_admin: bool = False
    allowed_servers: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=MAX_LIST)] | None
    ) = Field(default=None, description="server names this key may use; absent means all the user may use")
    allowed_tools: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=MAX_LIST)]
        | None
    ) = None


class KeyOut(BaseModel):
    id: str
    user_id: str
    name: str | None
    prefix: str
    is_admin: bool
    allowed_servers: list[str] | None
    allowed_tools: list[str] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="the API key itself; shown only in this response")


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None = Field(
        description="pass as ?cursor= to get the next page; null on the last page"
    )
