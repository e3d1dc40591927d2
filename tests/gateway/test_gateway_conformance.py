"""The official conformance suite through the hub at /mcp/{fixture}, with the conformance fixture as a
streamable-HTTP upstream and as a stdio upstream. Every check is read from checks.json (see
tests/conformance/runner.py); what cannot pass is listed with its reason in conformance_baseline.yml."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import pytest

from tests.conformance.runner import (
    SUITE_RUNS,
    ConformanceUnavailable,
    SuiteRun,
    fixture_http_server,
    fixture_stdio_command,
    load_baseline,
    run_conformance,
    suite_entry,
    verdict,
)
from tests.gateway.conftest import RunningHub

HUB_BASELINE = Path(__file__).with_name("conformance_baseline.yml")


def _available() -> bool:
    try:
        for run in SUITE_RUNS:
            suite_entry(run.spec_version)
    except ConformanceUnavailable:
        return False
    return True


pytestmark = pytest.mark.skipif(not _available(), reason="needs the conformance suites and Node 22")


@pytest.fixture
def fixture_url() -> Iterator[str]:
    with fixture_http_server() as url:
        yield url


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_suite_passes_through_the_hub(
    hub_server: RunningHub, fixture_url: str, tmp_path: Path, transport: str
) -> None:
    # The suite sends no credentials, so the fixture is a public server (no hub key needed).
    if transport == "http":
        await hub_server.add_server("fixture", transport="http", url=fixture_url, access="public")
    else:
        command, *args = fixture_stdio_command()
        await hub_server.add_server("fixture", transport="stdio", command=command, args=args, access="public")
    baselines = load_baseline(HUB_BASELINE)
    problems: list[str] = []
    for run in SUITE_RUNS:
        results = await anyio.to_thread.run_sync(partial(_run, hub_server, tmp_path, transport, run))
        # Entries shared by both upstream transports, then those of this transport only.
        baseline = {**baselines.get(f"hub-{run.key}", {}), **baselines.get(f"hub-{transport}-{run.key}", {})}
        problems += [f"{run.key}: {p}" for p in verdict(results, run, baseline)]
    assert not problems, "\n".join(problems)


def _run(
    hub: RunningHub, tmp_path: Path, transport: str, run: SuiteRun
) -> dict[str, list[dict[str, object]]]:
    return run_conformance(
        f"{hub.url}/mcp/fixture",
        tmp_path / f"{transport}-{run.key}",
        spec_version=run.spec_version,
        suite=run.suite,
    )
