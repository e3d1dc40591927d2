"""Where a user's credential goes on an OpenAPI call, per the operation's security requirement."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from mcp_hub.openapi.auth import place_credential
from mcp_hub.openapi.tools import build_tools
from mcp_hub.upstream.credentials import ResolvedCredential

SCHEMES: dict[str, Any] = {
    "headerKey": {"type": "apiKey", "in": "header", "name": "X-Key"},
    "queryKey": {"type": "apiKey", "in": "query", "name": "api_key"},
    "cookieKey": {"type": "apiKey", "in": "cookie", "name": "token"},
    "bearer": {"type": "http", "scheme": "bearer"},
    "basic": {"type": "http", "scheme": "basic"},
    "oauth": {"type": "oauth2", "flows": {}},
}


def tool(*requirements: dict[str, list[str]]) -> Any:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/x": {"get": {"operationId": "x", "security": list(requirements), "responses": {}}}},
    }
    return build_tools(document, include=None, exclude=None)[0]


BYOK = ResolvedCredential(
    identity="user:1",
    headers={"Authorization": "Bearer k-123", "X-Shared": "s"},
    secret="k-123",
    secret_kind="byok",
)
OAUTH = ResolvedCredential(
    identity="user:2", headers={"Authorization": "Bearer t-456"}, secret="t-456", secret_kind="oauth2"
)
SHARED = {"X-Shared": "s"}


@pytest.mark.parametrize(
    ("requirements", "credential", "headers", "query"),
    [
        (({"headerKey": []},), BYOK, {"X-Shared": "s", "X-Key": "k-123"}, {}),
        (({"queryKey": []},), BYOK, {"X-Shared": "s"}, {"api_key": "k-123"}),
        (({"bearer": []},), BYOK, {"X-Shared": "s", "Authorization": "Bearer k-123"}, {}),
        (
            ({"basic": []},),
            BYOK,
            {"X-Shared": "s", "Authorization": "Basic " + base64.b64encode(b"k-123:").decode()},
            {},
        ),
        (({"oauth": ["read"]},), OAUTH, {"X-Shared": "s", "Authorization": "Bearer t-456"}, {}),
        # An OAuth token is not an API key: the bearer alternative is chosen.
        (({"headerKey": []}, {"oauth": []}), OAUTH, {"X-Shared": "s", "Authorization": "Bearer t-456"}, {}),
        # The first alternative a BYOK key fits.
        (({"oauth": []}, {"headerKey": []}), BYOK, {"X-Shared": "s", "Authorization": "Bearer k-123"}, {}),
    ],
)
def test_the_secret_goes_where_the_scheme_says(
    requirements: tuple[dict[str, list[str]], ...],
    credential: ResolvedCredential,
    headers: dict[str, str],
    query: dict[str, str],
) -> None:
    placed = place_credential(
        tool(*requirements), SCHEMES, credential, shared_headers=SHARED, placement_configured=False
    )
    assert (placed.headers, placed.query) == (headers, query)


def test_cookie_schemes_and_fallbacks() -> None:
    placed = place_credential(
        tool({"cookieKey": []}), SCHEMES, BYOK, shared_headers={}, placement_configured=False
    )
    assert placed.cookies == {"token": "k-123"} and placed.headers == {}
    # No security declared: the resolver's own placement (Authorization: Bearer).
    assert place_credential(
        tool(), SCHEMES, BYOK, shared_headers=SHARED, placement_configured=False
    ).headers == {
        "Authorization": "Bearer k-123",
        "X-Shared": "s",
    }
    # An admin who set byok_name decides; the spec does not.
    assert (
        place_credential(
            tool({"queryKey": []}), SCHEMES, BYOK, shared_headers=SHARED, placement_configured=True
        ).query
        == {}
    )
    # Shared-credential servers send their headers as configured.
    shared = ResolvedCredential(identity="static", headers={"X-Api-Key": "shared"})
    assert place_credential(
        tool({"headerKey": []}), SCHEMES, shared, shared_headers={}, placement_configured=False
    ).headers == {"X-Api-Key": "shared"}


def test_a_basic_key_with_a_colon_is_user_and_password() -> None:
    key = ResolvedCredential(identity="user:3", headers={}, secret="ann:pa:ss", secret_kind="byok")
    placed = place_credential(
        tool({"basic": []}), SCHEMES, key, shared_headers={}, placement_configured=False
    )
    assert placed.headers == {"Authorization": "Basic " + base64.b64encode(b"ann:pa:ss").decode()}
