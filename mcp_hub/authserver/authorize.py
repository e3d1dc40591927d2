"""An authorization request (RFC 6749 §4.1.1 with PKCE and RFC 8707 `resource`), validated, and the
responses that end it: a redirect carrying `code` or `error`, always with `state` and `iss` (RFC 9207).

Until the client and its redirect URI are established, an error is shown to the person and nothing is
redirected (RFC 6749 §4.1.2.1): an attacker must not be able to bounce a browser to a URI of their
choice. After that, errors go back to the client."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from mcp.server.auth.provider import construct_redirect_uri
from pydantic import AnyUrl, ValidationError

from mcp_hub.authserver import redirects
from mcp_hub.authserver.cimd import ClientDocumentError
from mcp_hub.authserver.clients import HubClient, get_client
from mcp_hub.authserver.metadata import MCP_SCOPE, OFFLINE_SCOPE, canonical_resource, issuer
from mcp_hub.runtime import Hub

MAX_QUERY_CHARS = 8192
PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "resource",
)


class PageError(Exception):
    """An error shown to the person on the hub's page; no redirect."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RedirectError(Exception):
    """An error returned to the client at its (validated) redirect URI."""

    redirect_uri: str
    error: str
    description: str
    state: str | None


@dataclass(frozen=True)
class AuthorizationRequest:
    client: HubClient
    redirect_uri: str
    redirect_uri_explicit: bool
    state: str | None
    code_challenge: str
    scopes: list[str]
    resource: str
    query: str  # the request as received, carried through the sign-in and consent forms

    @property
    def client_name(self) -> str:
        return self.client.client_name or self.client.client_id

    @property
    def redirect_host(self) -> str:
        parts = urlsplit(self.redirect_uri)
        return parts.netloc or f"{parts.scheme}:"


def single_valued(query: str) -> dict[str, str]:
    """The query's parameters; any that appears twice is an error (RFC 6749 §3.1)."""
    if len(query) > MAX_QUERY_CHARS:
        raise PageError("the authorization request is too long")
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in params:
            raise PageError(f"the parameter {key!r} appears more than once")
        params[key] = value
    return params


def _normalized(uri: str) -> str:
    try:
        return str(AnyUrl(uri))
    except ValidationError:
        raise PageError("the redirect_uri is not a valid URL") from None


def _redirect_uri(client: HubClient, requested: str | None) -> str:
    registered = [str(uri) for uri in client.redirect_uris or []]
    if requested is None:
        if len(registered) != 1:
            raise PageError("redirect_uri is required: this client registered several")
        return registered[0]
    uri = _normalized(requested)
    if not redirects.matches(uri, registered):
        raise PageError(
            "the redirect_uri is not one this client registered, so the hub will not send you there"
        )
    return uri


def bound_resource(hub: Hub, requested: str | None) -> str:
    """RFC 8707: the hub issues tokens for its own `/mcp` only (`/mcp/{server}` is part of it)."""
    canonical = canonical_resource(hub.settings)
    if requested is None or requested.rstrip("/") == canonical:
        return canonical
    if requested.startswith(canonical + "/") and "?" not in requested and "#" not in requested:
        return canonical
    raise ValueError(f"this hub issues tokens for {canonical} only")


def _scopes(requested: str | None) -> list[str]:
    # Unknown scopes are ignored rather than refused (RFC 6749 §3.3 lets the server narrow them), so a
    # client asking for e.g. `openid` still connects; the token response states what was granted.
    asked = set((requested or "").split())
    return [MCP_SCOPE, OFFLINE_SCOPE] if OFFLINE_SCOPE in asked else [MCP_SCOPE]


async def parse_request(hub: Hub, query: str) -> AuthorizationRequest:
    params = single_valued(query)
    client_id = params.get("client_id")
    if not client_id:
        raise PageError("the request has no client_id")
    try:
        client = await get_client(hub, client_id, fetch_document=True)
    except ClientDocumentError as exc:
        raise PageError(f"the client could not be verified: {exc.message}") from None
    if client is None:
        raise PageError("unknown client (invalid_client): it may have been deleted or expired; reconnect it")
    redirect_uri = _redirect_uri(client, params.get("redirect_uri"))
    state = params.get("state")

    def fail(error: str, description: str) -> RedirectError:
        return RedirectError(redirect_uri=redirect_uri, error=error, description=description, state=state)

    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "response_type must be code")
    challenge = params.get("code_challenge", "")
    if params.get("code_challenge_method") != "S256":
        raise fail("invalid_request", "PKCE with code_challenge_method S256 is required")
    if not 43 <= len(challenge) <= 128:
        raise fail("invalid_request", "code_challenge must be an S256 challenge (43 to 128 characters)")
    try:
        resource = bound_resource(hub, params.get("resource"))
    except ValueError as exc:
        raise fail("invalid_target", str(exc)) from None
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        redirect_uri_explicit="redirect_uri" in params,
        state=state,
        code_challenge=challenge,
        scopes=_scopes(params.get("scope")),
        resource=resource,
        query=urlencode([(key, params[key]) for key in PARAMS if key in params]),
    )


def success_location(hub: Hub, request: AuthorizationRequest, code: str) -> str:
    return construct_redirect_uri(
        request.redirect_uri, code=code, state=request.state, iss=issuer(hub.settings)
    )


def error_location(hub: Hub, error: RedirectError) -> str:
    return construct_redirect_uri(
        error.redirect_uri,
        error=error.error,
        error_description=error.description,
        state=error.state,
        iss=issuer(hub.settings),
    )


def redirect_origin(uri: str) -> str:
    """For the page's CSP `form-action`: browsers apply it to the redirect that follows a form post."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
