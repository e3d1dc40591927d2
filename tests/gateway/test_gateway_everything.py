"""`@modelcontextprotocol/server-everything` (npm) as an upstream over stdio, streamable HTTP and SSE:
what the hub's `/mcp/{server}` gives equals what the server gives directly, and `/mcp` gives the same
under prefixed names and wrapped URIs."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.gateway.clients import shttp_session, sse_session
from tests.gateway.conftest import RunningHub
from tests.mcp_peers.procs import NODE_EVERYTHING, everything_upstream

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not NODE_EVERYTHING.exists(), reason="needs node and server-everything"
)

# Deterministic tools and the arguments to call them with; the others toggle server state, depend on
# the process environment or need a human (elicitation), so comparing two runs of them means nothing.
TOOL_CALLS: dict[str, dict[str, Any]] = {
    "echo": {"message": "hello hub"},
    "get-sum": {"a": 2, "b": 40},
    "get-tiny-image": {},
    "get-annotated-message": {"messageType": "success", "includeImage": True},
    "get-resource-links": {"count": 2},
    "get-resource-reference": {"resourceType": "Text", "resourceId": 3},
    "get-structured-content": {"location": "Chicago"},
}


CREATED_AT = re.compile(r"created at \d{1,2}:\d{2}:\d{2}\s?[AP]M")


def normalized(value: Any) -> Any:
    """The dynamic resources say when they were made; everything else must match byte for byte."""
    if isinstance(value, dict):
        return {
            key: base64.b64encode(
                CREATED_AT.sub("created at T", base64.b64decode(item).decode()).encode()
            ).decode()
            if key == "blob" and isinstance(item, str)
            else normalized(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalized(item) for item in value]
    if isinstance(value, str):
        return CREATED_AT.sub("created at T", value)
    return value


async def snapshot(session: ClientSession) -> dict[str, Any]:
    """Everything the server lists, and the answers of the deterministic calls, as plain data."""
    tools = await session.list_tools()
    resources = await session.list_resources()
    templates = await session.list_resource_templates()
    prompts = await session.list_prompts()
    reads = {str(r.uri): (await session.read_resource(r.uri)).model_dump() for r in resources.resources}
    for template_uri in ("demo://resource/dynamic/text/1", "demo://resource/dynamic/blob/2"):
        reads[template_uri] = (await session.read_resource(template_uri)).model_dump()
    calls = {name: (await session.call_tool(name, args)).model_dump() for name, args in TOOL_CALLS.items()}
    prompt_answers = {
        "simple-prompt": (await session.get_prompt("simple-prompt")).model_dump(),
        "args-prompt": (
            await session.get_prompt("args-prompt", {"city": "Lyon", "state": "Rhone"})
        ).model_dump(),
        "resource-prompt": (
            await session.get_prompt("resource-prompt", {"resourceType": "Text", "resourceId": "2"})
        ).model_dump(),
    }
    completions = {
        "prompt": (
            await session.complete(
                types.PromptReference(type="ref/prompt", name="completable-prompt"),
                {"name": "department", "value": "E"},
            )
        ).model_dump(),
        "template": (
            await session.complete(
                types.ResourceTemplateReference(
                    type="ref/resource", uri="demo://resource/dynamic/text/{resourceId}"
                ),
                {"name": "resourceId", "value": "1"},
            )
        ).model_dump(),
    }
    return normalized(
        {
            "completions": completions,
            "tools": [t.model_dump() for t in tools.tools],
            "resources": [r.model_dump() for r in resources.resources],
            "templates": [t.model_dump() for t in templates.resource_templates],
            "prompts": [p.model_dump() for p in prompts.prompts],
            "reads": reads,
            "calls": calls,
            "prompt_answers": prompt_answers,
        }
    )


async def _decline_sampling(
    context: ClientRequestContext, params: types.CreateMessageRequestParams
) -> types.ErrorData:
    return types.ErrorData(code=types.INVALID_REQUEST, message="no model here")


async def _decline_elicitation(
    context: ClientRequestContext, params: types.ElicitRequestParams
) -> types.ElicitResult:
    return types.ElicitResult(action="decline")


async def _no_roots(context: ClientRequestContext) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[])


# server-everything offers some tools only to clients that can sample, elicit or list roots. The hub's
# upstream sessions declare all three (it relays them), so the direct client must too for the
# listings to be comparable.
LIKE_THE_HUB: dict[str, Any] = {
    "sampling_callback": _decline_sampling,
    "elicitation_callback": _decline_elicitation,
    "list_roots_callback": _no_roots,
}


@asynccontextmanager
async def direct_stdio() -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command="node", args=[str(NODE_EVERYTHING), "stdio"])
    async with stdio_client(params) as (read, write), ClientSession(read, write, **LIKE_THE_HUB) as session:
        await session.initialize()
        yield session


@pytest.fixture
def everything_http() -> Iterator[str]:
    with everything_upstream("streamableHttp") as url:
        yield url


@pytest.fixture
def everything_sse() -> Iterator[str]:
    with everything_upstream("sse") as url:
        yield url


def differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Where two snapshots differ, as readable paths (a plain == on them would print nothing useful)."""
    if isinstance(left, dict) and isinstance(right, dict):
        return [
            d
            for key in sorted(set(left) | set(right), key=str)
            for d in differences(left.get(key), right.get(key), f"{path}.{key}")
        ]
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [
            d
            for i, (a, b) in enumerate(zip(left, right, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if left == right else [f"{path}: {left!r:.200} != {right!r:.200}"]


async def _compare(hub: RunningHub, direct: dict[str, Any]) -> None:
    key = await hub.add_key(await hub.add_user("vera"))
    # On /mcp/{server} with a streamable-HTTP upstream the hub forwards the client's own initialize, so
    # the upstream sees this client's capabilities: declare what the direct client declared.
    async with shttp_session(f"{hub.url}/mcp/everything", key, **LIKE_THE_HUB) as session:
        assert differences(await snapshot(session), direct) == []
    async with sse_session(f"{hub.url}/mcp/everything/sse", key, **LIKE_THE_HUB) as session:
        assert differences(await snapshot(session), direct) == []
    async with shttp_session(f"{hub.url}/mcp", key) as session:
        prefixed = {tool.name for tool in (await session.list_tools()).tools}
        assert prefixed == {f"everything__{tool['name']}" for tool in direct["tools"]}
        answer = await session.call_tool("everything__get-sum", {"a": 2, "b": 40})
        assert answer.model_dump() == direct["calls"]["get-sum"]
        read = await session.read_resource("mcp-hub://everything/demo://resource/dynamic/text/1")
        expected = direct["reads"]["demo://resource/dynamic/text/1"]["contents"][0]
        completed = await session.complete(
            types.PromptReference(type="ref/prompt", name="everything__completable-prompt"),
            {"name": "department", "value": "E"},
        )
        assert completed.model_dump() == direct["completions"]["prompt"]
        completed = await session.complete(
            types.ResourceTemplateReference(
                type="ref/resource", uri="mcp-hub://everything/demo://resource/dynamic/text/{resourceId}"
            ),
            {"name": "resourceId", "value": "1"},
        )
        assert completed.model_dump() == direct["completions"]["template"]
        links = await session.call_tool("everything__get-resource-links", {"count": 2})
        uris = [str(block.uri) for block in links.content if isinstance(block, types.ResourceLink)]
        assert len(uris) == 2 and all(uri.startswith("mcp-hub://everything/") for uri in uris)
        assert (await session.read_resource(uris[0])).contents[0].uri == uris[0]
        shown = normalized(read.contents[0].model_dump())
        assert shown == {**expected, "uri": "mcp-hub://everything/demo://resource/dynamic/text/1"}


async def test_everything_over_stdio(hub_server: RunningHub) -> None:
    async with direct_stdio() as session:
        direct = await snapshot(session)
    await hub_server.add_server(
        "everything", transport="stdio", command="node", args=[str(NODE_EVERYTHING), "stdio"]
    )
    await _compare(hub_server, direct)


async def test_everything_over_streamable_http(hub_server: RunningHub, everything_http: str) -> None:
    async with shttp_session(everything_http, None, **LIKE_THE_HUB) as session:
        direct = await snapshot(session)
    await hub_server.add_server("everything", transport="http", url=everything_http)
    await _compare(hub_server, direct)


async def test_everything_over_sse(hub_server: RunningHub, everything_sse: str) -> None:
    async with sse_session(everything_sse, None, **LIKE_THE_HUB) as session:
        direct = await snapshot(session)
    await hub_server.add_server("everything", transport="sse", url=everything_sse)
    await _compare(hub_server, direct)
