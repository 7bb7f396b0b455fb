"""``llmctl tokens count``: exact for local and OpenAI models, API or estimate for Anthropic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmctl.paths import demo_model_dir
from tests.conftest import CliResult
from tests.wire.anthropic_server import AnthropicServer

Run = Callable[..., CliResult]
KEY = "sk-ant-tokens-test"


def counted(run_llmctl: Run, *args: str, stdin: bytes | None = None) -> dict[str, Any]:
    result = run_llmctl("tokens", "count", "--json", *args, stdin=stdin)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def template_ids(folder: Path, chat: list[dict[str, str]]) -> list[int]:
    """The prompt ids straight from transformers, independently of llmctl."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    return list(ids)


def test_local_model_count_is_exact_with_the_chat_template(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["llama"]
    data = counted(run_llmctl, "How many tokens is this?", "-m", str(folder), "-s", "Be brief.")
    expected = template_ids(
        folder, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How many tokens is this?"}]
    )
    assert data["tokens"] == len(expected)
    assert data["source"] == "exact" and "chat template" in data["method"]
    from transformers import AutoConfig

    window = AutoConfig.from_pretrained(folder, local_files_only=True).max_position_embeddings
    assert data["context_window"] == window and data["remaining"] == window - len(expected)


def test_local_model_without_a_template_counts_the_plain_transcript(
    run_llmctl: Run, tiny_models: dict[str, Path]
) -> None:
    from transformers import AutoTokenizer

    folder = tiny_models["no-template"]
    data = counted(run_llmctl, "Hi there", "-m", str(folder))
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert data["tokens"] == len(tokenizer("User: Hi there\n\nAssistant:", add_special_tokens=True)["input_ids"])
    assert "plain transcript" in data["method"]


def test_stdin_is_composed_like_generate(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["llama"]
    data = counted(run_llmctl, "summarize", "-m", str(folder), stdin=b"my notes\n")
    assert data["tokens"] == len(template_ids(folder, [{"role": "user", "content": "summarize\n\nmy notes\n"}]))


@pytest.mark.skipif(not (demo_model_dir() / "config.json").is_file(), reason="the demo model is not built yet")
def test_demo_model_count_is_exact(run_llmctl: Run) -> None:
    data = counted(run_llmctl, "Tell me a story.", "-m", "demo")
    assert data["tokens"] == len(template_ids(demo_model_dir(), [{"role": "user", "content": "Tell me a story."}]))
    assert data["source"] == "exact" and data["context_window"] is not None


def test_openai_count_is_exact_offline(run_llmctl: Run) -> None:
    # "Hello, world! This is a test." is 9 tokens in o200k_base and cl100k_base; a chat message adds
    # 3 framing tokens + 1 for the role, and the reply is primed with 3 more.
    for model in ("openai/gpt-4o-mini", "openai/gpt-4"):
        data = counted(run_llmctl, "Hello, world! This is a test.", "-m", model)
        assert (data["tokens"], data["source"]) == (9 + 3 + 1 + 3, "exact"), model
    with_system = counted(run_llmctl, "Hello, world! This is a test.", "-m", "openai/gpt-4o-mini", "-s", "Be brief.")
    assert with_system["tokens"] == 16 + 3 + 1 + 3  # "Be brief." is 3 tokens
    assert with_system["context_window"] == 128_000 and with_system["remaining"] == 128_000 - 23


def test_an_unknown_openai_compatible_model_gets_a_labelled_estimate(run_llmctl: Run) -> None:
    data = counted(run_llmctl, "Hello, world! This is a test.", "-m", "openai/my-finetune")
    assert data["source"] == "estimate" and "my-finetune" in data["note"]
    assert data["context_window"] is None and data["remaining"] is None
    result = run_llmctl("tokens", "count", "Hello", "-m", "openai/my-finetune")
    lines = result.stdout.splitlines()  # piped: one label<TAB>value line per fact
    assert "source\testimate" in lines and "context window\tunknown" in lines and "left\tunknown" in lines
    assert "Context window unknown: set context_window" in result.stderr


def test_anthropic_without_a_key_is_an_estimate_saying_why(run_llmctl: Run) -> None:
    data = counted(run_llmctl, "Hello, Claude", "-m", "anthropic/claude-sonnet-4-5")
    assert data["source"] == "estimate"
    assert "ANTHROPIC_API_KEY" in data["note"]
    assert data["context_window"] == 200_000


@pytest.fixture
def anthropic_api(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> Iterator[AnthropicServer]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with AnthropicServer(api_key=KEY, count_tokens=4242) as server:
        config_file.write_text(f'[providers.anthropic]\nbase_url = "{server.base_url}"\nmax_retries = 0\n')
        yield server


def test_anthropic_with_a_key_asks_the_count_tokens_endpoint(run_llmctl: Run, anthropic_api: AnthropicServer) -> None:
    data = counted(run_llmctl, "Hello, Claude", "-m", "anthropic/claude-sonnet-4-5", "-s", "Be brief.")
    assert (data["tokens"], data["source"]) == (4242, "provider")
    (request,) = [r for r in anthropic_api.requests if r.path.endswith("/count_tokens")]
    assert request.json["system"] == "Be brief."
    assert request.json["messages"] == [{"role": "user", "content": "Hello, Claude"}]
    assert request.json["model"] == "claude-sonnet-4-5"


def test_a_failing_count_tokens_endpoint_falls_back_to_an_estimate(
    run_llmctl: Run, anthropic_api: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong-key")
    data = counted(run_llmctl, "Hello", "-m", "anthropic/claude-sonnet-4-5")
    assert data["source"] == "estimate" and "count-tokens API failed" in data["note"]
    assert "sk-ant-wrong-key" not in data["note"]


def test_over_the_context_window_is_a_warning(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("tokens", "count", "word " * 400, "-m", str(tiny_models["llama"]))
    assert result.exit_code == 0
    assert "over" in result.stderr and "context window" in result.stderr


def test_counting_openai_tokens_needs_neither_tiktoken_downloads_nor_the_sdk() -> None:
    script = (
        "import sys; from llmctl.cli.app import main\n"
        "sys.argv = ['llmctl', 'tokens', 'count', '--json', 'Hello, world! This is a test.', '-m', 'openai/gpt-4o']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', [m for m in ('tiktoken', 'openai', 'torch', 'transformers') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"tokens": 16' in done.stdout and "LOADED []" in done.stdout
