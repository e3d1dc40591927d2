"""Specs other than the test API's: two real-world-style documents load and give sensible tools, and the
document rules (safe YAML, version, filters, names) hold. No hub needed: the runtime's `load` is what the
admin API and the CLI call."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from mcp_hub.credentials.netguard import UrlGuard
from mcp_hub.errors import InvalidSpecError
from mcp_hub.openapi.loader import parse_document
from mcp_hub.openapi.request import ToolCallError, check_arguments
from mcp_hub.openapi.runtime import OpenApiRuntime
from mcp_hub.openapi.tools import build_tools, tool_name
from tests.openapi.conftest import SPECS


async def public_dns(host: str, port: int) -> list[str]:
    """DNS cannot be reached from the test machine; the spec hosts stand for a public address."""
    return ["93.184.215.14"]


@pytest.fixture
async def runtime() -> AsyncIterator[OpenApiRuntime]:
    runtime = OpenApiRuntime(
        UrlGuard.from_list([], resolver=public_dns),
        max_spec_bytes=1024 * 1024,
        max_response_bytes=1024 * 1024,
        spec_deadline_seconds=5,
        connect_timeout=5,
    )
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def load(runtime: OpenApiRuntime, path: Path, **kwargs: Any) -> Any:
    return await runtime.load(
        str(path), headers={}, base_url_override=kwargs.pop("base_url", None), file_roots=None, **kwargs
    )


async def test_petstore_expanded_openapi_3_0_yaml(runtime: OpenApiRuntime) -> None:
    loaded = await load(runtime, SPECS / "petstore_expanded.yaml")
    assert loaded.base_url == "https://petstore.swagger.io/api"
    tools = {tool.name: tool for tool in build_tools(loaded.document, include=None, exclude=None)}
    assert loaded.tool_count == 4
    assert list(tools) == ["findPets", "addPet", "find_pet_by_id", "deletePet"]
    assert tools["findPets"].input_schema["properties"]["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "tags to filter by",
    }
    assert "required" not in tools["findPets"].input_schema
    # 3.0's `nullable: true` becomes a JSON Schema type list.
    assert tools["addPet"].input_schema["properties"]["body"]["properties"]["tag"] == {
        "type": ["string", "null"]
    }
    assert tools["addPet"].input_schema["required"] == ["body"]
    assert tools["find_pet_by_id"].input_schema["required"] == ["id"]
    assert tools["deletePet"].description == "deletes a single pet based on the ID supplied"
    assert tools["findPets"].description.startswith("Returns all pets")


async def test_issue_tracker_openapi_3_1_yaml(runtime: OpenApiRuntime) -> None:
    loaded = await load(runtime, SPECS / "issue_tracker.yaml")
    # The server URL's variable at its default.
    assert loaded.base_url == "https://api.tracker.example/v3"
    tools = {tool.name: tool for tool in build_tools(loaded.document, include=None, exclude=None)}
    assert loaded.tool_count == 7
    assert set(tools) == {
        "issues_list-for-repo",
        "issues_create",
        "issues_get",
        "issues_update",
        "get_repos_owner_repo_issues_issue_number_comments",  # no operationId: method + path
        "issues_create-comment",
        "rate-limit_get",
    }
    get = tools["issues_get"]
    # Path-item parameters ($ref'd) apply to each operation, all required.
    assert get.input_schema["required"] == ["owner", "repo", "issue_number"]
    assert get.input_schema["properties"]["owner"]["description"] == "The account owner of the repository"
    create = tools["issues_create"].input_schema
    # A $ref'd request body, with a nested $ref inside a oneOf.
    assert create["properties"]["body"]["required"] == ["title"]
    assert create["properties"]["body"]["properties"]["labels"]["items"]["oneOf"][1]["properties"][
        "color"
    ] == {"type": ["string", "null"]}
    listing = tools["issues_list-for-repo"].input_schema["properties"]
    assert listing["state"]["enum"] == ["open", "closed", "all"]
    assert listing["per_page"] == {"type": "integer", "default": 30, "maximum": 100}
    assert tools["issues_list-for-repo"].security == ({"bearer": []},)
    assert tools["rate-limit_get"].security == ()


async def test_include_and_exclude_by_tag_or_operation_id(runtime: OpenApiRuntime) -> None:
    document = (await load(runtime, SPECS / "issue_tracker.yaml")).document
    names = lambda **kw: [t.name for t in build_tools(document, **kw)]  # noqa: E731
    assert names(include=["comments"], exclude=None) == [
        "get_repos_owner_repo_issues_issue_number_comments",
        "issues_create-comment",
    ]
    assert names(include=["issues", "rate-limit/get"], exclude=["issues/update"]) == [
        "issues_list-for-repo",
        "issues_create",
        "issues_get",
        "rate-limit_get",
    ]
    assert names(include=None, exclude=["issues", "comments"]) == ["rate-limit_get"]


def test_tool_names_follow_the_mcp_rules_and_stay_unique() -> None:
    assert tool_name("list pets (v2)!", "get", "/x") == "list_pets_v2"
    assert tool_name(None, "get", "/users/{id}/repos") == "get_users_id_repos"
    assert tool_name("a__b", "get", "/") == "a_b"  # `__` is the hub's alias separator
    assert tool_name("pets.list", "get", "/") == "pets_list"  # clients such as Claude refuse dots
    assert len(tool_name("x" * 300, "get", "/")) == 64
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/a": {"get": {"operationId": "same thing", "responses": {}}},
            "/b": {"get": {"operationId": "same_thing", "responses": {}}},
            "/c": {"get": {"operationId": "same-thing", "responses": {}}},
        },
    }
    assert [t.name for t in build_tools(document, include=None, exclude=None)] == [
        "same_thing",
        "same_thing_2",
        "same-thing",
    ]
    # Filters never rename what they keep.
    assert [t.name for t in build_tools(document, include=None, exclude=["same thing"])] == [
        "same_thing_2",
        "same-thing",
    ]


def test_yaml_is_loaded_safely() -> None:
    with pytest.raises(InvalidSpecError, match="not valid JSON or YAML"):
        parse_document(b"openapi: !!python/object/apply:os.system ['touch /tmp/pwned']\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(InvalidSpecError, match="more than"):
        parse_document(bomb.encode())
    # YAML's integer keys and dates come out as JSON strings.
    assert parse_document(b"responses:\n  200: {description: ok}\nwhen: 2026-01-01\n") == {
        "responses": {"200": {"description": "ok"}},
        "when": "2026-01-01",
    }


async def test_invalid_documents_list_their_problems(runtime: OpenApiRuntime, tmp_path: Path) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(
        json.dumps(
            {
                "openapi": "3.0.3",
                "info": {"title": "t"},
                "paths": {"/items/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}},
            }
        )
    )
    with pytest.raises(InvalidSpecError) as raised:
        await load(runtime, spec, base_url="https://api.example.com")
    problems = " | ".join(raised.value.problems)
    assert "version" in problems  # info.version missing
    spec.write_text("{not json")
    with pytest.raises(InvalidSpecError, match="not valid JSON"):
        await load(runtime, spec)


async def test_a_schema_that_would_expand_exponentially_is_refused(
    runtime: OpenApiRuntime, tmp_path: Path
) -> None:
    schemas = {"S0": {"type": "string"}}
    for level in range(1, 12):
        schemas[f"S{level}"] = {
            "type": "object",
            "properties": {f"p{i}": {"$ref": f"#/components/schemas/S{level - 1}"} for i in range(4)},
        }
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://api.example.com"}],
        "components": {"schemas": schemas},
        "paths": {
            "/p": {
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/S11"}}}
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    spec = tmp_path / "wide.json"
    spec.write_text(json.dumps(document))
    with pytest.raises(InvalidSpecError, match="expands to more than"):
        await load(runtime, spec)


def test_openapi_3_0_schemas_become_json_schema_2020_12() -> None:
    """3.0's boolean `exclusiveMinimum`, `nullable` (with an enum), read only where they are schema
    keywords: a property called `nullable` and an example are data."""
    document = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/things": {
                "post": {
                    "operationId": "addThing",
                    "parameters": [
                        {
                            "name": "count",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 0,
                                "exclusiveMinimum": True,
                                "maximum": 10,
                                "exclusiveMaximum": False,
                            },
                        }
                    ],
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "properties": {
                        "nullable": {"type": "boolean"},
                        "status": {"type": "string", "enum": ["on", "off"], "nullable": True},
                    },
                    "example": {"nullable": True, "status": None},
                }
            }
        },
    }
    tool = build_tools(document, include=None, exclude=None)[0]
    assert tool.input_schema["properties"]["count"] == {
        "type": "integer",
        "exclusiveMinimum": 0,
        "maximum": 10,
    }
    assert tool.input_schema["properties"]["body"] == {
        "type": "object",
        "properties": {
            "nullable": {"type": "boolean"},
            "status": {"type": ["string", "null"], "enum": ["on", "off", None]},
        },
        "example": {"nullable": True, "status": None},
    }
    check_arguments(tool, {"count": 1, "body": {"nullable": False, "status": None}})
    with pytest.raises(ToolCallError, match="less than or equal to the minimum of 0"):
        check_arguments(tool, {"count": 0})


async def test_a_large_spec_is_read_off_the_event_loop(runtime: OpenApiRuntime, tmp_path: Path) -> None:
    """Parsing a large YAML spec takes a while; the hub's other requests run meanwhile."""
    spec = tmp_path / "large.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "openapi": "3.1.0",
                "info": {"title": "t", "version": "1"},
                "servers": [{"url": "https://api.example.com"}],
                "paths": {
                    "/ping": {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}
                },
                "x-examples": [f"value-{index}" for index in range(60_000)],
            }
        )
    )
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await anyio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        loaded = await load(runtime, spec)
        tg.cancel_scope.cancel()
    assert loaded.tool_count == 1
    # Parsed on the loop, this YAML (0.8 MB) stalls the ticker for the whole parse (1.5 s or more here).
    assert max(gaps) < 0.75, max(gaps)
