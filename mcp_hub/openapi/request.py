"""One OpenAPI tool call: arguments checked against the tool's schema, the HTTP request built (path
parameters encoded so they stay inside their path segment, query/header/cookie parameters serialised per
their style, JSON or form body), sent on the server's pooled client within a total deadline, the answer
read up to a size cap and turned into an MCP tool result."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import httpx2
import mcp_types as types

from mcp_hub.errors import UnsafeUrlError
from mcp_hub.openapi.auth import Placement
from mcp_hub.openapi.tools import OperationTool, ParamSpec

PATH_TEMPLATE = re.compile(r"\{([^{}]+)\}")
ERROR_EXCERPT_CHARS = 500
ACCEPT = "application/json, text/*;q=0.9, */*;q=0.5"
MAX_ARGUMENT_ERRORS = 5


class ToolCallError(Exception):
    """A call that cannot be made as asked; its message goes back to the caller as an error result."""


class CredentialRefusedError(Exception):
    """The API answered 401 to a credential that can be replaced (an OAuth token): the request was refused
    before it ran, so it is safe to send again once the credential is refreshed."""


@dataclass(frozen=True)
class CallLimits:
    deadline_seconds: float
    max_response_bytes: int


def check_arguments(tool: OperationTool, arguments: Mapping[str, Any]) -> None:
    errors = sorted(tool.validator.iter_errors(dict(arguments)), key=lambda error: list(error.path))
    if errors:
        problems = [
            f"{'/'.join(str(part) for part in error.path) or 'arguments'}: {error.message}"
            for error in errors[:MAX_ARGUMENT_ERRORS]
        ]
        raise ToolCallError("invalid arguments: " + "; ".join(problems))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _segment(value: str) -> str:
    """Percent-encodes everything outside the unreserved set: a value can then never be read as `/`,
    `?`, `#`, `@` or an already-encoded sequence (`%2F` becomes `%252F`). Dot segments are handled once the
    whole path is known (`_no_dot_segments`)."""
    return quote(value, safe="-_.~")


def _no_dot_segments(path: str) -> str:
    """`.` and `..` segments would be resolved away by the client or the server and move the request to
    another path; written as `%2E` they are plain data."""
    return "/".join(
        segment.replace(".", "%2E") if segment in (".", "..") else segment for segment in path.split("/")
    )


def _path_value(param: ParamSpec, value: Any) -> str:
    if param.as_json:
        return _segment(json.dumps(value, separators=(",", ":")))
    if isinstance(value, list):
        parts = [_segment(_scalar(item)) for item in value]
    elif isinstance(value, dict):
        pairs = [(_segment(str(key)), _segment(_scalar(item))) for key, item in value.items()]
        parts = [f"{k}={v}" for k, v in pairs] if param.explode else [p for pair in pairs for p in pair]
    else:
        parts = [_segment(_scalar(value))]
    if param.style == "label":
        return "." + ("." if param.explode else ",").join(parts)
    if param.style == "matrix":
        name = _segment(param.name)
        if isinstance(value, list) and param.explode:
            return "".join(f";{name}={part}" for part in parts)
        return f";{name}=" + ",".join(parts)
    return ",".join(parts)


def _query_pairs(param: ParamSpec, value: Any) -> list[tuple[str, str]]:
    if param.as_json:
        return [(param.name, json.dumps(value, separators=(",", ":")))]
    if isinstance(value, list):
        if param.style == "form" and param.explode:
            return [(param.name, _scalar(item)) for item in value]
        separator = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(param.style, ",")
        return [(param.name, separator.join(_scalar(item) for item in value))]
    if isinstance(value, dict):
        if param.style == "deepObject":
            return [(f"{param.name}[{key}]", _scalar(item)) for key, item in value.items()]
        if param.explode:
            return [(str(key), _scalar(item)) for key, item in value.items()]
        return [(param.name, ",".join(f"{key},{_scalar(item)}" for key, item in value.items()))]
    return [(param.name, _scalar(value))]


def _header_value(param: ParamSpec, value: Any) -> str:
    if param.as_json:
        text = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, list):
        text = ",".join(_scalar(item) for item in value)
    elif isinstance(value, dict):
        joiner = "=" if param.explode else ","
        text = ",".join(f"{key}{joiner}{_scalar(item)}" for key, item in value.items())
    else:
        text = _scalar(value)
    if any(ch in text for ch in "\r\n\0"):
        raise ToolCallError(f"header parameter {param.name!r} contains a line break")
    if not text.isascii():
        # HTTP header values are bytes; the client would fail with an encoding error mid-call.
        raise ToolCallError(f"header parameter {param.name!r} must be ASCII text")
    return text


def build_request(
    client: httpx2.AsyncClient,
    tool: OperationTool,
    base_url: str,
    arguments: Mapping[str, Any],
    placement: Placement,
) -> httpx2.Request:
    path_values: dict[str, str] = {}
    query: list[tuple[str, str | int | float | bool | None]] = []
    headers: dict[str, str] = {"Accept": ACCEPT}
    cookies: dict[str, str] = {}
    for param in tool.params:
        if param.arg not in arguments or arguments[param.arg] is None:
            continue
        value = arguments[param.arg]
        if param.location == "path":
            encoded = _path_value(param, value)
            if not encoded:
                # `/notes/{id}` with an empty id is `/notes/`: another operation (often the collection).
                raise ToolCallError(f"path parameter {param.name!r} is empty")
            path_values[param.name] = encoded
        elif param.location == "query":
            query.extend(_query_pairs(param, value))
        elif param.location == "header":
            headers[param.name] = _header_value(param, value)
        elif param.location == "cookie":
            cookies[param.name] = _scalar(value)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in path_values:
            raise ToolCallError(f"missing path parameter {name!r}")
        return path_values[name]

    path = _no_dot_segments(PATH_TEMPLATE.sub(substitute, tool.path))
    url = base_url.rstrip("/") + "/" + path.lstrip("/")
    # The credential last, so neither a spec's header parameter nor a caller can replace it: a parameter
    # of the same name (header names in any case) is dropped, not sent beside it for the API to pick.
    credential_headers = {name.lower() for name in placement.headers}
    headers = {
        **{name: text for name, text in headers.items() if name.lower() not in credential_headers},
        **placement.headers,
    }
    query = [pair for pair in query if pair[0] not in placement.query]
    query.extend(placement.query.items())
    cookies.update(placement.cookies)
    if cookies:
        headers["Cookie"] = "; ".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in cookies.items())
    content: bytes | None = None
    if tool.body is not None and tool.body.arg in arguments:
        content, headers["Content-Type"] = _body(tool.body.media_type, arguments[tool.body.arg])
    request = client.build_request(
        tool.method.upper(), url, params=query or None, headers=headers, content=content
    )
    _check_stays_under(base_url, request.url)
    return request


def _body(media_type: str, value: Any) -> tuple[bytes, str]:
    if "form-urlencoded" in media_type:
        if not isinstance(value, dict):
            raise ToolCallError("the request body must be an object for a form")
        return urlencode({key: _scalar(item) for key, item in value.items()}).encode(), media_type
    if media_type.startswith("text/") and isinstance(value, str):
        return value.encode(), media_type
    return json.dumps(value, separators=(",", ":")).encode(), media_type


def _check_stays_under(base_url: str, url: httpx2.URL) -> None:
    """Belt and braces behind the encoding: the request, as the client will send it, goes to the base
    URL's origin and under its path."""
    base = httpx2.URL(base_url)
    base_path = base.raw_path.split(b"?", 1)[0].rstrip(b"/") + b"/"
    final_path = url.raw_path.split(b"?", 1)[0]
    if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port) or not final_path.startswith(
        base_path
    ):
        raise ToolCallError("the arguments would send the request outside the API's base URL")


