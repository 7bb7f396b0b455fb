"""Reading a suite of cases: what is accepted, and hostile files refused with file, line and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmctl.errors import UsageError
from llmctl.services.compare.cases import load_cases
from llmctl.services.compare.checks import Checks, JudgeSpec

REPO = Path(__file__).resolve().parents[2]


def test_toml_cases_with_every_check(tmp_path: Path) -> None:
    path = tmp_path / "cases.toml"
    path.write_text(
        '[[cases]]\nname = "capital"\nprompt = "Capital of France?"\nsystem = "Be terse."\n'
        'checks = { contains = "Paris", not_contains = ["Lyon", "Nice"], regex = "P.ris", equals = "Paris.", '
        "max_tokens = 9 }\n\n"
        '[[cases]]\nprompt = "A city as JSON"\n[cases.checks]\njson = true\n'
        'json_schema = { type = "object", required = ["city"] }\n'
        'judge = { model = "demo", rubric = "Names a real city." }\n'
    )
    first, second = load_cases(path)
    assert (first.name, first.prompt, first.system) == ("capital", "Capital of France?", "Be terse.")
    assert first.checks == Checks(
        contains=("Paris",), not_contains=("Lyon", "Nice"), regex="P.ris", equals="Paris.", max_tokens=9
    )
    assert second.name == "case 2" and second.system is None
    assert second.checks.json and second.checks.json_schema == {"type": "object", "required": ["city"]}
    assert second.checks.judge == JudgeSpec("demo", "Names a real city.")


def test_jsonl_cases(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    lines = [{"name": "a", "prompt": "What is 2 plus 2?", "checks": {"contains": "4"}}, {"prompt": "Hi"}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    cases = load_cases(path)
    assert [(c.name, c.checks.contains) for c in cases] == [("a", ("4",)), ("case 2", ())]


def test_the_example_in_the_repo_loads() -> None:
    cases = load_cases(REPO / "cases.toml")
    assert len(cases) >= 3 and all(not case.checks.empty for case in cases)


TOML_ERRORS = [
    ('[[cases]]\nprompt = "x"\nchecks = { contain = "a" }\n', ":3: cases[1].checks.contain: unknown key"),
    ('[[cases]]\nprompt = "x"\n\n[[cases]]\nprompt = "y"\nregex = "("\n', ":6: cases[2].regex: unknown key"),
    ('[[cases]]\nprompt = "x"\nchecks = { regex = "(" }\n', ":3: cases[1].checks.regex: invalid regular expression"),
    ('[[cases]]\nprompt = "x"\nchecks = { json_schema = { type = 12 } }\n', "checks.json_schema: invalid JSON Schema"),
    ('[[cases]]\nprompt = "x"\nchecks = { max_tokens = 0 }\n', "cases[1].checks.max_tokens: Input should be greater"),
    ('[[cases]]\nprompt = "x"\nchecks = { contains = "" }\n', "an empty string is in every answer"),
    ('[[cases]]\nname = "x"\n', ":1: cases[1].prompt: missing"),
    ('[[cases]]\nprompt = "   "\n', "cases[1].prompt: the prompt is empty"),
    ("[[cases]]\nprompt = 3\n", "cases[1].prompt: Input should be a valid string"),
    ('[[cases]]\nprompt = "x"\nchecks = { judge = { model = "demo" } }\n', "cases[1].checks.judge.rubric: missing"),
    ("case = 1\n", ":1: case: unknown key"),
    ('[cases]\nprompt = "x"\n', ":1: cases: write each case as a [[cases]] table"),
    ('[[cases]]\nprompt = "x\n', "invalid TOML"),
    ("", "no cases"),
    ('[[cases]]\nname = "a"\nprompt = "x"\n[[cases]]\nname = "a"\nprompt = "y"\n', "two cases are named 'a'"),
]


@pytest.mark.parametrize(("text", "message"), TOML_ERRORS)
def test_hostile_toml_is_refused_naming_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cases.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_cases(path)
    assert caught.value.message.startswith(str(path))
    assert message in caught.value.message
    assert caught.value.exit_code == 2


JSONL_ERRORS = [
    ('{"prompt": "x"}\n{"prompt": "y", "chekcs": {}}\n', ":2: chekcs: unknown key"),
    ('{"prompt": "x"}\n\n{"prompt": \n', ":3: not JSON"),
    ('["prompt"]\n', ":1: each line is one JSON object"),
    ('{"prompt": "x", "checks": {"regex": "["}}\n', ":1: checks.regex: invalid regular expression"),
]


@pytest.mark.parametrize(("text", "message"), JSONL_ERRORS)
def test_hostile_jsonl_is_refused_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_cases(path)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cases.yaml", "x", "ends in .toml or .jsonl"),
        ("missing.toml", None, "no such file"),
        ("latin1.toml", b'prompt = "\xe9"', "cannot be read"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, content: str | bytes | None, message: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as caught:
        load_cases(path)
    assert message in caught.value.message
