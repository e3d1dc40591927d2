"""Attacks that must fail: path parameters that try to leave their segment, specs that point the hub at
link-local addresses or files, an oversized response, a `$ref` cycle; and a call that runs out of time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.gateway.clients import shttp_session
from tests.gateway.conftest import RunningHub
from tests.openapi.conftest import RESPONSE_CAP, SPECS, RestApi

PATH_ATTACKS = [
    "..",
    "../admin/secret",
    "%2e%2e",
    "%2e%2e%2fadmin%2fsecret",
    "..%2Fadmin%2Fsecret",
    "//other-host/x",
    "evil@other-host",
    "a/b",
    "a%2Fb",
    "x?y=1#z",
    ".",
]


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def _public_notes(hub: RunningHub, rest_api: RestApi, **fields: Any) -> str:
    await hub.add_server(
        "notes", transport="http", spec_location=rest_api.spec_url, access="public", **fields
    )
    return f"{hub.url}/mcp/notes"


@pytest.mark.parametrize("value", PATH_ATTACKS)
async def test_path_parameters_stay_inside_their_segment(
    openapi_hub: RunningHub, rest_api: RestApi, value: str
) -> None:
    url = await _public_notes(openapi_hub, rest_api)
    async with shttp_session(url, None) as session:
        result = await session.call_tool("getFile", {"name": value})
    # Exactly one request reached the API, at /files/ plus one segment (an encoded slash is data).
    assert len(rest_api.state.hits) == 2, rest_api.state.hits
    raw_path = rest_api.state.hits[1]
    assert raw_path.startswith("/files/") and "/" not in raw_path[len("/files/") :]
    if "/" in value:
        # Starlette routes on the decoded path, so an encoded slash makes no route match: a 404 from
        # the API, never a request to another path.
        assert result.is_error and text(result).startswith("HTTP 404"), text(result)
    else:
        assert not result.is_error, text(result)
        # The API received the value unchanged.
        assert json.loads(text(result)) == {"name": value, "raw_path": raw_path}


async def test_a_100_mb_response_is_cut_off_at_the_cap(openapi_hub: RunningHub, rest_api: RestApi) -> None:
    url = await _public_notes(openapi_hub, rest_api)
    async with shttp_session(url, None) as session:
        started = time.monotonic()
        result = await session.call_tool("huge", {})
        elapsed = time.monotonic() - started
        assert result.is_error
        assert f"larger than {RESPONSE_CAP} bytes" in text(result)
        # The hub stopped reading at the cap instead of draining 100 MB.
        assert rest_api.state.streamed < 100 * 1024 * 1024 / 4
        assert elapsed < 10
        # The session (and the pooled client) still work afterwards.
        after = await session.call_tool("getFile", {"name": "ok"})
        assert not after.is_error


async def test_a_slow_api_hits_the_total_deadline(openapi_hub: RunningHub, rest_api: RestApi) -> None:
    url = await _public_notes(openapi_hub, rest_api, timeout_seconds=1)
    async with shttp_session(url, None) as session:
        started = time.monotonic()
        with pytest.raises(MCPError, match=r"did not answer within 1s"):
            await session.call_tool("slow", {"seconds": 5})
        assert time.monotonic() - started < 4
        # The session is still usable.
        assert not (await session.call_tool("getFile", {"name": "ok"})).is_error


def _spec(**overrides: Any) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://api.example.com"}],
        "paths": {"/ping": {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}},
        **overrides,
    }


async def _create(hub: RunningHub, spec_path: Path, **fields: Any) -> tuple[int, Any]:
    response = await hub.admin.post(
        "/v1/servers",
        json={"name": spec_path.stem, "transport": "http", "spec_location": str(spec_path), **fields},
    )
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("label", "spec", "expected"),
    [
        ("link_local_server", _spec(servers=[{"url": "http://169.254.169.254/latest"}]), "link-local"),
        ("mapped_link_local", _spec(servers=[{"url": "http://[::ffff:169.254.169.254]/"}]), "link-local"),
        ("file_server", _spec(servers=[{"url": "file:///etc/passwd"}]), "only http and https"),
        (
            "file_ref",
            _spec(paths={"/p": {"get": {"parameters": [{"$ref": "file:///etc/passwd"}], "responses": {}}}}),
            "points outside the document",
        ),
        (
            "link_local_ref",
            _spec(
                paths={
                    "/p": {
                        "post": {
                            "requestBody": {
                                "content": {
                                    "application/json": {"schema": {"$ref": "http://169.254.169.254/x.json"}}
                                }
                            },
                            "responses": {},
                        }
                    }
                }
            ),
            "points outside the document",
        ),
        (
            "ref_cycle",
            _spec(
                components={
                    "schemas": {
                        "A": {"$ref": "#/components/schemas/B"},
                        "B": {"$ref": "#/components/schemas/A"},
                    }
                },
                paths={
                    "/p": {
                        "post": {
                            "requestBody": {
                                "content": {
                                    "application/json": {"schema": {"$ref": "#/components/schemas/A"}}
                                }
                            },
                            "responses": {},
                        }
                    }
                },
            ),
            "$ref cycle",
        ),
        (
            # Each reference followed to its end: N chained ones cost N^2 steps (N^3 with the cycle
            # check), so a megabyte of them would hold a worker for hours.
            "ref_chain",
            _spec(
                components={
                    "schemas": {
                        **{f"S{i}": {"$ref": f"#/components/schemas/S{i + 1}"} for i in range(400)},
                        "S400": {"type": "string"},
                    }
                },
                paths={
                    "/p": {
                        "post": {
                            "requestBody": {
                                "content": {
                                    "application/json": {"schema": {"$ref": "#/components/schemas/S0"}}
                                }
                            },
                            "responses": {},
                        }
                    }
                },
            ),
            "starts a chain of more than 32 references",
        ),
        (
            "swagger2",
            {"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {}},
            "only OpenAPI 3.0 and 3.1",
        ),
    ],
)
async def test_unsafe_or_broken_specs_are_refused(
    openapi_hub: RunningHub, rest_api: RestApi, label: str, spec: dict[str, Any], expected: str
) -> None:
    path = SPECS / f"attack_{label}.json"
    path.write_text(json.dumps(spec))
    try:
        status, body = await _create(openapi_hub, path)
    finally:
        path.unlink()
    assert status == 422, body
    messages = [item["msg"] for item in body["detail"]]
    assert any(expected in message for message in messages), messages
    assert all(item["loc"] == ["body", "spec_location"] for item in body["detail"])
    assert rest_api.state.hits == []
    assert (await openapi_hub.admin.get("/v1/servers")).json()["items"] == []


async def test_a_link_local_base_url_override_is_refused(openapi_hub: RunningHub, rest_api: RestApi) -> None:
    response = await openapi_hub.admin.post(
        "/v1/servers",
        json={
            "name": "meta",
            "transport": "http",
            "spec_location": rest_api.spec_url,
            "openapi_base_url": "http://169.254.169.254/",
        },
    )
    assert response.status_code == 422
    assert "link-local" in response.json()["detail"][0]["msg"]


async def test_a_spec_url_on_a_refused_network_is_not_fetched(openapi_hub: RunningHub) -> None:
    response = await openapi_hub.admin.post(
        "/v1/servers",
        json={"name": "meta", "transport": "http", "spec_location": "http://169.254.169.254/openapi.json"},
    )
    assert response.status_code == 422
    assert "link-local" in response.json()["detail"][0]["msg"]


async def test_files_outside_the_spec_dirs_are_refused_over_the_api(
    openapi_hub: RunningHub, tmp_path: Path
) -> None:
    outside = tmp_path / "spec.json"
    outside.write_text(json.dumps(_spec()))
    status, body = await _create(openapi_hub, outside)
    assert status == 422
    assert "MCP_HUB_OPENAPI_SPEC_DIRS" in body["detail"][0]["msg"]
    traversal = SPECS / ".." / ".." / ".." / outside.relative_to("/")
    status, body = await _create(openapi_hub, traversal)
    assert status == 422 and "MCP_HUB_OPENAPI_SPEC_DIRS" in body["detail"][0]["msg"]