async def send(
    client: httpx2.AsyncClient, request: httpx2.Request, limits: CallLimits, *, refusable: bool = False
) -> types.CallToolResult:
    """`refusable`: a 401 raises CredentialRefusedError instead of being an error result."""
    try:
        with anyio.fail_after(limits.deadline_seconds):
            response = await client.send(request, stream=True)
            if refusable and response.status_code == 401:
                await response.aclose()
                raise CredentialRefusedError
            try:
                body, complete = await _read_capped(response, limits.max_response_bytes)
            finally:
                await response.aclose()
    except TimeoutError:
        return error_result(f"the API did not answer within {limits.deadline_seconds:g}s")
    except UnsafeUrlError as exc:
        return error_result(f"the API's address is refused: {exc.message}")
    except httpx2.HTTPError as exc:
        # The exception's text can quote the URL, and a query-string credential with it.
        return error_result(f"cannot reach the API ({type(exc).__name__})")
    if not complete:
        return error_result(
            f"the API's response is larger than {limits.max_response_bytes} bytes; it was cut off and dropped"
        )
    return to_result(response, body)


async def _read_capped(response: httpx2.Response, cap: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            return b"", False  # stop reading: the connection is closed, not drained
        chunks.append(chunk)
    return b"".join(chunks), True


def to_result(response: httpx2.Response, body: bytes) -> types.CallToolResult:
    text = body.decode(response.encoding or "utf-8", errors="replace")
    if not 200 <= response.status_code < 300:
        excerpt = text[:ERROR_EXCERPT_CHARS] + ("..." if len(text) > ERROR_EXCERPT_CHARS else "")
        reason = response.reason_phrase or ""
        return error_result(
            f"HTTP {response.status_code} {reason}".rstrip() + (f": {excerpt}" if excerpt else "")
        )
    if not body:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=f"HTTP {response.status_code}")]
        )
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            value = json.loads(body)
        except ValueError:
            value = None
        else:
            # structuredContent is an object; other JSON values are wrapped.
            structured = value if isinstance(value, dict) else {"result": value}
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], structured_content=structured
            )
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


def error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)
