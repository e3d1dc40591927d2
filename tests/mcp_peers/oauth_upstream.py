"""An upstream MCP server protected by OAuth, written with the Python SDK's resource-server auth
(`TokenVerifier` + `AuthSettings`): every HTTP request's bearer token is checked at the authorization
server's RFC 7662 introspection endpoint, so a revoked or expired token is refused at once (401 with the
RFC 9728 challenge). Its `whoami` tool echoes whose token it was given.

python -m tests.mcp_peers.oauth_upstream PORT ISSUER INTROSPECTION_CLIENT_ID INTROSPECTION_SECRET [http|sse]
(streamable HTTP at http://127.0.0.1:PORT/mcp, or SSE at http://127.0.0.1:PORT/sse; that URL is also its
RFC 8707 resource)
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx2
import uvicorn
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer


class IntrospectionVerifier:
    """Asks the authorization server whether a token is active, and for whom and which resource."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, resource: str) -> None:
        self._endpoint = f"{issuer}/token/introspection"
        self._auth = (client_id, client_secret)
        self._resource = resource
        self._http = httpx2.AsyncClient(timeout=10, trust_env=False)

    async def verify_token(self, token: str) -> AccessToken | None:
        response = await self._http.post(
            self._endpoint, data={"token": token, "token_type_hint": "access_token"}, auth=self._auth
        )
        if response.status_code != 200:
            return None
        data: dict[str, Any] = response.json()
        if not data.get("active") or data.get("token_type", "Bearer") != "Bearer":
            return None
        audiences = data.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        return AccessToken(
            token=token,
            client_id=str(data.get("client_id")),
            scopes=str(data.get("scope") or "").split(),
            expires_at=data.get("exp"),
            # The SDK refuses the token unless this is the server's own resource (validate_token_resource).
            resource=self._resource if self._resource in audiences else None,
            subject=data.get("sub"),
            claims={"iss": data.get("iss")},
        )


def build(port: int, issuer: str, client_id: str, client_secret: str, transport: str = "http") -> MCPServer:
    resource = f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}"
    server = MCPServer(
        "oauth-upstream",
        token_verifier=IntrospectionVerifier(issuer, client_id, client_secret, resource),
        auth=AuthSettings(
            issuer_url=issuer,  # type: ignore[arg-type]
            resource_server_url=resource,  # type: ignore[arg-type]
            required_scopes=["mcp:tools"],
            validate_token_resource=True,
        ),
    )

    @server.tool()
    def whoami(ctx: Context) -> str:
        """Whose token this request carried, as the authorization server reported it."""
        # Read from the HTTP request that carried this call (not a contextvar): the session's task may
        # have been started by another request.
        user = ctx.request_context.request.scope.get("user")  # type: ignore[union-attr]
        assert isinstance(user, AuthenticatedUser)
        token = user.access_token
        return json.dumps(
            {
                "sub": token.subject,
                "client_id": token.client_id,
                "resource": token.resource,
                "scopes": token.scopes,
            }
        )

    return server


def main(argv: list[str]) -> None:
    port, issuer, client_id, client_secret = int(argv[0]), argv[1], argv[2], argv[3]
    transport = argv[4] if len(argv) > 4 else "http"
    server = build(port, issuer, client_id, client_secret, transport)
    app = server.sse_app() if transport == "sse" else server.streamable_http_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
