"""Validating an OpenAPI document before the hub stores it, and finding the base URL its calls go to.

Checks, in order (each later one relies on the earlier): OpenAPI 3.0 or 3.1; every `$ref` local, resolvable
and free of cycles; the document valid against its version's schema and rules
(`openapi-spec-validator`, run off the event loop); every operation usable as a tool; the server URL an
http(s) URL on a network the SSRF guard admits.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio.to_thread
from jsonschema.exceptions import ValidationError as SchemaValidationError
from jsonschema_path import SchemaPath
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from mcp_hub.credentials.netguard import UrlGuard
from mcp_hub.errors import InvalidSpecError, UnsafeUrlError
from mcp_hub.openapi.loader import is_url
from mcp_hub.openapi.refs import check_refs, resolve
from mcp_hub.openapi.tools import build_tools

MAX_PROBLEMS = 20


def spec_version(document: dict[str, Any]) -> str:
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith(("3.0.", "3.1.")):
        found = version if isinstance(version, str) else document.get("swagger", "none")
        raise InvalidSpecError(
            [f"only OpenAPI 3.0 and 3.1 documents are supported (found version {found!r})"]
        )
    return version[:3]


def _schema_problems(document: dict[str, Any], version: str) -> list[str]:
    validator_cls = OpenAPIV31SpecValidator if version == "3.1" else OpenAPIV30SpecValidator
    # Every $ref was checked to be local before this runs, so the validator never leaves the document.
    validator = validator_cls(SchemaPath.from_dict(document))
    problems: list[str] = []
    try:
        for error in islice(validator.iter_errors(), MAX_PROBLEMS):
            where = "/".join(str(part) for part in getattr(error, "absolute_path", ()) or ())
            problems.append(f"{where + ': ' if where else ''}{_first_line(error.message)}")
    except (OpenAPIValidationError, SchemaValidationError, RecursionError) as exc:
        problems.append(f"the document cannot be validated: {_first_line(str(exc))}")
    return problems


def _check_document(document: dict[str, Any], version: str) -> int:
    """The number of tools the document makes."""
    problems = check_refs(document)
    if problems:
        raise InvalidSpecError(problems)
    problems = _schema_problems(document, version)
    if problems:
        raise InvalidSpecError(problems)
    # Raises on operations that cannot become tools.
    return len(build_tools(document, include=None, exclude=None))


def _first_line(text: str) -> str:
    line = text.splitlines()[0] if text else "invalid"
    return line if len(line) <= 300 else line[:297] + "..."


def server_url(document: dict[str, Any], spec_location: str | None, override: str | None) -> str:
    """The base URL calls go to: the override, else the first `servers` entry (variables at their
    defaults), resolved against the spec's own URL when relative."""
    if override:
        return override.rstrip("/")
    servers = document.get("servers") or []
    first = servers[0] if servers and isinstance(servers[0], dict) else {}
    url = str(first.get("url") or "/")
    for name, variable in (first.get("variables") or {}).items():
        if isinstance(variable, dict) and "default" in variable:
            url = url.replace("{" + str(name) + "}", str(variable["default"]))
    if not urlsplit(url).scheme:
        if spec_location is None or not is_url(spec_location):
            raise InvalidSpecError(
                [
                    f"the spec's server URL {url!r} is relative and the spec was not read from a URL: "
                    "set openapi_base_url"
                ]
            )
        url = urljoin(spec_location, url)
    return url.rstrip("/")


async def validate_document(
    document: dict[str, Any], *, spec_location: str | None, base_url_override: str | None, guard: UrlGuard
) -> tuple[str, int]:
    """Raises InvalidSpecError listing the problems; returns the base URL calls will use and the number
    of tools the document makes."""
    version = spec_version(document)
    # A spec of many megabytes takes seconds to walk: off the event loop, which serves every other call.
    tool_count = await anyio.to_thread.run_sync(_check_document, document, version)
    base = server_url(document, spec_location, base_url_override)
    try:
        await guard.check_url(base, what="the spec's server URL")
    except UnsafeUrlError as exc:
        raise InvalidSpecError([exc.message]) from None
    return base, tool_count


@dataclass(frozen=True)
class OAuthEndpoints:
    authorization_url: str
    token_url: str
    scopes: list[str]


def oauth_endpoints(document: dict[str, Any], spec_location: str | None) -> OAuthEndpoints | None:
    """The first `oauth2` security scheme with an authorization-code flow, so an OAuth2 OpenAPI server
    needs no hand-entered endpoints (the upstream-MCP discovery has no MCP URL to start from here). The
    scopes are the ones the document's security requirements ask of that scheme: what its operations
    need, not every scope the flow lists. Relative URLs resolve against the spec's own URL."""
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    for name, raw in schemes.items():
        scheme = resolve(document, raw)
        if not isinstance(scheme, dict) or scheme.get("type") != "oauth2":
            continue
        flow = (scheme.get("flows") or {}).get("authorizationCode")
        if not isinstance(flow, dict):
            continue
        urls = [
            _absolute(str(flow.get(key) or ""), spec_location) for key in ("authorizationUrl", "tokenUrl")
        ]
        if None in urls:
            continue
        return OAuthEndpoints(
            authorization_url=str(urls[0]),
            token_url=str(urls[1]),
            scopes=_required_scopes(document, str(name)),
        )
    return None


def _absolute(url: str, spec_location: str | None) -> str | None:
    if url and spec_location and is_url(spec_location):
        url = urljoin(spec_location, url)
    return url if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc else None


def _required_scopes(document: dict[str, Any], scheme_name: str) -> list[str]:
    requirements: list[Any] = list(document.get("security") or [])
    for path_item in (document.get("paths") or {}).values():
        if isinstance(path_item, dict):
            requirements.extend(
                requirement
                for operation in path_item.values()
                if isinstance(operation, dict)
                for requirement in operation.get("security") or []
            )
    scopes = {
        str(scope)
        for requirement in requirements
        if isinstance(requirement, dict)
        for scope in requirement.get(scheme_name) or []
    }
    return sorted(scopes)
