"""Each check on answers that should pass and answers that should not."""

from __future__ import annotations

import pytest

from llmctl.services.compare.checks import Checks, JudgeSpec, failed_call_results, run_checks

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city"],
}

CASES = [
    # (checks, answer, output tokens, expected (name, passed) list)
    (Checks(contains=("Paris",)), "The capital is Paris.", 5, [("contains", True)]),
    (Checks(contains=("Paris",)), "The capital is paris.", 5, [("contains", False)]),  # case-sensitive
    (Checks(contains=("Paris", "France")), "Paris.", 2, [("contains", True), ("contains", False)]),
    (Checks(not_contains=("London",)), "Paris.", 2, [("not_contains", True)]),
    (Checks(not_contains=("London",)), "Not London.", 2, [("not_contains", False)]),
    (Checks(regex=r"\b12\b"), "7 + 5 = 12.", 6, [("regex", True)]),
    (Checks(regex=r"\b12\b"), "7 + 5 = 123.", 6, [("regex", False)]),
    (Checks(equals="Paris."), "  Paris.\n", 2, [("equals", True)]),
    (Checks(equals="Paris."), "Paris!", 2, [("equals", False)]),
    (Checks(json=True), '{"a": 1}', 5, [("json", True)]),
    (Checks(json=True), '```json\n{"a": 1}\n```', 5, [("json", True)]),
    (Checks(json=True), "Sure! {'a': 1}", 5, [("json", False)]),
    (Checks(json_schema=SCHEMA), '{"city": "Paris", "population": 2102650}', 9, [("json_schema", True)]),
    (Checks(json_schema=SCHEMA), '{"population": "many"}', 9, [("json_schema", False)]),
    (Checks(json_schema=SCHEMA), "not json", 2, [("json_schema", False)]),
    (Checks(json=True, json_schema=SCHEMA), "[1, 2]", 3, [("json", True), ("json_schema", False)]),
    (Checks(max_tokens=5), "short", 5, [("max_tokens", True)]),
    (Checks(max_tokens=5), "long", 6, [("max_tokens", False)]),
    (Checks(max_tokens=5), "unknown", None, [("max_tokens", False)]),  # an unknown count is not a pass
]


@pytest.mark.parametrize(("checks", "answer", "tokens", "expected"), CASES)
def test_check_outcomes(checks: Checks, answer: str, tokens: int | None, expected: list[tuple[str, bool]]) -> None:
    results = run_checks(checks, answer, tokens)
    assert [(result.name, result.passed) for result in results] == expected


def test_failure_details_say_what_was_found() -> None:
    results = run_checks(Checks(contains=("Paris",), json_schema=SCHEMA, max_tokens=2), '{"population": "many"}', 7)
    details = {result.name: result.detail for result in results}
    assert details["contains"] == 'missing "Paris"'
    assert details["json_schema"].startswith("(top level): 'city' is a required property")
    assert "(and 1 more)" in details["json_schema"]
    assert details["max_tokens"] == "7 > 2 tokens"


def test_a_failed_call_fails_every_check_with_its_error() -> None:
    checks = Checks(contains=("a", "b"), regex="x", judge=JudgeSpec("demo", "be right"))
    results = failed_call_results(checks, "No API key")
    assert [r.name for r in results] == ["contains", "contains", "regex", "judge"]
    assert all(not r.passed and r.detail == "no answer: No API key" for r in results)


def test_no_checks_is_empty_and_checks_nothing() -> None:
    assert Checks().empty
    assert run_checks(Checks(), "anything", 1) == []


def test_checks_are_described_as_written() -> None:
    checks = Checks(contains=("Paris",), regex=r"\b12\b", equals="a\nb", json=True, max_tokens=9)
    assert checks.describe() == ['contains "Paris"', r'regex "\b12\b"', r'equals "a\nb"', "json", "max_tokens 9"]
