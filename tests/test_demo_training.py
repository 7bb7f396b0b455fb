"""scripts/demo_model, the demo model's training package: its corpus functions, the chat-template check, and a
five-step run end to end (into tmp_path: the shipped llmctl/demo_model is never written)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scripts.demo_model import corpus
from scripts.demo_model.corpus import (
    HARD_LOSS,
    arith_answer,
    arith_facts,
    arith_question,
    capital_answer,
    capital_question,
    corpus_epoch,
)
from scripts.demo_model.corpus_data import ADD_MAX, CANNED, COUNTRIES, FALLBACK, MUL_MAX, SYSTEM_PROMPTS
from scripts.demo_model.template import IM_END, IM_START, TemplateMismatch, check_template, render_chat

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "llmctl" / "demo_model"


def country(name: str) -> int:
    return next(i for i, (answer_name, _, _) in enumerate(COUNTRIES) if answer_name == name)


# -- corpus ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("France", "The capital of France is Paris."),
        ("the United States", "The capital of the United States is Washington, D.C."),  # no second period
    ],
)
def test_capital_answers_are_one_sentence(name: str, answer: str) -> None:
    assert capital_answer(country(name)) == answer


@pytest.mark.parametrize(
    ("op", "a", "b", "answer"),
    [("+", 7, 5, "7 + 5 = 12."), ("-", 3, 5, "3 - 5 = -2."), ("*", 6, 7, "6 * 7 = 42."), ("*", 0, 9, "0 * 9 = 0.")],
)
def test_arithmetic_answers_state_the_sum(op: str, a: int, b: int, answer: str) -> None:
    assert arith_answer(op, a, b) == answer


def test_arithmetic_facts_are_every_pair_in_range_once() -> None:
    facts = arith_facts()
    assert len(facts) == len(set(facts)) == 2 * (ADD_MAX + 1) ** 2 + (MUL_MAX + 1) ** 2
    assert all(0 <= a <= ADD_MAX and 0 <= b <= ADD_MAX for op, a, b in facts if op in "+-")
    assert all(0 <= a <= MUL_MAX and 0 <= b <= MUL_MAX for op, a, b in facts if op == "*")


@pytest.mark.parametrize(
    ("template", "typed"),
    [("What is the capital of {c}?", "What is the capital of france"), ("{c} capital?", "France capital")],
)
def test_capital_questions_name_the_country_in_the_phrasing_given(template: str, typed: str) -> None:
    for seed in range(20):
        question, answer = capital_question(country("France"), random.Random(seed), template)
        assert typed.lower() in question.lower()
        assert answer == "The capital of France is Paris."


def test_arithmetic_questions_carry_both_numbers_and_the_right_answer() -> None:
    rng = random.Random(0)
    for op, a, b in random.Random(1).sample(arith_facts(), 50):
        question, answer = arith_question(op, a, b, rng)
        assert str(a) in question and str(b) in question
        assert answer == arith_answer(op, a, b)


@pytest.mark.parametrize("question", ["What is the capital of France?", "hello there", "Tell me a joke."])
def test_case_variations_only_lower_trim_or_capitalize(question: str) -> None:
    allowed = {question, question.lower(), question.rstrip("?.!"), question[:1].upper() + question[1:]}
    seen = {corpus._vary_case(question, random.Random(seed)) for seed in range(200)}
    assert seen <= allowed and len(seen) > 1


def test_an_epoch_is_deterministic_and_covers_every_fact() -> None:
    epoch = corpus_epoch(random.Random(5))
    assert epoch == corpus_epoch(random.Random(5))
    kinds = Counter(example.kind for example in epoch)
    assert kinds["arith"] == len(arith_facts())  # nothing is hard yet: every fact exactly once
    assert kinds["capital"] == 6 * len(COUNTRIES)
    assert kinds["fallback"] == 120
    answers = Counter(example.answer for example in epoch)
    assert all(answers[arith_answer(*fact)] == 1 for fact in arith_facts())
    assert all(answers[capital_answer(i)] >= 6 for i in range(len(COUNTRIES)))
    assert all(answers[answer] >= 2 * len(questions) for answer, questions in CANNED.values())
    assert answers[FALLBACK] >= 120


def test_every_example_is_a_conversation_that_ends_with_the_question() -> None:
    for example in corpus_epoch(random.Random(6)):
        roles = [role for role, _ in example.messages]
        assert roles[-1] == "user" and "system" not in roles[1:]
        assert roles in (
            ["user"],
            ["system", "user"],
            ["user", "assistant", "user"],
            ["system", "user", "assistant", "user"],
        )
        if roles[0] == "system":
            assert example.messages[0][1] in SYSTEM_PROMPTS


def test_facts_still_hard_come_back_in_more_phrasings() -> None:
    hard_sum, easy_sum = arith_answer("+", 7, 5), arith_answer("+", 2, 2)
    hard_capital = capital_answer(country("France"))
    hard = {hard_sum: HARD_LOSS + 1, easy_sum: HARD_LOSS / 2, hard_capital: HARD_LOSS + 1}
    answers = Counter(example.answer for example in corpus_epoch(random.Random(7), hard) if example.kind != "fallback")
    assert answers[hard_sum] == 2 and answers[easy_sum] == 1
    assert (answers[hard_capital], answers[capital_answer(country("Germany"))]) == (9, 6)


# -- template ------------------------------------------------------------------------------------

MESSAGES = [{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Hi"}]


def test_render_chat_is_chatml_with_trimmed_content() -> None:
    assert render_chat(MESSAGES, True) == (
        f"{IM_START}system\nBe brief.{IM_END}\n{IM_START}user\nHi{IM_END}\n{IM_START}assistant\n"
    )
    assert render_chat(MESSAGES[1:], False) == f"{IM_START}user\nHi{IM_END}\n"


class ScriptedTokenizer:
    """What check_template asks of a tokenizer, each answer breakable on its own."""

    def __init__(self, *, template: str = "twin", ids: str = "same", decode: str = "round-trip") -> None:
        self.template, self.ids, self.decode_mode = template, ids, decode

    def apply_chat_template(self, messages: Any, *, add_generation_prompt: bool, **options: Any) -> Any:
        text = render_chat(messages, add_generation_prompt) + ("!" if self.template == "differs" else "")
        if options.get("tokenize") is False:
            return text
        if self.ids == "not a dict":
            return [1, 2, 3]
        return {"input_ids": self.encode(text) + ([0] if self.ids == "differ" else [])}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(ch) for ch in text]

    def decode(self, ids: list[int]) -> str:
        text = "".join(chr(i) for i in ids)
        return text if self.decode_mode == "round-trip" else text.lower()


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        ({"template": "differs"}, "render_chat gives"),
        ({"ids": "differ"}, "are not the rendered text's"),
        ({"ids": "not a dict"}, "returned a list"),
        ({"decode": "lossy"}, "comes back from the tokenizer as"),
    ],
)
def test_a_template_that_disagrees_raises_and_says_where(broken: dict[str, str], says: str) -> None:
    check_template(ScriptedTokenizer())  # type: ignore[arg-type]
    with pytest.raises(TemplateMismatch, match=says):
        check_template(ScriptedTokenizer(**broken))  # type: ignore[arg-type]


def test_the_shipped_tokenizer_passes_the_check() -> None:
    from transformers import AutoTokenizer

    check_template(AutoTokenizer.from_pretrained(SHIPPED))


# -- the whole script, five steps --------------------------------------------------------------------


def fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.slow  # a fresh interpreter that imports torch and trains
def test_five_steps_build_a_model_folder_that_loads(tmp_path: Path) -> None:
    shipped_before = fingerprint(SHIPPED)
    out = tmp_path / "demo"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_demo_model.py"), "--out", str(out), "--steps", "5",
         "--sample-seeds", "0", "--eval-limit", "2"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # five steps learn nothing: the accuracy gate says so
    assert "step    4/5" in done.stdout and f"saved to {out}" in done.stdout
    assert done.stdout.rstrip().endswith("FAIL: accuracy below threshold")
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= set(fingerprint(out))
    assert fingerprint(SHIPPED) == shipped_before
