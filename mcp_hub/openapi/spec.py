"""Validating an OpenAPI document before the hub stores it, and finding the base URL its calls go to.

Checks, in order (each later one relies on the earlier): OpenAPI 3.0 or 3.1; every `$ref` local, resolvable
and free of cycles; the document valid against its version's schema and rules
(`openapi-spec-validator`, run off the event loop); every operation usable as a tool; the server URL an
http(s) URL on a network the SSRF guard admits.
"""

from __future__ import annotations

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
from mcp_hub.openapi.refs import check_refs
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
) -> str:
    """Raises InvalidSpecError listing the problems; returns the base URL calls will use."""
    version = spec_version(document)
    problems = check_refs(document)
    if problems:
        raise InvalidSpecError(problems)
    problems = await anyio.to_thread.run_sync(_schema_problems, document, version)
    if problems:
        raise InvalidSpecError(problems)
    build_tools(document, include=None, exclude=None)  # raises on operations that cannot become tools
    base = server_url(document, spec_location, base_url_override)
    try:
        await guard.check_url(base, what="the spec's server URL")
    except UnsafeUrlError as exc:
        raise InvalidSpecError([exc.message]) from None
    return base
