"""The hub's storage behind the SDK's OAuth handlers (registration, token, revocation): the SDK parses
and validates the requests (PKCE S256 check, code expiry, redirect URI equality, scope narrowing);
this provider stores and looks up clients, codes and tokens through `clients` and `tokens`."""

from __future__ import annotations

from typing import Any

from mcp.server.auth.provider import AuthorizationParams, AuthorizeError, TokenError
from mcp.shared.auth import OAuthClientInformationFull
from mcp.shared.auth import OAuthToken as OAuthTokenResponse

from mcp_hub.authserver import clients, tokens
from mcp_hub.authserver.clients import HubClient
from mcp_hub.authserver.tokens import HubAuthorizationCode, HubRefreshToken
from mcp_hub.runtime import Hub


def _ref(client: OAuthClientInformationFull) -> str:
    if not isinstance(client, HubClient):
        raise TypeError("expected a client loaded by the hub")
    return client.ref


class HubAuthProvider:
    """Implements mcp.server.auth.provider.OAuthAuthorizationServerProvider (structurally)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return await clients.get_client(self.hub, client_id, fetch_document=False)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        await clients.register_client(self.hub, client_info)

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        # The hub serves /authorize itself (sign-in, consent, `iss`, loopback ports): see pages.py.
        raise AuthorizeError("server_error", "not used")

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> HubAuthorizationCode | None:
        code = await tokens.load_code(self.hub, _ref(client), authorization_code)
        return code.model_copy(update={"client_id": client.client_id}) if code else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: HubAuthorizationCode
    ) -> OAuthTokenResponse:
        return await tokens.exchange_code(self.hub, authorization_code)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> HubRefreshToken | None:
        token = await tokens.load_refresh_token(self.hub, _ref(client), refresh_token)
        return token.model_copy(update={"client_id": client.client_id}) if token else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: HubRefreshToken, scopes: list[str]
    ) -> OAuthTokenResponse:
        return await tokens.rotate_refresh_token(self.hub, refresh_token, scopes)

    async def load_access_token(self, token: str) -> None:
        # Not used: the gateway checks access tokens itself (auth/context.py, with the user's access
        # rules), and `/revoke` is the hub's own handler (routes.py).
        return None

    async def revoke_token(self, token: HubRefreshToken) -> None:
        await tokens.revoke_grant(self.hub, token.grant_id)

    async def exchange_identity_assertion(self, client: Any, params: Any) -> OAuthTokenResponse:
        raise TokenError("unsupported_grant_type", "the JWT bearer grant is not supported")
