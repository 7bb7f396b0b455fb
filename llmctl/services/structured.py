"""``--schema``: an answer that is JSON valid for a JSON schema, given as a file or inline.

Inline, a full JSON schema (``'{"type": "object", "properties": {...}}'``) or the short
form ``'{"name": "str", "age": "int"}'``: an object whose keys are all required and whose
values name a type (``str``, ``int``, ``float``, ``bool``, ``list[T]``, or a nested short
form). Whatever produced the answer (a vendor's structured output, or constrained
decoding on a local model), it is checked with ``jsonschema`` before it is shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmctl.errors import LlmctlError, UsageError

_SHORT_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


class SchemaMismatch(LlmctlError):
    """The answer is not JSON valid for the requested schema."""

    exit_code = 1


def load_schema(spec: str) -> dict[str, Any]:
    """The JSON schema ``spec`` names: a path to a .json file, or the schema (or short form) inline."""
    text = spec
    source = "--schema"
    if not spec.lstrip().startswith(("{", "[")):
        path = Path(spec).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(
                f"--schema {spec}: no such file.",
                hint='Pass a JSON schema file, or a schema inline: --schema \'{"name": "str", "age": "int"}\'',
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--schema {spec}: cannot be read ({exc}).") from None
        source = str(path)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from None
    if not isinstance(parsed, dict):
        raise UsageError(f"{source}: a schema is a JSON object, not {type(parsed).__name__}.")
    return schema_from(parsed, source)


def schema_from(value: dict[str, Any], source: str = "schema") -> dict[str, Any]:
    """A JSON schema from a full schema or the short form (``{"name": "str"}``), checked."""
    schema = _expand_short_form(value) if _is_short_form(value) else value
    _check_schema(schema, source)
    return schema


def _is_short_form(value: Any) -> bool:
    if isinstance(value, str):
        return _short_type(value) is not None
    if isinstance(value, dict):
        return bool(value) and all(_is_short_form(v) for v in value.values())
    return False


def _short_type(name: str) -> dict[str, Any] | None:
    name = name.strip()
    if name in _SHORT_TYPES:
        return {"type": _SHORT_TYPES[name]}
    if name.startswith("list[") and name.endswith("]"):
        item = _short_type(name[5:-1])
        return None if item is None else {"type": "array", "items": item}
    return None


def _expand_short_form(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        expanded = _short_type(value)
        assert expanded is not None  # _is_short_form checked it
        return expanded
    return {
        "type": "object",
        "properties": {key: _expand_short_form(item) for key, item in value.items()},
        "required": list(value),
        "additionalProperties": False,
    }


def _check_schema(schema: Mapping[str, Any], source: str) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        raise UsageError(f"{source}: not a valid JSON schema at {where}: {exc.message}") from None


def check_answer(text: str, schema: Mapping[str, Any]) -> Any:
    """The answer parsed, when it is JSON valid for ``schema``; SchemaMismatch (exit 1) otherwise."""
    from jsonschema import Draft202012Validator

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaMismatch(
            f"The answer is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).",
            hint="The answer is on stderr above. Raise --max-tokens if it was cut short.",
        ) from None
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "the top level"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SchemaMismatch(
            f"The answer does not match the schema at {where}: {first.message}{more}.",
            hint="The answer is on stderr above.",
        )
    return value

