"""How ``generate`` shows answers: Markdown on a terminal, raw text in a pipe, partial text on failure."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from llmctl.cli import output
from llmctl.errors import ProviderError
from tests.conftest import CliResult
from tests.fakes import FakeBackend

Run = Callable[..., CliResult]
MARKDOWN = ("# Title\n\n", "Some **bold** text ", "and `code`.\n")


def test_piped_output_keeps_markdown_source(run_llmctl: Run, fake_provider: FakeBackend) -> None:
    fake_provider.enqueue(*MARKDOWN)
    result = run_llmctl("generate", "-m", "openai/fake", "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "".join(MARKDOWN)


def test_terminal_output_is_rendered_markdown(
    run_llmctl: Run, fake_provider: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True)
    fake_provider.enqueue(*MARKDOWN)
    result = run_llmctl("generate", "-m", "openai/fake", "hi")
    assert result.exit_code == 0, result.stderr
    assert "Some bold text and code." in result.stdout
    assert "**" not in result.stdout and "# Title" not in result.stdout


def test_provider_failure_keeps_partial_text_and_exits_1(run_llmctl: Run, fake_provider: FakeBackend) -> None:
    fake_provider.enqueue("The answer starts", ProviderError("The stream was cut off.", hint="Try again."))
    result = run_llmctl("generate", "-m", "openai/fake", "hi", "-u")
    assert result.exit_code == 1
    assert result.stdout == "The answer starts\n"
    assert "Error: The stream was cut off." in result.stderr
    assert "Try again." in result.stderr
    assert "Tokens: unknown input, unknown output, unknown total (unknown)" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_on_failure_reports_the_error_and_partial_text(run_llmctl: Run, fake_provider: FakeBackend) -> None:
    fake_provider.enqueue("partial", ProviderError("Server error (500)."))
    result = run_llmctl("generate", "-m", "openai/fake", "hi", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["text"] == "partial"
    assert data["status"] == "error"
    assert data["finish_reason"] == "error"
    assert data["error"] == "Server error (500)."
    assert data["usage"]["input_tokens"] is None


def test_request_carries_system_and_params(run_llmctl: Run, fake_provider: FakeBackend) -> None:
    fake_provider.enqueue("ok")
    args = ("-s", "sys", "--temperature", "0.3", "--top-p", "0.5", "--max-tokens", "7", "--seed", "9")
    assert run_llmctl("generate", "-m", "openai/fake", *args, "q").exit_code == 0
    request = fake_provider.requests[-1]
    assert [(m.role, m.content) for m in request.messages] == [("system", "sys"), ("user", "q")]
    params = request.params
    assert (params.temperature, params.top_p, params.max_tokens, params.seed) == (0.3, 0.5, 7, 9)
