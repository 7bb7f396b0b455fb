"""A suite of use cases from ``cases.toml`` (``[[cases]]`` tables) or ``cases.jsonl`` (one case a line).

A case is a prompt, an optional system prompt, and optional checks (``checks.py``)::

    [[cases]]
    name = "capital"
    prompt = "What is the capital of France?"
    checks = { contains = "Paris", max_tokens = 20 }

Everything is validated before any model runs; an error names the file, the line where it can be
found, and the key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmctl.config import line_of_key
from llmctl.errors import UsageError
from llmctl.services.compare.checks import Checks, JudgeSpec, check_schema, compile_regex

SUFFIXES = (".toml", ".jsonl")


@dataclass(frozen=True)
class Case:
    name: str
    prompt: str
    system: str | None = None
    checks: Checks = field(default_factory=Checks)
    schema: dict[str, Any] | None = None  # the answer must be JSON for it: structured output, then checked


class _Judge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    rubric: str = Field(min_length=1)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _Checks(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)
    regex: str | None = None
    equals: str | None = None
    json_: bool = Field(default=False, alias="json")
    json_schema: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    judge: _Judge | None = None

    _lists = field_validator("contains", "not_contains", mode="before")(_as_list)

    @field_validator("contains", "not_contains")
    @classmethod
    def _no_empty_text(cls, values: list[str]) -> list[str]:
        if any(not text for text in values):
            raise ValueError("an empty string is in every answer; remove it")
        return values

    @field_validator("regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            compile_regex(pattern)
        return pattern

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            check_schema(schema)
        return schema

    def to_checks(self) -> Checks:
        return Checks(
            contains=tuple(self.contains),
            not_contains=tuple(self.not_contains),
            regex=self.regex,
            equals=self.equals,
            json=self.json_,
            json_schema=self.json_schema,
            max_tokens=self.max_tokens,
            judge=None if self.judge is None else JudgeSpec(self.judge.model, self.judge.rubric),
        )


class _Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1)
    prompt: str
    system: str | None = None
    # a JSON schema or the short form ({"name": "str"}), as --schema takes ("schema" is BaseModel's own name)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    checks: _Checks = Field(default_factory=_Checks)

    @field_validator("schema_")
    @classmethod
    def _usable_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        from llmctl.errors import UsageError as SchemaProblem
        from llmctl.services.structured import schema_from

        if schema is None:
            return None
        try:
            return schema_from(schema)
        except SchemaProblem as exc:
            raise ValueError(exc.message) from None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("the prompt is empty")
        return prompt


def load_cases(path: Path) -> list[Case]:
    """The cases in ``path`` (.toml or .jsonl); ``UsageError`` naming file, line and key otherwise."""
    if path.suffix not in SUFFIXES:
        raise UsageError(f"{path}: a cases file ends in .toml or .jsonl.", hint="See cases.toml in the llmctl repo.")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({exc}).") from None
    cases = _from_toml(path, text) if path.suffix == ".toml" else _from_jsonl(path, text)
    if not cases:
        raise UsageError(f"{path}: no cases.", hint='Add one: [[cases]] with prompt = "..." (see cases.toml).')
    _check_unique_names(path, cases)
    return cases


def with_default_system(cases: list[Case], system: str | None) -> list[Case]:
    """``-s`` with a suite: the system prompt of every case that has none of its own."""
    if not system:
        return cases
    return [case if case.system else replace(case, system=system) for case in cases]


def _from_toml(path: Path, text: str) -> list[Case]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - {"cases"})
    if unknown:
        where = _where(path, text, (unknown[0],))
        raise UsageError(f"{where}: {unknown[0]}: unknown key; a cases file has only [[cases]] tables.")
    entries = data.get("cases", [])
    if not isinstance(entries, list):
        raise UsageError(f"{_where(path, text, ('cases',))}: cases: write each case as a [[cases]] table.")
    cases = []
    for index, entry in enumerate(entries):
        try:
            cases.append(_case(entry, index))
        except ValidationError as exc:
            location, message = _first_problem(exc)
            key = f"cases[{index + 1}]" + "".join(f".{part}" for part in location)
            line = _case_line(text, index, location)
            raise UsageError(f"{path}{f':{line}' if line else ''}: {key}: {message}") from None
    return cases


def _from_jsonl(path: Path, text: str) -> list[Case]:
    cases: list[Case] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: not JSON: {exc.msg} (column {exc.colno}).") from None
        if not isinstance(entry, Mapping):
            raise UsageError(f"{path}:{number}: each line is one JSON object (a case).")
        try:
            cases.append(_case(entry, len(cases)))
        except ValidationError as exc:
            location, message = _first_problem(exc)
            raise UsageError(f"{path}:{number}: {'.'.join(location) or '(case)'}: {message}") from None
    return cases


def _case(entry: Any, index: int) -> Case:
    parsed = _Case.model_validate(entry)
    checks = parsed.checks.to_checks()
    if parsed.schema_ is not None and checks.json_schema is None:
        checks = replace(checks, json_schema=parsed.schema_)  # asked for in that shape: checked for it too
    return Case(
        name=parsed.name or f"case {index + 1}",
        prompt=parsed.prompt,
        system=parsed.system,
        checks=checks,
        schema=parsed.schema_,
    )


def _first_problem(exc: ValidationError) -> tuple[tuple[str, ...], str]:
    error = exc.errors()[0]
    location = tuple(str(part) for part in error["loc"] if not isinstance(part, int))
    if error["type"] == "extra_forbidden":
        return location, "unknown key (a case has name, prompt, system, schema, checks)"
    if error["type"] == "missing":
        return location, "missing: every case needs it"
    ctx_error = (error.get("ctx") or {}).get("error")
    message = str(ctx_error) if error["type"] == "value_error" and ctx_error is not None else str(error["msg"])
    return location, message


def _case_line(text: str, index: int, location: tuple[str, ...]) -> int | None:
    """The line of ``location`` inside the ``index``-th ``[[cases]]`` table (its header if not found)."""
    lines = text.splitlines()
    headers = [number for number, line in enumerate(lines, start=1) if line.strip().startswith("[[cases]]")]
    if index >= len(headers):
        return None
    start = headers[index]
    end = headers[index + 1] - 1 if index + 1 < len(headers) else len(lines)
    block = "\n".join(lines[start - 1 : end])
    found = line_of_key(block.replace("[[cases]]", "[cases]", 1), ("cases", *location)) if location else None
    return start + found - 1 if found else start


def _where(path: Path, text: str, key_path: tuple[str, ...]) -> str:
    line = line_of_key(text, key_path)
    return f"{path}:{line}" if line else str(path)


def _check_unique_names(path: Path, cases: list[Case]) -> None:
    seen: set[str] = set()
    for case in cases:
        if case.name in seen:
            raise UsageError(f"{path}: two cases are named {case.name!r}; give each a name of its own.")
        seen.add(case.name)
