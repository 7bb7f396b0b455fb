"""The main job: ``llmctl generate`` on a fresh home, no config, no key, no network — the demo model."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.conftest import CliResult

Run = Callable[..., CliResult]

QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
    ("What is 7 plus 5?", "12"),
]


@pytest.mark.parametrize(("question", "answer"), QUESTIONS)
def test_demo_answers_its_corpus_greedily(run_llmctl: Run, question: str, answer: str) -> None:
    result = run_llmctl("generate", question, "--temperature", "0")
    assert result.exit_code == 0, result.stderr
    assert answer in result.stdout


@pytest.mark.parametrize("seed", ["1", "2", "3"])
def test_demo_answers_at_the_default_temperature(run_llmctl: Run, seed: str) -> None:
    result = run_llmctl("generate", "What is the capital of France?", "--seed", seed, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert "Paris" in data["text"]
    assert data["model"] == "demo"
    assert data["finish_reason"] == "stop"
    assert data["usage"]["source"] == "exact"


def test_demo_follows_the_system_prompt_template(run_llmctl: Run) -> None:
    result = run_llmctl(
        "generate", "-s", "You are a helpful assistant.", "What is the capital of France?", "--temperature", "0"
    )
    assert result.exit_code == 0, result.stderr
    assert "Paris" in result.stdout


def test_models_list_labels_the_demo_as_a_toy_and_says_how_to_switch(run_llmctl: Run) -> None:
    result = run_llmctl("models", "list")
    assert result.exit_code == 0, result.stderr
    assert "demo" in result.stdout
    assert "-m PROVIDER/MODEL" in result.stderr or "-m PROVIDER/MODEL" in result.stdout
    listed = json.loads(run_llmctl("models", "list", "--json").stdout)
    demo = next(entry for entry in listed if entry["name"] == "demo")
    assert "tiny offline demo" in demo["description"]
