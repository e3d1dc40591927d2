"""From a validated OpenAPI document to MCP tools: one per operation, named after its `operationId` (or
method and path), with an input schema made of its parameters and request body (`$ref`s inlined), and
the facts the request builder needs to turn a call's arguments back into an HTTP request."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator

from mcp_hub.errors import InvalidSpecError
from mcp_hub.openapi.refs import Inliner, resolve

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# MCP tool names (SEP-986) may be 1-128 of [A-Za-z0-9_.-], but some clients' model APIs accept only
# [A-Za-z0-9_-] (Claude's tool names, for one), so a dot becomes `_` too. The hub prefixes names with
# `{alias}__` on /mcp and keeps the whole within 64 characters, so names are kept short here already.
MAX_TOOL_NAME = 64
TOOL_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")
MAX_DESCRIPTION = 2000
# OpenAPI says header parameters with these names are ignored; the others here belong to the hub's own
# request framing, and letting a spec (or a caller) set them would break or smuggle requests.
IGNORED_HEADERS = frozenset(
    {
        "accept",
        "content-type",
        "authorization",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "cookie",
    }
)
BODY_ARG = "body"


@dataclass(frozen=True)
class ParamSpec:
    arg: str  # property name in the tool's input schema
    name: str  # name on the wire
    location: str  # path | query | header | cookie
    style: str
    explode: bool
    required: bool
    as_json: bool = False  # `content: application/json` parameters are sent as JSON text


@dataclass(frozen=True)
class BodySpec:
    arg: str
    media_type: str
    required: bool


@dataclass(frozen=True)
class OperationTool:
    name: str
    method: str
    path: str
    operation_id: str | None
    tags: tuple[str, ...]
    description: str
    input_schema: dict[str, Any] = field(repr=False)
    params: tuple[ParamSpec, ...]
    body: BodySpec | None
    # Alternatives of security requirements (any one suffices); empty means none needed.
    security: tuple[dict[str, list[str]], ...]

    @cached_property
    def validator(self) -> Draft202012Validator:
        """Checks a call's arguments; built on first use and kept with the tool (tool lists are cached
        per spec version), not rebuilt on every call."""
        return Draft202012Validator(self.input_schema)


def tool_name(operation_id: str | None, method: str, path: str) -> str:
    raw = operation_id or f"{method}_{path}"
    name = TOOL_NAME_BAD.sub("_", raw.replace("{", "").replace("}", "")).strip("_-")
    name = re.sub(r"_{2,}", "_", name)  # `__` separates the alias on /mcp; keep it out of tool names
    return (name or method)[:MAX_TOOL_NAME]


def _unique(name: str, taken: set[str]) -> str:
    candidate, counter = name, 2
    while candidate in taken:
        suffix = f"_{counter}"
        candidate, counter = name[: MAX_TOOL_NAME - len(suffix)] + suffix, counter + 1
    taken.add(candidate)
    return candidate


def _selected(
    operation: dict[str, Any], name: str, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> bool:
    labels = {name, *(str(tag) for tag in operation.get("tags") or [])}
    if operation.get("operationId"):
        labels.add(str(operation["operationId"]))
    if include and not labels & set(include):
        return False
    return not (exclude and labels & set(exclude))


def build_tools(
    document: dict[str, Any], *, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> list[OperationTool]:
    """Raises InvalidSpecError when an operation cannot become a tool (e.g. a schema too large once
    inlined)."""
    taken: set[str] = set()
    tools: list[OperationTool] = []
    problems: list[str] = []
    openapi_30 = str(document.get("openapi", "")).startswith("3.0")
    default_security = document.get("security") or []
    for path, path_item in (document.get("paths") or {}).items():
        if not isinstance(path_item, dict):
            continue
        item = resolve(document, path_item)
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            # Made unique before filtering, so a tool keeps its name whatever the filters leave out.
            name = _unique(tool_name(operation.get("operationId"), method, path), taken)
            if not _selected(operation, name, include, exclude):
                continue
            try:
                tools.append(
                    _operation_tool(
                        document,
                        Inliner(document, openapi_30=openapi_30),
                        name=name,
                        method=method,
                        path=str(path),
                        operation=operation,
                        shared_params=item.get("parameters") or [],
                        default_security=default_security,
                    )
                )
            except InvalidSpecError as exc:
                problems.extend(f"{method.upper()} {path}: {problem}" for problem in exc.problems)
    if problems:
        raise InvalidSpecError(problems[:20])
    return tools


def _operation_tool(
    document: dict[str, Any],
    inliner: Inliner,
    *,
    name: str,
    method: str,
    path: str,
    operation: dict[str, Any],
    shared_params: list[Any],
    default_security: list[Any],
) -> OperationTool:
    properties: dict[str, Any] = {}
    required: list[str] = []
    params: list[ParamSpec] = []
    for raw in _merged_parameters(document, shared_params, operation.get("parameters") or []):
        location = str(raw.get("in"))
        wire_name = str(raw.get("name"))
        if location == "header" and wire_name.lower() in IGNORED_HEADERS:
            continue
        arg = _unique_arg(wire_name, location, properties)
        schema, as_json = _parameter_schema(raw, inliner)
        if raw.get("description") and isinstance(schema, dict) and "description" not in schema:
            schema = {**schema, "description": str(raw["description"])}
        is_required = location == "path" or bool(raw.get("required"))
        properties[arg] = schema
        if is_required:
            required.append(arg)
        params.append(
            ParamSpec(
                arg=arg,
                name=wire_name,
                location=location,
                style=str(raw.get("style") or ("form" if location in ("query", "cookie") else "simple")),
                explode=bool(
                    raw.get("explode", raw.get("style", "form") == "form" and location in ("query", "cookie"))
                ),
                required=is_required,
                as_json=as_json,
            )
        )
    body = _body(document, operation, inliner, properties)
    if body is not None:
        spec, schema = body
        properties[spec.arg] = schema
        if spec.required:
            required.append(spec.arg)
    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    if inliner.defs:
        input_schema["$defs"] = dict(inliner.defs)
    security = operation.get("security", default_security)
    return OperationTool(
        name=name,
        method=method,
        path=path,
        operation_id=str(operation["operationId"]) if operation.get("operationId") else None,
        tags=tuple(str(tag) for tag in operation.get("tags") or []),
        description=_description(operation, method, path),
        input_schema=input_schema,
        params=tuple(params),
        body=body[0] if body is not None else None,
        security=tuple(entry for entry in security or [] if isinstance(entry, dict)),
    )


def _unique_arg(wire_name: str, location: str, taken: dict[str, Any]) -> str:
    """The parameter's name, or `{in}_{name}` when another location (or the body) already uses it."""
    arg = wire_name if wire_name not in taken and wire_name != BODY_ARG else f"{location}_{wire_name}"
    counter = 2
    while arg in taken:
        arg, counter = f"{location}_{wire_name}_{counter}", counter + 1
    return arg


