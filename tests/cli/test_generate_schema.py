"""``generate --schema``: JSON valid for a schema, via vendor structured output and local constrained decoding."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.wire.anthropic_server import AnthropicServer
from tests.wire.openai_server import OpenAIServer, Reply

Run = Callable[..., CliResult]
SHORT = '{"name": "str", "age": "int"}'
EXPANDED = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_openai_request_carries_the_schema_in_its_format(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(text='{"name": "Ada", "age": 36}'))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "--schema", SHORT, "Who?")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "Ada", "age": 36}
    assert oai.requests[-1].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": EXPANDED, "strict": True},
    }


def test_a_schema_openai_cannot_take_as_strict_is_sent_best_effort(
    run_llmctl: Run, oai: OpenAIServer, tmp_path: Path
) -> None:
    loose = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}}
    (tmp_path / "loose.json").write_text(json.dumps(loose))
    oai.add(Reply(text='{"tags": ["a"]}'))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "--schema", str(tmp_path / "loose.json"), "Tags?")
    assert result.exit_code == 0, result.stderr
    assert oai.requests[-1].json["response_format"]["json_schema"]["strict"] is False


def test_anthropic_request_carries_the_schema_in_its_format(run_llmctl: Run, ant: AnthropicServer) -> None:
    ant.add(Reply(text='{"name": "Ada", "age": 36}'))
    result = run_llmctl("generate", "-m", "anthropic/claude-3-5-haiku-latest", "--schema", SHORT, "Who?")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "Ada", "age": 36}
    assert ant.requests[-1].json["output_config"] == {"format": {"type": "json_schema", "schema": EXPANDED}}


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ("Sure! Here is the JSON you asked for.", "not JSON"),
        ('{"name": "Ada"}', "'age' is a required property"),
        ('{"name": "Ada", "age": "old"}', "at age"),
    ],
)
def test_an_answer_that_does_not_validate_is_exit_1_with_the_text_on_stderr(
    run_llmctl: Run, oai: OpenAIServer, answer: str, phrase: str
) -> None:
    oai.add(Reply(text=answer))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "--schema", SHORT, "Who?")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert answer in result.stderr and phrase in result.stderr
    assert "Traceback" not in result.stderr


BAD_SCHEMAS: list[tuple[str, str]] = [
    ("{not json", "not JSON"),
    ("[1, 2]", "a JSON object"),
    ('{"type": "strng"}', "not a valid JSON schema"),
    ("missing.json", "no such file"),
    ('{"properties": {"a": {"$ref": "#/definitions/nope"}}}', "points at nothing"),
    ('{"$ref": "http://example.invalid/s.json"}', "only references inside the schema"),
    ('{"name": "strr"}', "not a type of the short form"),  # a typo is not taken as a schema that allows all
    ('{"name": "str", "who": {"x": "flot"}}', "who.x"),
    ('{"a":' * 2000 + '"int"' + "}" * 2000, "nested deeper"),
]


@pytest.mark.parametrize(("spec", "phrase"), BAD_SCHEMAS, ids=[phrase for _, phrase in BAD_SCHEMAS])
def test_a_bad_schema_is_a_usage_error_before_any_call(
    run_llmctl: Run, oai: OpenAIServer, spec: str, phrase: str
) -> None:
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "--schema", spec, "Who?")
    assert result.exit_code == 2, result.stderr
    assert phrase in result.stderr
    assert not oai.requests


@pytest.mark.parametrize(
    ("short", "expected"),
    [
        ('{"n": "int"}', {"n": {"type": "integer"}}),
        ('{"xs": "list[float]"}', {"xs": {"type": "array", "items": {"type": "number"}}}),
        ('{"ok": "bool", "who": {"name": "str"}}', None),
    ],
)
def test_short_form(short: str, expected: dict[str, Any] | None) -> None:
    from llmctl.services.structured import load_schema

    schema = load_schema(short)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == list(json.loads(short))
    if expected is not None:
        assert schema["properties"] == expected
    else:
        assert schema["properties"]["who"]["properties"] == {"name": {"type": "string"}}


def test_a_full_schema_inline_is_taken_as_it_is() -> None:
    from llmctl.services.structured import load_schema

    assert load_schema('{"type": "string", "maxLength": 3}') == {"type": "string", "maxLength": 3}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_tiny_random_model_writes_valid_json_under_constrained_decoding(
    run_llmctl: Run, tiny_models: dict[str, Path], seed: int
) -> None:
    """Random weights would write anything; the grammar leaves them only valid JSON for the schema."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 6},  # bounded: a random model never closes a string by choice
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "ok": {"type": "boolean"},
        },
        "required": ["name", "age", "ok"],
        "additionalProperties": False,
    }
    args = ["--schema", json.dumps(schema), "--seed", str(seed), "--temperature", "1", "--max-tokens", "80"]
    result = run_llmctl("generate", "-m", str(tiny_models["llama"]), *args, "Go")
    assert result.exit_code == 0, result.stderr
    value = json.loads(result.stdout)
    assert set(value) == {"name", "age", "ok"}
    assert isinstance(value["name"], str) and len(value["name"]) <= 6
    assert isinstance(value["age"], int) and 0 <= value["age"] <= 120 and isinstance(value["ok"], bool)


def test_extract_and_schema_do_not_mix(run_llmctl: Run, oai: OpenAIServer) -> None:
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "--schema", SHORT, "-x", "Who?")
    assert result.exit_code == 2 and not oai.requests
