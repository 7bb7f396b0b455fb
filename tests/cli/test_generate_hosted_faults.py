"""``llmctl generate`` against hosted servers that misbehave, as a user meets them: exit code, one line, the ledger.

Real HTTP to the loopback vendor servers in tests/wire, through the official SDKs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmctl.services.usage.ledger import LedgerRecord, UsageLedger
from tests.conftest import CliResult
from tests.hosted_servers import OPENAI_KEY, provider_table
from tests.providers.test_hosted_faults import SSE, ant_start, ant_text, oai_chunk, sse
from tests.wire import AnthropicServer, Fault, KeepAlive, OpenAIServer, Raw, Reply

Run = Callable[..., CliResult]
GPT = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-sonnet-4-6"


def only_row() -> LedgerRecord:
    with UsageLedger() as ledger:
        rows = list(ledger.records())
    assert len(rows) == 1, rows
    return rows[0]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


# -- only the options the user set are sent --------------------------------------------------------------------------


SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "seed")


def test_openai_request_carries_no_option_nobody_set(run_llmctl: Run, oai: OpenAIServer) -> None:
    result = run_llmctl("generate", "-m", GPT, "Hi")
    assert result.exit_code == 0, result.stderr
    body = oai.last_request.json
    assert [key for key in SAMPLING_KEYS if key in body] == []


def test_anthropic_gets_the_stated_max_tokens_and_nothing_else(run_llmctl: Run, ant: AnthropicServer) -> None:
    result = run_llmctl("generate", "-m", CLAUDE, "Hi")
    assert result.exit_code == 0, result.stderr
    body = ant.last_request.json
    assert body["max_tokens"] == 4096
    assert [key for key in SAMPLING_KEYS if key in body] == ["max_tokens"]


def test_a_written_default_is_sent_and_an_unwritten_one_is_not(
    run_llmctl: Run, oai: OpenAIServer, config_file: Path
) -> None:
    config_file.write_text("[defaults]\ntop_p = 0.5\n\n" + config_file.read_text())
    assert run_llmctl("generate", "-m", GPT, "Hi").exit_code == 0
    body = oai.last_request.json
    assert body["top_p"] == 0.5
    assert [key for key in SAMPLING_KEYS if key in body] == ["top_p"]


# -- --no-stream ---------------------------------------------------------------------------------------------------


def test_no_stream_makes_a_plain_request_and_reads_its_usage(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(text="Paris.", usage=(11, 2)))
    result = run_llmctl("generate", "-m", GPT, "Capital?", "--no-stream", "--json")
    assert result.exit_code == 0, result.stderr
    body = oai.last_request.json
    assert body["stream"] is False and "stream_options" not in body
    out = json.loads(result.stdout)
    assert out["text"] == "Paris." and out["finish_reason"] == "stop"
    assert (out["usage"]["input_tokens"], out["usage"]["output_tokens"], out["usage"]["source"]) == (11, 2, "provider")


def test_no_stream_on_the_anthropic_wire(run_llmctl: Run, ant: AnthropicServer) -> None:
    ant.add(Reply(text="Paris.", usage=(20, 3)))
    result = run_llmctl("generate", "-m", CLAUDE, "Capital?", "--no-stream")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Paris.\n"
    assert ant.last_request.json["stream"] is False
    row = only_row()
    assert (row.status, row.input_tokens, row.output_tokens, row.token_source) == ("ok", 20, 3, "provider")


def json_body(body: Any) -> Raw:
    return Raw(200, json.dumps(body), "application/json")


NO_STREAM_MALFORMED = {
    "oai-html": (GPT, Raw(200, "<html><body>Bad gateway</body></html>", "text/html"), "it sent text/html"),
    "oai-no-choices": (GPT, json_body({"id": "x", "choices": []}), "without any answer text"),
    "oai-content-number": (GPT, json_body({"choices": [{"index": 0, "message": {"content": 5}}]}), "message.content"),
    "oai-not-json": (GPT, Raw(200, "{not json", "application/json"), "malformed response"),
    "ant-html": (CLAUDE, Raw(200, "<html>Sign in</html>", "text/html"), "it sent text/html, not application/json"),
    "ant-sse-body": (CLAUDE, Raw(200, sse(ant_start(), ant_text("Hi")), SSE), "it sent text/event-stream"),
    "ant-text-number": (
        CLAUDE,
        json_body({"type": "message", "content": [{"type": "text", "text": 3}], "stop_reason": "end_turn"}),
        "content.0.text",
    ),
    "ant-empty-content": (CLAUDE, json_body({"type": "message", "content": [], "stop_reason": None}), "without any"),
    "oai-error-with-200": (
        GPT,
        json_body({"error": {"message": "Upstream provider overloaded", "type": "server_error"}}),
        "answered with an error (HTTP 200): Upstream provider overloaded",
    ),
    "ant-error-with-200": (
        CLAUDE,
        json_body({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        "answered with an error (HTTP 200): Overloaded",
    ),
}


@pytest.mark.parametrize(("model", "plan", "says"), NO_STREAM_MALFORMED.values(), ids=NO_STREAM_MALFORMED.keys())
def test_no_stream_malformed_body_is_an_error(
    run_llmctl: Run, oai: OpenAIServer, ant: AnthropicServer, config_file: Path, model: str, plan: Raw, says: str
) -> None:
    config_file.write_text(provider_table("openai", oai.base_url) + provider_table("anthropic", ant.base_url))
    (oai if model == GPT else ant).add(plan)
    result = run_llmctl("generate", "-m", model, "Hi", "--no-stream")
    assert result.exit_code == 1, result.stderr
    [line] = error_lines(result.stderr)
    assert says in line
    assert "Traceback" not in result.stderr
    assert only_row().status == "error"


# -- malformed answers: one line, exit 1, the text kept, an error row ------------------------------------------------

MALFORMED = {
    "html-200": (GPT, Raw(200, "<html><body>Portal</body></html>", "text/html"), "", "it sent text/html"),
    "empty-200": (GPT, Raw(200, b"", "application/json"), "", "without any answer text or finish reason"),
    "llama-cpp-empty-stream": (
        GPT,
        Raw(200, sse(oai_chunk({"role": "assistant", "content": ""}), "[DONE]"), SSE),
        "",
        "without any answer text or finish reason",
    ),
    "invalid-json-chunk": (
        GPT,
        Raw(200, sse(oai_chunk({"content": "Paris "}), "{oops", "[DONE]"), SSE),
        "Paris ",
        "not valid JSON",
    ),
    "wrong-type-chunk": (
        GPT,
        Raw(200, sse(oai_chunk({"content": "Paris "}), oai_chunk({"content": ["x"]}), "[DONE]"), SSE),
        "Paris ",
        "choices.0.delta.content",
    ),
    "anthropic-wrong-type": (
        CLAUDE,
        Raw(200, sse(ant_start(), ant_text("Paris "), ant_text({"a": 1})), SSE),
        "Paris ",
        "delta.text",
    ),
    "anthropic-html-200": (CLAUDE, Raw(200, "<html>Sign in</html>", "text/html"), "", "it sent text/html"),
}


@pytest.mark.parametrize(("model", "plan", "kept", "says"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_answer_is_an_error_with_a_row(
    run_llmctl: Run,
    oai: OpenAIServer,
    ant: AnthropicServer,
    config_file: Path,
    model: str,
    plan: Raw,
    kept: str,
    says: str,
) -> None:
    config_file.write_text(provider_table("openai", oai.base_url) + provider_table("anthropic", ant.base_url))
    (oai if model == GPT else ant).add(plan)
    result = run_llmctl("generate", "-m", model, "Hi")
    assert result.exit_code == 1, result.stderr
    [line] = error_lines(result.stderr)
    assert says in line and "bug" not in line.lower()
    assert "Traceback" not in result.stderr
    assert result.stdout == (kept + "\n" if kept else "")
    row = only_row()
    assert row.status == "error" and row.error and says in row.error
    assert row.token_source != "provider" or row.input_tokens  # no invented 0 from the provider


def test_pings_without_text_end_at_idle_timeout(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    config_file.write_text(provider_table("openai", oai.base_url, idle_timeout=0.5))
    oai.add(KeepAlive(after_chunks=2, interval_s=0.05))
    started = time.monotonic()
    result = run_llmctl("generate", "-m", GPT, "Hi", "--json")
    assert time.monotonic() - started < 10  # the server would keep pinging for 20 s
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["text"] == "Paris is " and out["status"] == "error"
    assert "sent no answer text for 0.5 s" in out["error"]
    assert only_row().status == "error"


def test_idle_and_total_timeouts_are_validated(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    config_file.write_text(provider_table("openai", oai.base_url, total_timeout=-1))
    result = run_llmctl("generate", "-m", GPT, "Hi")
    assert result.exit_code == 2
    assert "providers.openai.total_timeout" in result.stderr


# -- real servers' error wording ------------------------------------------------------------------------------------


LITELLM_BAD_MODEL = (
    "litellm.BadRequestError: Invalid model name passed in model=gpt-4o-mini. "
    "Call `/v1/models` to view available models for your key."
)


@pytest.mark.parametrize(
    "message",
    [LITELLM_BAD_MODEL, "model 'gpt-4o-mini' not found, try pulling it first", "Unknown model: gpt-4o-mini"],
)
def test_a_400_about_the_model_name_hints_at_the_model(run_llmctl: Run, oai: OpenAIServer, message: str) -> None:
    oai.add(Fault(400, message=message))
    result = run_llmctl("generate", "-m", GPT, "Hi")
    assert result.exit_code == 2
    assert "does not accept the model name 'openai/gpt-4o-mini'" in result.stderr
    assert "models list --remote openai" in result.stderr
    assert "--max-tokens" not in result.stderr and "--temperature" not in result.stderr


@pytest.mark.parametrize(
    "message",
    [
        "Invalid 'top_p': decimal above maximum value.",
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        "Unsupported value: 'temperature' does not support 0.7 with this model. Only the default (1) is supported.",
        "max_tokens is too large: 100000. This model supports at most 16384 completion tokens.",
    ],
)
def test_a_400_about_an_option_still_hints_at_the_options(run_llmctl: Run, oai: OpenAIServer, message: str) -> None:
    oai.add(Fault(400, message=message))
    result = run_llmctl("generate", "-m", GPT, "Hi", "--top-p", "1")
    assert result.exit_code == 2
    assert "--max-tokens, --temperature" in result.stderr


@pytest.mark.parametrize("offset", [250, 270, 280, 285, 290, 295, 298, 299, 300, 301, 310])
def test_a_key_straddling_the_cut_of_a_server_message_never_shows(
    run_llmctl: Run, oai: OpenAIServer, offset: int
) -> None:
    """The key (any 8 characters of it) appears nowhere, wherever the 300-character cut falls."""
    message = "x" * offset + f" key {OPENAI_KEY} was refused " + "y" * 400
    oai.add(Fault(400, message=message))
    result = run_llmctl("generate", "-m", GPT, "Hi")
    assert result.exit_code == 2
    row = only_row()
    seen = result.stdout + result.stderr + (row.error or "")
    leaked = [OPENAI_KEY[i : i + 8] for i in range(len(OPENAI_KEY) - 7) if OPENAI_KEY[i : i + 8] in seen]
    assert leaked == []


# -- the pre-call context check --------------------------------------------------------------------------------------


def test_hosted_alias_with_a_known_window_is_checked_before_the_call(
    run_llmctl: Run, oai: OpenAIServer, config_file: Path
) -> None:
    config_file.write_text(config_file.read_text() + '[models.small]\nprovider = "openai"\nid = "gpt-4o-mini"\n')
    config_file.write_text(config_file.read_text() + "context_window = 50\n")
    result = run_llmctl("generate", "-m", "small", "word " * 100)
    assert result.exit_code == 2
    assert "has a context window of 50 tokens" in result.stderr
    assert oai.requests_to("/v1/chat/completions") == []
    assert only_row().status == "error"


def test_a_prompt_that_fits_is_sent(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + '[models.small]\nprovider = "openai"\nid = "gpt-4o-mini"\n')
    config_file.write_text(config_file.read_text() + "context_window = 500\n")
    result = run_llmctl("generate", "-m", "small", "word " * 100)  # over 500 bytes, about 100 tokens
    assert result.exit_code == 0, result.stderr


def test_anthropic_window_is_checked_with_the_providers_count(
    run_llmctl: Run, ant: AnthropicServer, config_file: Path
) -> None:
    config_file.write_text(config_file.read_text() + '[models.c]\nprovider = "anthropic"\nid = "claude-sonnet-4-6"\n')
    config_file.write_text(config_file.read_text() + "context_window = 60\n")
    result = run_llmctl("generate", "-m", "c", "word " * 100)
    assert result.exit_code == 2
    assert "has a context window of 60 tokens" in result.stderr
    assert [r.path for r in ant.requests] == ["/v1/messages/count_tokens"]


def test_an_estimate_refuses_nothing(run_llmctl: Run, config_file: Path) -> None:
    with OpenAIServer() as server:
        config_file.write_text(
            provider_table("local", server.base_url, kind="openai")
            + '[models.mine]\nprovider = "local"\nid = "my-own-model"\ncontext_window = 50\n'
        )
        result = run_llmctl("generate", "-m", "mine", "word " * 100)
    assert result.exit_code == 0, result.stderr  # no tokenizer is known: the server decides
