"""Reading a judge's verdict: PASS or FAIL on its first line, anything else unclear (not a pass)."""

from __future__ import annotations

import pytest

from llmctl.services.compare.cases import Case
from llmctl.services.compare.judge import judge_prompt, parse_verdict

VERDICTS = [
    ("PASS\nIt names Paris.", True, "It names Paris."),
    ("FAIL: it names Lyon.", False, "it names Lyon."),
    ("**PASS** - correct", True, "correct"),
    ("pass", True, ""),
    ("  Fail.\n\nThe answer is wrong.", False, "The answer is wrong."),
    ("PASSED", None, "PASSED"),  # not the word asked for
    ("The answer passes.", None, "The answer passes."),
    ("", None, ""),
    ("I think FAIL", None, "I think FAIL"),  # the verdict must come first
]


@pytest.mark.parametrize(("reply", "passed", "reason"), VERDICTS)
def test_parse_verdict(reply: str, passed: bool | None, reason: str) -> None:
    assert parse_verdict(reply) == (passed, reason)


def test_the_judge_sees_rubric_question_and_answer() -> None:
    prompt = judge_prompt("Names the capital.", Case("c", "Capital of France?"), "Paris.")
    assert prompt == "Rubric:\nNames the capital.\n\nQuestion:\nCapital of France?\n\nAnswer to grade:\nParis."
