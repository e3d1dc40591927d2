"""`$ref` handling inside one OpenAPI document.

Only references into the same document (`#/...`) are followed: a `$ref` to another file or URL would make
the hub read files or reach hosts on the spec author's say, so such documents are refused. A chain of
references that comes back to itself without any schema in between (`A: {$ref: B}`, `B: {$ref: A}`)
means nothing and is refused too. A schema that contains itself through its properties (a tree node with
children) is legitimate: it is inlined once and the inner occurrence points at a `$defs` entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from mcp_hub.errors import InvalidSpecError

# A tool's input schema is inlined; a spec whose schemas reference each other many times over could
# expand exponentially, so one schema may hold at most this many nodes once inlined.
MAX_INLINED_NODES = 20_000
DEF_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]")
# A reference to a reference to a reference...: real documents stop after one or two.
MAX_REF_CHAIN = 32
# Keywords whose values are data, not schemas: copied as they are (an example may hold a key called
# `nullable` or `$ref`, and it means nothing there).
DATA_KEYWORDS = frozenset({"enum", "const", "default", "example", "examples"})
# Keywords whose values map names to schemas: the names are data (a property may be called `nullable`).
SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def iter_refs(node: Any, path: str = "#") -> Iterator[tuple[str, str]]:
    """(where, `$ref` value) for every reference in the document."""
    stack: list[tuple[Any, str]] = [(node, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str):
                yield where, ref
            stack.extend((value, f"{where}/{key}") for key, value in current.items())
        elif isinstance(current, list):
            stack.extend((value, f"{where}/{index}") for index, value in enumerate(current))


def lookup(document: dict[str, Any], ref: str) -> Any:
    """The node a local `$ref` (JSON pointer, RFC 6901) names."""
    if not ref.startswith("#"):
        raise InvalidSpecError([f"$ref {ref!r} points outside the document"])
    node: Any = document
    pointer = unquote(ref[1:])
    if pointer in ("", "/"):
        return document
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise InvalidSpecError([f"$ref {ref!r} names nothing in the document"])
    return node


def check_refs(document: dict[str, Any]) -> list[str]:
    """Problems with the document's references: external ones, dangling ones, cycles of bare refs."""
    problems: list[str] = []
    for where, ref in iter_refs(document):
        if not ref.startswith("#"):
            problems.append(f"{where}: $ref {ref!r} points outside the document (only #/... is followed)")
            continue
        try:
            follow(document, ref)
        except InvalidSpecError as exc:
            problems.append(f"{where}: {exc.problems[0]}")
        if len(problems) >= 20:
            break
    return problems


def follow(document: dict[str, Any], ref: str) -> Any:
    """The first node along a chain of references that is not itself a bare reference."""
    seen: list[str] = []
    node: Any = {"$ref": ref}
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        current = node["$ref"]
        if current in seen:
            raise InvalidSpecError([f"$ref cycle: {' -> '.join([*seen, current])}"])
        if len(seen) >= MAX_REF_CHAIN:
            # check_refs follows every reference: a document of N chained ones would take N^2 steps.
            raise InvalidSpecError([f"$ref {ref!r} starts a chain of more than {MAX_REF_CHAIN} references"])
        seen.append(current)
        node = lookup(document, current)
    return node


def resolve(document: dict[str, Any], node: Any) -> Any:
    """`node` itself, or what it names when it is a Reference Object (`{"$ref": "#/..."}`)."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        return follow(document, node["$ref"])
    return node


class Inliner:
    """Inlines references in schemas taken from one document. Recursive schemas end up in `defs` (to be
    put under `$defs` at the root of the schema being built) and are referenced as `#/$defs/NAME`."""

    def __init__(self, document: dict[str, Any], *, openapi_30: bool) -> None:
        self._document = document
        # OpenAPI 3.0 schemas are not JSON Schema 2020-12 (`nullable`, boolean `exclusiveMinimum`);
        # 3.1 schemas are JSON Schema already.
        self._openapi_30 = openapi_30
        self.defs: dict[str, Any] = {}
        self._names: dict[str, str] = {}
        self._budget = MAX_INLINED_NODES

    def schema(self, node: Any) -> Any:
        self._budget = MAX_INLINED_NODES
        return self._inline(node, ())

    def _def_name(self, ref: str) -> str:
        name = self._names.get(ref)
        if name is None:
            base = DEF_NAME_RE.sub("_", ref.rsplit("/", 1)[-1]) or "def"
            name, counter = base, 2
            while name in self._names.values():
                name, counter = f"{base}_{counter}", counter + 1
            self._names[ref] = name
        return name

    def _inline(self, node: Any, active: tuple[str, ...]) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise InvalidSpecError([f"a schema expands to more than {MAX_INLINED_NODES} nodes"])
        if isinstance(node, list):
            return [self._inline(item, active) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self._inline_ref(ref, node, active)
        result = {key: self._keyword(key, value, active) for key, value in node.items()}
        return _from_openapi_30(result) if self._openapi_30 else result

    def _keyword(self, key: str, value: Any, active: tuple[str, ...]) -> Any:
        if key in DATA_KEYWORDS or key.startswith("x-"):
            return value
        if key in SCHEMA_MAPS and isinstance(value, dict):
            return {name: self._inline(schema, active) for name, schema in value.items()}
        return self._inline(value, active)

    def _inline_ref(self, ref: str, node: dict[str, Any], active: tuple[str, ...]) -> Any:
        siblings = {key: self._keyword(key, value, active) for key, value in node.items() if key != "$ref"}
        if ref in active:
            # Recursion: point at the definition the outer expansion of this ref will store.
            name = self._def_name(ref)
            self.defs.setdefault(name, None)
            return {"$ref": f"#/$defs/{name}", **siblings}
        target = follow(self._document, ref)
        expanded = self._inline(target, (*active, ref))
        recursive_name = self._names.get(ref)
        if recursive_name is not None and recursive_name in self.defs:
            # Something inside referred back to this schema: keep it as a definition.
            self.defs[recursive_name] = expanded
            return {"$ref": f"#/$defs/{recursive_name}", **siblings}
        if siblings and isinstance(expanded, dict):
            return {**expanded, **siblings}
        return expanded


def _from_openapi_30(schema: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI 3.0 schema object as JSON Schema 2020-12, which is what MCP clients and the hub's own
    argument check read: `exclusiveMinimum: true` beside `minimum: 0` means "> 0" in 3.0, while 2020-12
    wants the bound itself there (read as written, every number would be compared with `true`)."""
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        flag = schema.get(exclusive)
        if isinstance(flag, bool):
            rest = {key: value for key, value in schema.items() if key != exclusive}
            if flag and bound in schema:
                rest = {key: value for key, value in rest.items() if key != bound}
                rest[exclusive] = schema[bound]
            schema = rest
    if "nullable" in schema:
        nullable = schema["nullable"] is True
        schema = {key: value for key, value in schema.items() if key != "nullable"}
        if nullable:
            schema = _with_null(schema)
    return schema


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        # An enum lists every allowed value: null too, or the type list alone would not admit it.
        schema = {**schema, "enum": [*schema["enum"], None]}
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list) and "null" not in kind:
        return {**schema, "type": [*kind, "null"]}
    if kind is None:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema
