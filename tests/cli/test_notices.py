"""One-line notices about how an answer ended: cut by --max-tokens, interrupted, load cancelled."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import CliResult
from tests.wire.openai_server import OpenAIServer, Reply

Run = Callable[..., CliResult]


@pytest.mark.parametrize(
    ("finish_reason", "flags", "notice"),
    [
        ("length", ("--max-tokens", "5"), "Stopped at --max-tokens 5; raise it to get more.\n"),
        ("stop", ("--max-tokens", "5"), ""),
    ],
)
def test_generate_says_when_the_answer_was_cut(
    run_llmctl: Run, oai: OpenAIServer, finish_reason: str, flags: tuple[str, ...], notice: str
) -> None:
    oai.add(Reply(text="One two three four five", finish_reason=finish_reason))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", *flags, "Count")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "One two three four five\n"
    assert result.stderr == notice


def test_chat_says_when_a_reply_was_cut(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(text="One two", finish_reason="length"), Reply(text="Done."))
    result = run_llmctl("chat", "-m", "openai/gpt-4o-mini", "--max-tokens", "2", stdin=b"count\nthanks\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "One two\nDone.\n"
    assert result.stderr.count("Stopped at --max-tokens 2; raise it to get more.") == 1


def test_plural() -> None:
    from llmctl.domain import plural

    assert [plural(n, "token") for n in (0, 1, 2, 1234)] == ["0 tokens", "1 token", "2 tokens", "1,234 tokens"]
