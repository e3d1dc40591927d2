"""Reading an OpenAPI document: from an http(s) URL (through the SSRF guard, with the server's headers,
a total deadline and a size cap) or from a file, then parsed as JSON or YAML (safe loading only) into
plain JSON values that the database can store."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import yaml

from mcp_hub.credentials.netguard import UrlGuard
from mcp_hub.errors import InvalidSpecError, UnsafeUrlError

# A YAML document may use anchors to reuse a node many times; walking it then visits every use, so a
# few kilobytes can stand for billions of nodes. Walks stop at this many nodes.
MAX_NODES = 1_000_000


def is_url(location: str) -> bool:
    return urlsplit(location).scheme.lower() in ("http", "https")


async def read_spec_bytes(
    location: str,
    *,
    client: httpx2.AsyncClient,
    guard: UrlGuard,
    headers: Mapping[str, str],
    max_bytes: int,
    deadline_seconds: float,
    file_roots: Sequence[Path] | None,
) -> bytes:
    """The document's bytes. `file_roots` None lets any file be read (the CLI, run on the hub's
    machine); otherwise a path must lie inside one of the roots."""
    scheme = urlsplit(location).scheme.lower()
    if is_url(location):
        return await _fetch(location, client, guard, headers, max_bytes, deadline_seconds)
    if scheme and len(scheme) > 1:  # a one-letter "scheme" is a Windows drive letter
        raise InvalidSpecError([f"spec_location: only http(s) URLs and file paths are read (got {scheme}:)"])
    return await _read_file(Path(location), max_bytes, file_roots)


async def _fetch(
    url: str,
    client: httpx2.AsyncClient,
    guard: UrlGuard,
    headers: Mapping[str, str],
    max_bytes: int,
    deadline_seconds: float,
) -> bytes:
    try:
        await guard.check_url(url, what="spec_location")
    except UnsafeUrlError as exc:
        raise InvalidSpecError([exc.message]) from None
    try:
        with anyio.fail_after(deadline_seconds):
            async with client.stream("GET", url, headers=dict(headers)) as response:
                if response.status_code != 200:
                    raise InvalidSpecError(
                        [f"spec_location: fetching the document answered HTTP {response.status_code}"]
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise InvalidSpecError(
                            [f"spec_location: the document is larger than {max_bytes} bytes"]
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
    except TimeoutError:
        raise InvalidSpecError([f"spec_location: no complete answer within {deadline_seconds:g}s"]) from None
    except UnsafeUrlError as exc:
        raise InvalidSpecError([f"spec_location: {exc.message}"]) from None
    except httpx2.HTTPError as exc:
        raise InvalidSpecError([f"spec_location: cannot fetch the document ({type(exc).__name__})"]) from None


async def _read_file(path: Path, max_bytes: int, roots: Sequence[Path] | None) -> bytes:
    resolved = Path(await anyio.Path(path).resolve())
    if roots is not None and not await _inside_any(resolved, roots):
        raise InvalidSpecError(
            ["spec_location: file paths are read only inside MCP_HUB_OPENAPI_SPEC_DIRS over the API"]
        )
    try:
        async with await anyio.open_file(resolved, "rb") as handle:
            data = await handle.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidSpecError(
            [f"spec_location: cannot read {path} ({exc.strerror or type(exc).__name__})"]
        ) from None
    if len(data) > max_bytes:
        raise InvalidSpecError([f"spec_location: the document is larger than {max_bytes} bytes"])
    return data


async def _inside_any(path: Path, roots: Sequence[Path]) -> bool:
    for root in roots:
        if path.is_relative_to(Path(await anyio.Path(root).resolve())):
            return True
    return False


def parse_document(raw: bytes) -> dict[str, Any]:
    """JSON or YAML (safe loading: plain data only, no object construction) into JSON values."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidSpecError(["the document is not UTF-8 text"]) from None
    try:
        loaded = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidSpecError([f"not valid JSON (line {exc.lineno}, column {exc.colno})"]) from None
    except RecursionError:
        raise InvalidSpecError(["the document nests too deeply"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidSpecError([f"not valid JSON or YAML{where}"]) from None
    if not isinstance(loaded, dict):
        raise InvalidSpecError(["the document is not a JSON/YAML object"])
    budget = [MAX_NODES]
    try:
        document = _as_json(loaded, budget)
    except RecursionError:
        raise InvalidSpecError(["the document nests too deeply (or a YAML anchor contains itself)"]) from None
    assert isinstance(document, dict)
    return document


def _as_json(value: Any, budget: list[int]) -> Any:
    """YAML gives int keys (`200:` response codes) and dates; JSON storage and JSON Schema want strings."""
    budget[0] -= 1
    if budget[0] < 0:
        raise InvalidSpecError([f"the document has more than {MAX_NODES} nodes (YAML anchors expand)"])
    if isinstance(value, dict):
        return {str(key): _as_json(item, budget) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item, budget) for item in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):  # no JSON form
        raise InvalidSpecError(["the document contains NaN or an infinite number"])
    return value
