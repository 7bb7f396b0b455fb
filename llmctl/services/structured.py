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

from llmctl.errors import ExitStatus, LlmctlError, UsageError

_SHORT_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
# Keywords of JSON Schema: an object with none of them at its top is meant as the short form.
_SCHEMA_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$ref", "$defs", "definitions", "type", "properties", "items", "prefixItems",
        "required", "additionalProperties", "patternProperties", "anyOf", "oneOf", "allOf", "not", "if",
        "then", "else", "enum", "const", "format", "pattern", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "title",
        "description", "default", "examples",
    }
)  # fmt: skip
# Deeper than this is not a schema anyone writes, and would exhaust Python's recursion on the way.
_MAX_DEPTH = 64


class SchemaMismatch(LlmctlError):
    """The answer is not JSON valid for the requested schema."""

    exit_code = ExitStatus.FAILURE


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
    except RecursionError:
        raise UsageError(f"{source}: nested deeper than a schema can be ({_MAX_DEPTH} levels at most).") from None
    if not isinstance(parsed, dict):
        raise UsageError(f"{source}: a schema is a JSON object, not {type(parsed).__name__}.")
    return schema_from(parsed, source)


def schema_from(value: dict[str, Any], source: str = "schema") -> dict[str, Any]:
    """A JSON schema from a full schema or the short form (``{"name": "str"}``), checked."""
    if _depth(value) > _MAX_DEPTH:
        raise UsageError(f"{source}: nested deeper than a schema can be ({_MAX_DEPTH} levels at most).")
    if _is_short_form(value):
        schema = _expand_short_form(value)
    elif value and not _SCHEMA_KEYWORDS.intersection(value):
        raise UsageError(f"{source}: {_short_form_problem(value)}", hint=_SHORT_FORM_HINT)
    else:
        schema = value
    _check_schema(schema, source)
    _check_refs(schema, schema, source)
    return schema


_SHORT_FORM_HINT = 'Short form: {"name": "str", "age": "int"} (str, int, float, bool, list[T], or a nested object).'


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        if depth > _MAX_DEPTH:
            return depth
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


def _short_form_problem(value: dict[str, Any], path: str = "") -> str:
    """What keeps ``value`` from being the short form (it has no JSON Schema keyword either)."""
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if isinstance(item, dict) and not _is_short_form(item):
            return _short_form_problem(item, where) if item else f"{where}: an empty object is no type"
        if not isinstance(item, dict) and not (isinstance(item, str) and _short_type(item) is not None):
            return f"{where}: {json.dumps(item)[:40]} is not a type of the short form"
    return "neither a JSON schema nor the short form"


def _check_refs(node: Any, root: Mapping[str, Any], source: str) -> None:
    """Every ``$ref`` points inside the schema (``#/...``) at something there: no network, no dangling pointer."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise UsageError(f"{source}: $ref {ref!r}: only references inside the schema (#/...) are followed.")
            target: Any = root
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and part in target:
                    target = target[part]
                elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                    target = target[int(part)]
                else:
                    raise UsageError(f"{source}: $ref {ref!r} points at nothing in the schema.")
        for item in node.values():
            _check_refs(item, root, source)
    elif isinstance(node, list):
        for item in node:
            _check_refs(item, root, source)


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
    try:
        errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: str(list(e.path)))
    except Exception as exc:  # the schema itself fails while validating (checked up front; belt and braces)
        raise SchemaMismatch(f"The answer could not be checked against the schema: {exc}") from None
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "the top level"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SchemaMismatch(
            f"The answer does not match the schema at {where}: {first.message}{more}.",
            hint="The answer is on stderr above.",
        )
    return value
