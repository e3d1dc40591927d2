"""The authorization server's HTTP surface: metadata (RFC 8414 and its OpenID twin, RFC 9728), `/register`
and `/token` (the SDK's handlers over the hub's provider), `/revoke`, the `/authorize` pages, and CORS:
any origin on the metadata and the client endpoints (they carry no cookies), the operator's list on
`/mcp`."""

from __future__ import annotations

from urllib.parse import urlencode

from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError as ClientAuthError
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_hub.auth.deps import get_hub
from mcp_hub.authserver.authorize import bound_resource
from mcp_hub.authserver.clients import HubClient, HubClientAuthenticator, basic_credentials
from mcp_hub.authserver.metadata import (
    AS_METADATA_PATHS,
    PRM_PATH,
    PRM_ROOT_PATH,
    REGISTER_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    authorization_server_metadata,
    protected_resource_metadata,
)
from mcp_hub.authserver.provider import HubAuthProvider
from mcp_hub.authserver.tokens import revoke_presented

# Anyone may register and each registration is stored: real client metadata is well under 2 KB, and the
# hub-wide request cap (MCP_HUB_MAX_REQUEST_BYTES, 4 MB) would let each one store far more.
MAX_REGISTRATION_BYTES = 16 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CLIENT_HEADERS = ["Authorization", "Content-Type", "MCP-Protocol-Version"]
MCP_HEADERS = [*CLIENT_HEADERS, "Mcp-Session-Id", "Last-Event-ID"]
MCP_EXPOSED = ["Mcp-Session-Id", "WWW-Authenticate", "MCP-Protocol-Version"]


def _json(model: OAuthMetadata | ProtectedResourceMetadata) -> JSONResponse:
    return JSONResponse(
        model.model_dump(mode="json", exclude_none=True), headers={"Cache-Control": "public, max-age=300"}
    )


async def as_metadata(request: Request) -> Response:
    return _json(authorization_server_metadata(get_hub(request).settings))


async def resource_metadata(request: Request) -> Response:
    return _json(protected_resource_metadata(get_hub(request).settings))


async def register(request: Request) -> Response:
    """RFC 7591, open to anyone (public clients need no prior arrangement). Scopes are not checked
    here: the authorize step grants what the hub offers."""
    if len(await request.body()) > MAX_REGISTRATION_BYTES:  # the handler reads the same cached body
        return _oauth_error("invalid_client_metadata", "client metadata over 16 KB")
    handler = RegistrationHandler(HubAuthProvider(get_hub(request)), ClientRegistrationOptions(enabled=True))
    response = await handler.handle(request)
    response.headers.update(NO_STORE)
    return response


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=NO_STORE
    )


async def token(request: Request) -> Response:
    """The SDK's token handler (PKCE S256 check, code expiry, redirect URI, scope narrowing), after the
    RFC 8707 check it does not make: a `resource` other than the hub's `/mcp` is `invalid_target`."""
    hub = get_hub(request)
    await request.body()  # cached first, so the form below and a replayed copy can both be read
    form = await request.form()  # cached on the request: the handler reads the same form
    resource = form.get("resource")
    if isinstance(resource, str):
        try:
            bound_resource(hub, resource)
        except ValueError as exc:
            return _oauth_error("invalid_target", str(exc))
    handler = TokenHandler(HubAuthProvider(hub), HubClientAuthenticator(hub))
    response: Response = await handler.handle(await _with_basic_client_id(request))
    return response


async def _with_basic_client_id(request: Request) -> Request:
    """The request, with the HTTP Basic client id copied into the form when the form has none: RFC 6749
    §2.3.1 carries it in the header only, but the SDK's token request model requires the form field."""
    form = await request.form()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if form.get("client_id") or content_type != "application/x-www-form-urlencoded":
        return request
    try:
        basic = basic_credentials(request.headers.get("authorization", ""))
    except ClientAuthError:
        return request  # the authenticator answers a malformed header
    if basic is None:
        return request
    original = await request.body()
    body = original + (b"&" if original else b"") + urlencode({"client_id": basic[0]}).encode()
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-length"]
    scope = {**request.scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def revoke(request: Request) -> Response:
    """RFC 7009. The SDK's handler requires a `client_secret` field even from public clients, so the
    hub answers this one itself."""
    hub = get_hub(request)
    try:
        client = await HubClientAuthenticator(hub).authenticate_request(request)
    except ClientAuthError as exc:
        return _oauth_error("invalid_client", exc.message, status=401)
    form = await request.form()
    presented = form.get("token")
    if not isinstance(presented, str) or not presented:
        return _oauth_error("invalid_request", "token is required")
    if not isinstance(client, HubClient):
        raise TypeError("the hub's authenticator returns hub clients only")
    await revoke_presented(hub, client.ref, presented)
    return Response(status_code=200, headers=NO_STORE)


def _open_cors(app: ASGIApp, methods: list[str]) -> ASGIApp:
    return CORSMiddleware(app, allow_origins=["*"], allow_methods=methods, allow_headers=CLIENT_HEADERS)


def authserver_routes() -> list[Route]:
    get = ["GET", "OPTIONS"]
    post = ["POST", "OPTIONS"]
    routes = [
        Route(path, endpoint=_open_cors(request_response(as_metadata), get), methods=get)
        for path in AS_METADATA_PATHS
    ]
    routes += [
        Route(path, endpoint=_open_cors(request_response(resource_metadata), get), methods=get)
        for path in (PRM_PATH, PRM_ROOT_PATH)
    ]
    routes += [
        Route(REGISTER_PATH, endpoint=_open_cors(request_response(register), post), methods=post),
        Route(TOKEN_PATH, endpoint=_open_cors(request_response(token), post), methods=post),
        Route(REVOKE_PATH, endpoint=_open_cors(request_response(revoke), post), methods=post),
    ]
    return routes


class McpCors:
    """CORS for browser-based MCP clients on `/mcp` and `/sse`, for the origins the operator listed
    (MCP_HUB_MCP_CORS_ORIGINS); a preflight is answered before authentication, as browsers send it
    without credentials. Other paths pass straight through."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=MCP_HEADERS,
            expose_headers=MCP_EXPOSED,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == "/mcp" or path.startswith(("/mcp/", "/sse"))):
            await self.cors(scope, receive, send)
            return
        await self.app(scope, receive, send)
