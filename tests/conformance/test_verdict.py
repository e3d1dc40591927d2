"""The verdict over checks.json: what makes a conformance run pass, and what a baseline may excuse."""

from __future__ import annotations

from typing import Any

from tests.conformance.runner import SIMPLE_TEXT, SuiteRun, verdict

RUN = SuiteRun("t", None, "active", frozenset({"ping", "tools-call-simple-text"}))


def check(scenario: str, status: str, **details: Any) -> dict[str, Any]:
    return {"id": scenario, "status": status, "details": details, "errorMessage": f"{scenario} {status}"}


def passing() -> dict[str, list[dict[str, Any]]]:
    result = {"content": [{"type": "text", "text": SIMPLE_TEXT}], "isError": False}
    return {
        "ping": [check("ping", "SUCCESS")],
        "tools-call-simple-text": [check("tools-call-simple-text", "SUCCESS", result=result)],
    }


def test_all_checks_succeeding_is_a_pass() -> None:
    assert verdict(passing(), RUN) == []


def test_a_failed_check_is_reported_with_its_message() -> None:
    results = {**passing(), "ping": [check("ping", "FAILURE")]}
    assert verdict(results, RUN) == ["ping: ping: FAILURE: ping FAILURE"]


def test_a_scenario_that_did_not_run_is_reported() -> None:
    results = passing()
    del results["ping"]
    assert verdict(results, RUN) == ["ping: expected scenario did not run"]


def test_a_scenario_with_only_info_checks_is_not_a_pass() -> None:
    results = {**passing(), "ping": [check("ping", "INFO")]}
    assert verdict(results, RUN) == ["ping: no check succeeded"]


def test_the_baseline_excuses_a_failure_and_goes_stale_when_it_passes() -> None:
    failing = {**passing(), "ping": [check("ping", "FAILURE")]}
    assert verdict(failing, RUN, {"ping": "known"}) == []
    assert verdict(passing(), RUN, {"ping": "known"}) == [
        "ping: passes now; remove it from the baseline (known)"
    ]


def test_an_error_result_scored_as_simple_text_is_caught() -> None:
    error = {"content": [{"type": "text", "text": "Unknown tool: test_simple_text"}], "isError": True}
    results = {
        **passing(),
        "tools-call-simple-text": [check("tools-call-simple-text", "SUCCESS", result=error)],
    }
    problems = verdict(results, RUN)
    assert len(problems) == 1 and problems[0].startswith("tools-call-simple-text: unexpected result")
