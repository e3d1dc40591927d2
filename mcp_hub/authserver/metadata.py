"""What the hub publishes about itself as an authorization server and as a protected resource: the issuer
and resource URLs, RFC 8414 metadata (also at the OpenID path), RFC 9728 protected-resource metadata, and
the `WWW-Authenticate` challenge of a 401 on the MCP endpoints."""

from __future__ import annotations

from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata

from mcp_hub.settings import Settings

AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"  # noqa: S105 - a URL path
REGISTER_PATH = "/register"
REVOKE_PATH = "/revoke"
AS_METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
PRM_ROOT_PATH = "/.well-known/oauth-protected-resource"
RESOURCE_PATH = "/mcp"
PRM_PATH = PRM_ROOT_PATH + RESOURCE_PATH

# One scope: act as the signed-in user on the MCP endpoints. `offline_access` is accepted so clients
# that ask for it (to get a refresh token) are not refused; refresh tokens are issued either way.
MCP_SCOPE = "mcp"
OFFLINE_SCOPE = "offline_access"
SUPPORTED_SCOPES = (MCP_SCOPE, OFFLINE_SCOPE)
TOKEN_AUTH_METHODS = ["none", "client_secret_post", "client_secret_basic"]


def issuer(settings: Settings) -> str:
    """The hub's public origin with no path and no trailing slash: compared character for character by
    clients against the metadata's `issuer` and the `iss` authorization-response parameter."""
    return settings.base_url


def canonical_resource(settings: Settings) -> str:
    """The one resource every token is bound to: `/mcp` (`/mcp/{server}` and `/sse` are views of it)."""
    return settings.base_url + RESOURCE_PATH


def resource_metadata_url(settings: Settings) -> str:
    return settings.base_url + PRM_PATH


def www_authenticate(settings: Settings, *, error: str | None = None) -> str:
    """The challenge of a 401 on the MCP endpoints (RFC 9728 §5.1, RFC 6750 §3)."""
    parts = [f'resource_metadata="{resource_metadata_url(settings)}"', f'scope="{MCP_SCOPE}"']
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ", ".join(parts)


def authorization_server_metadata(settings: Settings) -> OAuthMetadata:
    base = issuer(settings)
    # Validated from plain strings so the model's url_preserve_empty_path applies: the issuer must not
    # gain a trailing slash (clients compare it exactly).
    return OAuthMetadata.model_validate(
        {
            "issuer": base,
            "authorization_endpoint": base + AUTHORIZE_PATH,
            "token_endpoint": base + TOKEN_PATH,
            "registration_endpoint": base + REGISTER_PATH,
            "revocation_endpoint": base + REVOKE_PATH,
            "revocation_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "scopes_supported": list(SUPPORTED_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "client_id_metadata_document_supported": True,
            "authorization_response_iss_parameter_supported": True,
        }
    )


def protected_resource_metadata(settings: Settings) -> ProtectedResourceMetadata:
    return ProtectedResourceMetadata.model_validate(
        {
            "resource": canonical_resource(settings),
            "authorization_servers": [issuer(settings)],
            "scopes_supported": [MCP_SCOPE],
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp-hub",
        }
    )
