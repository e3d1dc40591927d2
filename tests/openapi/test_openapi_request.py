"""Request building: parameters serialised per their OpenAPI style, the credential applied last, and the
request kept under the API's base URL."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from mcp_hub.openapi.auth import Placement
from mcp_hub.openapi.request import ToolCallError, build_request
from mcp_hub.openapi.tools import build_tools

PARAMETERS: list[dict[str, Any]] = [
    {"name": "id", "in": "path", "required": True, "schema": {"type": "array", "items": {"type": "string"}}},
    {"name": "ids", "in": "query", "schema": {"type": "array", "items": {"type": "integer"}}},
    {
        "name": "csv",
        "in": "query",
        "explode": False,
        "schema": {"type": "array", "items": {"type": "string"}},
    },
    {"name": "piped", "in": "query", "style": "pipeDelimited", "explode": False, "schema": {"type": "array"}},
    {"name": "filter", "in": "query", "style": "deepObject", "explode": True, "schema": {"type": "object"}},
    {"name": "flag", "in": "query", "schema": {"type": "boolean"}},
    {"name": "json", "in": "query", "content": {"application/json": {"schema": {"type": "object"}}}},
    {"name": "X-Tags", "in": "header", "schema": {"type": "array"}},
    {"name": "Authorization", "in": "header", "schema": {"type": "string"}},
    {"name": "theme", "in": "cookie", "schema": {"type": "string"}},
]


def make_tool(
    path: str = "/items/{id}", parameters: list[dict[str, Any]] | None = None, body: Any = None
) -> Any:
    operation: dict[str, Any] = {"operationId": "op", "parameters": parameters or PARAMETERS, "responses": {}}
    if body is not None:
        operation["requestBody"] = body
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {path: {"post": operation}},
    }
    return build_tools(document, include=None, exclude=None)[0]


@pytest.fixture
async def client() -> Any:
    async with httpx2.AsyncClient() as http:
        yield http


async def test_styles(client: httpx2.AsyncClient) -> None:
    tool = make_tool()
    # The spec's own Authorization header parameter is not a tool argument (OpenAPI ignores it too).
    assert "Authorization" not in tool.input_schema["properties"]
    request = build_request(
        client,
        tool,
        "https://api.example.com/v1",
        {
            "id": ["a b", "c/d"],
            "ids": [1, 2],
            "csv": ["x", "y"],
            "piped": ["p", "q"],
            "filter": {"color": "red", "size": "L"},
            "flag": True,
            "json": {"k": 1},
            "X-Tags": ["t1", "t2"],
            "theme": "dark mode",
        },
        Placement(headers={"Authorization": "Bearer secret"}, query={"api_key": "k"}),
    )
    assert request.url.raw_path.split(b"?")[0] == b"/v1/items/a%20b,c%2Fd"
    assert list(request.url.params.multi_items()) == [
        ("ids", "1"),
        ("ids", "2"),
        ("csv", "x,y"),
        ("piped", "p|q"),
        ("filter[color]", "red"),
        ("filter[size]", "L"),
        ("flag", "true"),
        ("json", '{"k":1}'),
        ("api_key", "k"),
    ]
    assert request.headers["X-Tags"] == "t1,t2"
    assert request.headers["Authorization"] == "Bearer secret"
    assert request.headers["Cookie"] == "theme=dark%20mode"


async def test_bodies(client: httpx2.AsyncClient) -> None:
    json_tool = make_tool(
        "/x", [], {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    )
    request = build_request(
        client, json_tool, "https://api.example.com", {"body": {"a": [1, None]}}, Placement()
    )
    assert (request.headers["Content-Type"], request.content) == ("application/json", b'{"a":[1,null]}')
    form_tool = make_tool(
        "/x", [], {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}
    )
    request = build_request(
        client, form_tool, "https://api.example.com", {"body": {"q": "a b", "n": 2}}, Placement()
    )
    assert request.content == b"q=a+b&n=2"


async def test_label_and_matrix_paths_and_line_breaks(client: httpx2.AsyncClient) -> None:
    label = make_tool(
        "/l/{v}", [{"name": "v", "in": "path", "required": True, "style": "label", "schema": {}}]
    )
    assert (
        build_request(client, label, "https://h", {"v": ["a", "b"]}, Placement()).url.raw_path == b"/l/.a,b"
    )
    matrix = make_tool(
        "/m/{v}", [{"name": "v", "in": "path", "required": True, "style": "matrix", "schema": {}}]
    )
    assert build_request(client, matrix, "https://h", {"v": "x"}, Placement()).url.raw_path == b"/m/;v=x"
    dots = make_tool("/d/{a}{b}", [{"name": n, "in": "path", "required": True, "schema": {}} for n in "ab"])
    # Two harmless values that together would form a `..` segment.
    assert (
        build_request(client, dots, "https://h/api", {"a": ".", "b": "."}, Placement()).url.raw_path
        == b"/api/d/%2E%2E"
    )
    header = make_tool("/h", [{"name": "X-Note", "in": "header", "schema": {"type": "string"}}])
    with pytest.raises(ToolCallError, match="line break"):
        build_request(client, header, "https://h", {"X-Note": "a\r\nX-Injected: 1"}, Placement())
    with pytest.raises(ToolCallError, match="must be ASCII text"):
        build_request(client, header, "https://h", {"X-Note": "snow \u2603"}, Placement())


async def test_an_empty_path_value_is_refused(client: httpx2.AsyncClient) -> None:
    """`DELETE /notes/{id}` with an empty id would be `DELETE /notes/`, the collection."""
    tool = make_tool("/notes/{id}", [{"name": "id", "in": "path", "required": True, "schema": {}}])
    for empty in ("", []):
        with pytest.raises(ToolCallError, match="path parameter 'id' is empty"):
            build_request(client, tool, "https://h", {"id": empty}, Placement())
    assert build_request(client, tool, "https://h", {"id": 0}, Placement()).url.raw_path == b"/notes/0"


async def test_no_parameter_rides_beside_the_credential(client: httpx2.AsyncClient) -> None:
    """A spec whose parameters share the credential's names (a header in another case, the same query
    name): only the credential is sent, not the caller's value next to it for the API to pick first."""
    tool = make_tool(
        "/x",
        [
            {"name": "x-api-key", "in": "header", "schema": {"type": "string"}},
            {"name": "api_key", "in": "query", "schema": {"type": "string"}},
            {"name": "other", "in": "query", "schema": {"type": "string"}},
        ],
    )
    request = build_request(
        client,
        tool,
        "https://h",
        {"x-api-key": "forged", "api_key": "forged", "other": "kept"},
        Placement(headers={"X-API-Key": "secret"}, query={"api_key": "k"}),
    )
    assert request.headers.get_list("x-api-key") == ["secret"]
    assert list(request.url.params.multi_items()) == [("other", "kept"), ("api_key", "k")]