def _merged_parameters(
    document: dict[str, Any], shared: Iterable[Any], own: Iterable[Any]
) -> list[dict[str, Any]]:
    """Path-item parameters overridden by the operation's own of the same name and location."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in [*shared, *own]:
        param = resolve(document, raw)
        if isinstance(param, dict) and param.get("in") in ("path", "query", "header", "cookie"):
            merged[(str(param["in"]), str(param.get("name")))] = param
    return list(merged.values())


def _parameter_schema(param: dict[str, Any], inliner: Inliner) -> tuple[Any, bool]:
    if "schema" in param:
        return inliner.schema(param["schema"]), False
    content = param.get("content") or {}
    for media_type, media in content.items():
        if isinstance(media, dict):
            return inliner.schema(media.get("schema") or {}), _is_json(media_type)
    return {"type": "string"}, False


def _is_json(media_type: str) -> bool:
    base = media_type.split(";", 1)[0].strip().lower()
    return base == "application/json" or base.endswith("+json")


def _body(
    document: dict[str, Any], operation: dict[str, Any], inliner: Inliner, properties: dict[str, Any]
) -> tuple[BodySpec, Any] | None:
    raw = operation.get("requestBody")
    if not isinstance(raw, dict):
        return None
    request_body = resolve(document, raw)
    content = request_body.get("content") or {}
    chosen = next((media_type for media_type in content if _is_json(media_type)), None)
    if chosen is None:
        chosen = next(
            (m for m in content if m.split(";")[0].strip() == "application/x-www-form-urlencoded"), None
        )
    if chosen is None:
        chosen = next((m for m in content if m.startswith("text/")), None)
    if chosen is None:
        return None  # binary uploads are not something a tool argument can carry
    media = content[chosen] if isinstance(content[chosen], dict) else {}
    schema = (
        inliner.schema(media.get("schema") or {})
        if _is_json(chosen) or "form" in chosen
        else {"type": "string"}
    )
    if request_body.get("description") and isinstance(schema, dict) and "description" not in schema:
        schema = {**schema, "description": str(request_body["description"])}
    arg = BODY_ARG if BODY_ARG not in properties else "request_body"
    return BodySpec(arg=arg, media_type=chosen, required=bool(request_body.get("required"))), schema


def _description(operation: dict[str, Any], method: str, path: str) -> str:
    parts = [str(operation[key]).strip() for key in ("summary", "description") if operation.get(key)]
    text = "\n\n".join(dict.fromkeys(parts)) or f"{method.upper()} {path}"
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 3] + "..."
