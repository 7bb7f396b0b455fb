"""Checks on an answer: does it contain, match, equal, parse, validate, stay short?

Each check is a pure function of the answer (and its output token count). Every check of a
case runs, so a report says *all* that is wrong, not only the first thing. Text checks are
case-sensitive and compare the answer as given; ``equals`` ignores surrounding whitespace.
``json`` and ``json_schema`` accept the answer bare or as the only fenced code block (models
like to wrap JSON in one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_FENCED = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class CheckResult:
    """One check on one answer: its name, whether it passed, and in words what was found."""

    name: str  # "contains", "regex", ... "judge"
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    """What a judge model said of one answer, and what asking it cost (apart from the answer's cost)."""

    judge: str  # the judge model, as the case names it
    passed: bool
    reason: str  # the judge's one sentence, or why there is no verdict
    cost_usd: float | None  # None: unknown, never 0
    clear: bool = True  # False: the judge failed or replied neither PASS nor FAIL

    @property
    def detail(self) -> str:
        if not self.clear:
            return f"{self.judge}: {self.reason}"
        return f"{self.judge}: {'PASS' if self.passed else 'FAIL'}" + (f" ({self.reason})" if self.reason else "")

    def to_json(self) -> dict[str, Any]:
        return {"judge": self.judge, "passed": self.passed, "reason": self.reason, "cost_usd": self.cost_usd}


NOT_JUDGED = CheckResult("judge", False, "not judged (the comparison ended before the judge ran)")


@dataclass(frozen=True)
class JudgeSpec:
    """Another model grades the answer against ``rubric``."""

    model: str
    rubric: str


@dataclass(frozen=True)
class Checks:
    """The checks of one case; an empty ``Checks`` checks nothing."""

    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    regex: str | None = None
    equals: str | None = None
    json: bool = False
    json_schema: Mapping[str, Any] | None = None
    max_tokens: int | None = None
    judge: JudgeSpec | None = None

    @property
    def empty(self) -> bool:
        return self == Checks()

    def describe(self) -> list[str]:
        """The checks in words, for a report: ``contains "Paris"``, ``max_tokens 20``."""
        parts = [f"contains {_quote(text)}" for text in self.contains]
        parts += [f"not_contains {_quote(text)}" for text in self.not_contains]
        if self.regex is not None:
            parts.append(f"regex {_quote(self.regex)}")
        if self.equals is not None:
            parts.append(f"equals {_quote(self.equals)}")
        if self.json:
            parts.append("json")
        if self.json_schema is not None:
            parts.append("json_schema")
        if self.max_tokens is not None:
            parts.append(f"max_tokens {self.max_tokens}")
        if self.judge is not None:
            parts.append(f"judge {self.judge.model}")
        return parts


def run_checks(checks: Checks, answer: str, output_tokens: int | None) -> list[CheckResult]:
    """Every local check of ``checks`` on ``answer`` (the judge is a model call: see ``judge.py``)."""
    results = [_contains(text, answer) for text in checks.contains]
    results += [_not_contains(text, answer) for text in checks.not_contains]
    if checks.regex is not None:
        results.append(_regex(checks.regex, answer))
    if checks.equals is not None:
        passed = answer.strip() == checks.equals.strip()
        results.append(CheckResult("equals", passed, "equal" if passed else f"got {_quote(answer.strip())}"))
    if checks.json or checks.json_schema is not None:
        results.extend(_json_checks(answer, checks.json, checks.json_schema))
    if checks.max_tokens is not None:
        results.append(_max_tokens(checks.max_tokens, output_tokens))
    return results


def failed_call_results(checks: Checks, error: str) -> list[CheckResult]:
    """A call that failed fails each of its checks, saying why."""
    names = ["contains"] * len(checks.contains) + ["not_contains"] * len(checks.not_contains)
    names += [
        name
        for name, wanted in (
            ("regex", checks.regex is not None),
            ("equals", checks.equals is not None),
            ("json", checks.json),
            ("json_schema", checks.json_schema is not None),
            ("max_tokens", checks.max_tokens is not None),
            ("judge", checks.judge is not None),
        )
        if wanted
    ]
    return [CheckResult(name, False, f"no answer: {error}") for name in names]


def compile_regex(pattern: str) -> re.Pattern[str]:
    """The pattern compiled; ``ValueError`` in words when it is not a valid regular expression."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


def check_schema(schema: Mapping[str, Any]) -> None:
    """``ValueError`` when ``schema`` is not a valid JSON Schema (checked before any model runs)."""
    from jsonschema import exceptions, validators

    validator = validators.validator_for(schema)
    try:
        validator.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None


def _contains(text: str, answer: str) -> CheckResult:
    passed = text in answer
    return CheckResult("contains", passed, f"{'has' if passed else 'missing'} {_quote(text)}")


def _not_contains(text: str, answer: str) -> CheckResult:
    found = text in answer
    return CheckResult("not_contains", not found, f"{'has' if found else 'free of'} {_quote(text)}")


def _regex(pattern: str, answer: str) -> CheckResult:
    match = compile_regex(pattern).search(answer)
    if match is None:
        return CheckResult("regex", False, f"no match for {_quote(pattern)}")
    return CheckResult("regex", True, f"matched {_quote(match.group(0))}")


def _json_checks(answer: str, wanted_json: bool, schema: Mapping[str, Any] | None) -> list[CheckResult]:
    names = (["json"] if wanted_json else []) + (["json_schema"] if schema is not None else [])
    try:
        value = parse_json_answer(answer)
    except ValueError as exc:
        return [CheckResult(name, False, str(exc)) for name in names]
    results = [CheckResult("json", True, "parses")] if wanted_json else []
    if schema is not None:
        results.append(_schema_result(value, schema))
    return results


def parse_json_answer(answer: str) -> Any:
    """The JSON value of an answer, bare or in one fenced code block; ``ValueError`` in words otherwise."""
    fenced = _FENCED.match(answer)
    text = fenced.group(1) if fenced else answer
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _schema_result(value: Any, schema: Mapping[str, Any]) -> CheckResult:
    from jsonschema import validators

    validator = validators.validator_for(schema)(schema)
    errors: Sequence[Any] = sorted(validator.iter_errors(value), key=lambda error: list(error.absolute_path))
    if not errors:
        return CheckResult("json_schema", True, "valid")
    first = errors[0]
    where = "/".join(str(part) for part in first.absolute_path) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return CheckResult("json_schema", False, f"{where}: {first.message}{more}")


def _max_tokens(limit: int, output_tokens: int | None) -> CheckResult:
    if output_tokens is None:
        return CheckResult("max_tokens", False, "output token count unknown")
    passed = output_tokens <= limit
    return CheckResult("max_tokens", passed, f"{output_tokens} {'<=' if passed else '>'} {limit} tokens")


def _quote(text: str) -> str:
    shown = text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
    # Quoted as written (a regex's backslashes stay single); only line breaks are spelled out.
    return '"' + shown.replace("\n", "\\n").replace("\r", "\\r") + '"'
