"""The official MCP conformance suite against the fixture server directly, with no hub in between.

This is the reference the gateway's runs through `/mcp/{fixture}` are compared with: if a scenario fails
here, the fixture is wrong; if it passes here and fails through the hub, the hub is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import IncomingMessage
from mcp_types import ResourceUpdatedNotification, TextContent

from tests.conformance.fixture_server import WATCHED_URI
from tests.conformance.runner import (
    SUITE_RUNS,
    SUITE_TOOLS,
    SuiteRun,
    fixture_http_server,
    fixture_stdio_command,
    load_baseline,
    run_conformance,
    verdict,
)


@pytest.fixture(scope="module")
def fixture_url() -> Iterator[str]:
    with fixture_http_server() as url:
        yield url


@pytest.mark.parametrize("run", SUITE_RUNS, ids=[run.key for run in SUITE_RUNS])
def test_suite_passes_directly(run: SuiteRun, fixture_url: str, tmp_path: Path) -> None:
    results = run_conformance(fixture_url, tmp_path / run.key, spec_version=run.spec_version, suite=run.suite)
    problems = verdict(results, run, load_baseline().get(run.key, {}))
    assert not problems, "\n".join(problems)


def test_a_missing_tool_is_caught_although_the_suite_scores_it_as_passed(tmp_path: Path) -> None:
    """The suite counts an error result as simple text; the verdict must not."""
    run = next(r for r in SUITE_RUNS if r.key == "pinned-active")
    with fixture_http_server(omit=("test_simple_text",)) as url:
        results = run_conformance(url, tmp_path, scenario="tools-call-simple-text")
    suite_statuses = {check["status"] for check in results["tools-call-simple-text"]}
    assert suite_statuses == {"SUCCESS"}  # the suite's own leniency, which the verdict exists to catch
    problems = verdict(results, SuiteRun(run.key, None, "active", frozenset({"tools-call-simple-text"})))
    assert any(p.startswith("tools-call-simple-text: unexpected result") for p in problems), problems


async def test_fixture_serves_over_stdio() -> None:
    """The gateway tests register the fixture as a stdio upstream too; it must speak MCP there."""
    command, *args = fixture_stdio_command()
    async with Client(StdioServerParameters(command=command, args=args)) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("test_simple_text", {})
    assert listed >= SUITE_TOOLS
    assert not result.is_error
    assert [c.text for c in result.content if isinstance(c, TextContent)] == [
        "This is a simple text response for testing."
    ]


# resources/subscribe is the 2025 mechanism (2026-07-28 replaced it with subscriptions/listen); on purpose here.
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_fixture_announces_resource_updates_to_subscribers(fixture_url: str) -> None:
    """The suite only checks that (un)subscribe answer {}; the gateway's relay tests need the update itself."""
    updates: list[str] = []
    received = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            received.set()

    async with Client(fixture_url, mode="legacy", message_handler=on_message) as client:
        await client.call_tool("test_trigger_resource_update", {})
        await client.subscribe_resource(WATCHED_URI)
        await client.call_tool("test_trigger_resource_update", {})
        with anyio.fail_after(10):
            await received.wait()
        await client.unsubscribe_resource(WATCHED_URI)
    assert updates == [WATCHED_URI]  # nothing before the subscription, one update after it
