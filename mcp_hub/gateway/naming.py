"""Public names on the aggregate endpoint `/mcp`.

Tools and prompts are named `{alias}__{name}`. Routing is by exact lookup in the catalog built here,
never by splitting on the separator: aliases may themselves contain `__`, so `a__b` + `c` and `a` +
`b__c` would otherwise collide. Names are unique and at most 64 characters; a name that is too long or
that collides gets a short stable hash of its (alias, name) instead of its tail. The same listings
always give the same names.

Resource URIs are wrapped as `mcp-hub://{alias}/{original}`; the original URI (or URI template) is
kept verbatim after the first `/`, which an alias cannot contain, so unwrapping is unambiguous and a
template's `{variables}` still expand.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

SEPARATOR = "__"
MAX_NAME_LENGTH = 64
HASH_LENGTH = 8
URI_SCHEME = "mcp-hub"
URI_PREFIX = f"{URI_SCHEME}://"


@dataclass(frozen=True)
class Entry:
    """One upstream name of one server."""

    server_id: str
    alias: str
    name: str


def plain_name(alias: str, name: str) -> str:
    return f"{alias}{SEPARATOR}{name}"


def hashed_name(alias: str, name: str) -> str:
    digest = hashlib.sha256(f"{alias}\x00{name}".encode()).hexdigest()[:HASH_LENGTH]
    room = MAX_NAME_LENGTH - len(alias) - len(SEPARATOR) - 1 - HASH_LENGTH
    return f"{alias}{SEPARATOR}{name[: max(room, 0)]}_{digest}"


def build_catalog(entries: Iterable[Entry]) -> dict[str, Entry]:
    """Public name → entry, for every entry. Deterministic for a given set of entries."""
    items = sorted(set(entries), key=lambda e: (e.alias, e.name, e.server_id))
    counts = Counter(plain_name(e.alias, e.name) for e in items)
    catalog: dict[str, Entry] = {}
    hashed: list[Entry] = []
    for entry in items:
        candidate = plain_name(entry.alias, entry.name)
        if counts[candidate] > 1 or len(candidate) > MAX_NAME_LENGTH:
            hashed.append(entry)
        else:
            catalog[candidate] = entry
    for entry in hashed:
        candidate = hashed_name(entry.alias, entry.name)
        if candidate in catalog:
            # A plain name that happens to look like a hashed one: the hash of the hash settles it.
            candidate = hashed_name(entry.alias, candidate)
        catalog[candidate] = entry
    return catalog


def public_uri(alias: str, uri: str) -> str:
    return f"{URI_PREFIX}{alias}/{uri}"


def split_public_uri(uri: str) -> tuple[str, str] | None:
    """(alias, original uri) of a wrapped URI, or None when `uri` is not one of ours."""
    if not uri.startswith(URI_PREFIX):
        return None
    alias, slash, original = uri[len(URI_PREFIX) :].partition("/")
    if not slash or not alias or not original:
        return None
    return alias, original
