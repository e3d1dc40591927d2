"""Where a caller's credential goes on one OpenAPI call.

The one credential resolver decides *which* credential applies (the user's BYOK key or OAuth2 token, or
the server's shared headers); this module only places it the way the operation's security requirement
says: an `apiKey` header, query parameter or cookie, `http` bearer or basic, or `oauth2` /
`openIdConnect` as a bearer token. When an admin set the BYOK delivery explicitly (`byok_name`), the
resolver's placement is used as it is.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp_hub.openapi.tools import OperationTool
from mcp_hub.upstream.credentials import ResolvedCredential

BEARER_SCHEMES = ("oauth2", "openIdConnect")


@dataclass(frozen=True)
class Placement:
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    query: dict[str, str] = field(default_factory=dict, repr=False)
    cookies: dict[str, str] = field(default_factory=dict, repr=False)


def place_credential(
    tool: OperationTool,
    schemes: Mapping[str, Any],
    credential: ResolvedCredential,
    *,
    shared_headers: Mapping[str, str],
    placement_configured: bool,
) -> Placement:
    # Shared-credential servers and explicitly configured BYOK delivery take what the resolver built; so
    # does an operation that names no scheme this credential fits (or none at all): the resolver's
    # default (Authorization: Bearer ...) is the least surprising choice.
    if credential.secret is not None and not placement_configured:
        placed = _by_scheme(tool, schemes, credential.secret, credential.secret_kind)
        if placed is not None:
            return Placement(
                headers={**shared_headers, **placed.headers}, query=placed.query, cookies=placed.cookies
            )
    return Placement(headers=dict(credential.headers), query=dict(credential.query))


def _by_scheme(
    tool: OperationTool, schemes: Mapping[str, Any], secret: str, kind: str | None
) -> Placement | None:
    for requirement in tool.security:
        for scheme_name in requirement:
            scheme = schemes.get(scheme_name)
            if isinstance(scheme, dict):
                placed = _place(scheme, secret, kind)
                if placed is not None:
                    return placed
    return None


def _place(scheme: dict[str, Any], secret: str, kind: str | None) -> Placement | None:
    scheme_type = scheme.get("type")
    if scheme_type == "apiKey" and kind == "byok":
        name, where = str(scheme.get("name") or ""), scheme.get("in")
        if not name:
            return None
        if where == "header":
            return Placement(headers={name: secret})
        if where == "query":
            return Placement(query={name: secret})
        if where == "cookie":
            return Placement(cookies={name: secret})
        return None
    if scheme_type == "http":
        http_scheme = str(scheme.get("scheme", "")).lower()
        if http_scheme == "bearer":
            return Placement(headers={"Authorization": f"Bearer {secret}"})
        if http_scheme == "basic" and kind == "byok":
            # A BYOK key for basic auth is `user:password`; a key without a colon is the user name, and
            # RFC 7617 still wants the colon (`user:`), or the API cannot parse the header.
            user_pass = secret if ":" in secret else f"{secret}:"
            encoded = base64.b64encode(user_pass.encode()).decode()
            return Placement(headers={"Authorization": f"Basic {encoded}"})
        return None
    if scheme_type in BEARER_SCHEMES:
        return Placement(headers={"Authorization": f"Bearer {secret}"})
    return None
