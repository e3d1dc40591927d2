"""Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): a `client_id` that is an
https URL names a JSON document describing the client, fetched by the hub.

The fetch goes through the SSRF guard of the credentials package (no internal addresses unless the
operator allowlists them, link-local never, no redirects followed), within a 10 s total deadline, and
stops reading past 5 KB. The document must name itself (`client_id` equal to its URL, character for
character), list its redirect URIs, and be a public client: a secret cannot be kept in a public
document."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from mcp_hub.credentials.netguard import guarded_client
from mcp_hub.errors import OAuthFlowError, UnsafeUrlError
from mcp_hub.runtime import Hub

MAX_DOCUMENT_BYTES = 5 * 1024
FETCH_TIMEOUT_SECONDS = 10.0
PUBLIC_METHODS = (None, "none")


class ClientDocumentError(OAuthFlowError):
    """A client ID metadata document that cannot be used; the message says why (never its content)."""


@dataclass(frozen=True)
class ClientDocument:
    redirect_uris: list[str]
    metadata: dict[str, Any]


def is_metadata_document_url(client_id: str) -> bool:
    return client_id.startswith("https://")


def check_document_url(url: str) -> None:
    """The URL rules of the draft: https, a path other than `/`, no fragment, no credentials, no dot
    segments."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ClientDocumentError("the client_id is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise ClientDocumentError("a client_id URL must be https")
    if parts.path in ("", "/"):
        raise ClientDocumentError("a client_id URL must have a path")
    if parts.fragment or parts.username is not None or parts.password is not None:
        raise ClientDocumentError("a client_id URL must not have a fragment or credentials")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise ClientDocumentError("a client_id URL must not contain . or .. segments")


async def _read_capped(http: httpx2.AsyncClient, url: str) -> bytes:
    async with http.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise ClientDocumentError(
                f"fetching the client metadata document answered HTTP {response.status_code}"
            )
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
            raise ClientDocumentError("the client metadata document is larger than 5 KB")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ClientDocumentError("the client metadata document is larger than 5 KB")
        return bytes(body)


async def fetch_client_document(hub: Hub, url: str) -> ClientDocument:
    check_document_url(url)
    try:
        await hub.url_guard.check_url(url, what="client metadata document")
        async with guarded_client(hub.url_guard, timeout=FETCH_TIMEOUT_SECONDS) as http:
            async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
                body = await _read_capped(http, url)
    except UnsafeUrlError as exc:
        raise ClientDocumentError(exc.message) from None
    except (TimeoutError, httpx2.TimeoutException):
        # Whichever fires first, the total deadline or the client's per-phase one: the same answer.
        raise ClientDocumentError(
            f"fetching the client metadata document took longer than {FETCH_TIMEOUT_SECONDS:g} s"
        ) from None
    except httpx2.HTTPError as exc:
        raise ClientDocumentError(
            f"fetching the client metadata document failed ({type(exc).__name__})"
        ) from None
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ClientDocumentError("the client metadata document is not JSON") from None
    if not isinstance(document, dict):
        raise ClientDocumentError("the client metadata document is not a JSON object")
    if document.get("client_id") != url:
        raise ClientDocumentError("the client metadata document's client_id is not its own URL")
    if document.get("token_endpoint_auth_method") not in PUBLIC_METHODS or "client_secret" in document:
        raise ClientDocumentError("a client metadata document must describe a public client (method none)")
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(uri, str) for uri in uris):
        raise ClientDocumentError("the client metadata document lists no redirect_uris")
    return ClientDocument(redirect_uris=list(uris), metadata=document)
