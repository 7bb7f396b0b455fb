"""``llmctl generate`` as a user runs it: arguments, stdin, output streams, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.domain import GenerationRequest, Message
from llmctl.providers.hf.provider import HuggingFaceProvider
from llmctl.providers.registry import open_provider, resolve
from tests.conftest import CliResult
from tests.tiny_models import build_tiny_model

Run = Callable[..., CliResult]
GREEDY = ("--temperature", "0")


def prompt_tokens(folder: Path, text: str, system: str | None = None) -> int:
    provider = open_provider(resolve(str(folder), Settings()))
    assert isinstance(provider, HuggingFaceProvider)
    messages = ([Message("system", system)] if system else []) + [Message("user", text)]
    return len(provider.prompt_ids(GenerationRequest(tuple(messages))))


def as_json(result: CliResult) -> dict[str, object]:
    assert result.exit_code == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_piped_output_is_the_raw_answer_and_nothing_else(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    model = str(tiny_models["llama"])
    result = run_llmctl("generate", "-m", model, "Hello", *GREEDY, "--max-tokens", "8")
    assert result.exit_code == 0, result.stderr
    reference = as_json(run_llmctl("generate", "-m", model, "Hello", *GREEDY, "--max-tokens", "8", "--json"))
    assert result.stdout == f"{reference['text']}\n"
    cut = reference["finish_reason"] == "length"  # then, and only then, one line says so on stderr
    assert result.stderr == ("Stopped at --max-tokens 8; raise it to get more.\n" if cut else "")


def test_json_has_the_documented_shape(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    data = as_json(run_llmctl("generate", "-m", str(tiny_models["mistral"]), "Hi", "--max-tokens", "4", "--json"))
    assert set(data) >= {"text", "model", "provider", "finish_reason", "usage", "timing"}
    usage = data["usage"]
    assert isinstance(usage, dict)
    assert usage["output_tokens"] == 4
    assert usage["total_tokens"] == usage["input_tokens"] + 4
    assert usage["source"] == "exact"
    assert data["finish_reason"] == "length"
    assert data["provider"] == "hf"
    timing = data["timing"]
    assert isinstance(timing, dict) and timing["total_s"] >= timing["first_token_s"] >= 0


def test_argument_blank_line_then_stdin(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["llama"]
    data = as_json(
        run_llmctl("generate", "-m", str(folder), "summarize this", "--max-tokens", "2", "--json", stdin=b"my notes\n")
    )
    usage = data["usage"]
    assert isinstance(usage, dict)
    assert usage["input_tokens"] == prompt_tokens(folder, "summarize this\n\nmy notes\n")


def test_stdin_alone_is_the_prompt(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["llama"]
    data = as_json(run_llmctl("generate", "-m", str(folder), "--max-tokens", "2", "--json", stdin="café ☕".encode()))
    usage = data["usage"]
    assert isinstance(usage, dict)
    assert usage["input_tokens"] == prompt_tokens(folder, "café ☕")


def test_system_prompt_is_sent(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["llama"]
    data = as_json(run_llmctl("generate", "-m", str(folder), "-s", "Be terse.", "Hi", "--max-tokens", "1", "--json"))
    usage = data["usage"]
    assert isinstance(usage, dict)
    assert usage["input_tokens"] == prompt_tokens(folder, "Hi", system="Be terse.")


def test_no_prompt_and_empty_stdin_is_a_usage_error(run_llmctl: Run) -> None:
    result = run_llmctl("generate", stdin=b"")
    assert result.exit_code == 2
    assert "No prompt given" in result.stderr
    assert "Traceback" not in result.stderr


def test_stdin_that_is_not_utf8(run_llmctl: Run) -> None:
    result = run_llmctl("generate", "explain", stdin=b"caf\xe9\n")
    assert result.exit_code == 2
    assert "not valid UTF-8" in result.stderr


def test_input_longer_than_context_window_gives_both_numbers(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["llama"]
    text = "word " * 400
    result = run_llmctl("generate", "-m", str(folder), stdin=text.encode())
    assert result.exit_code == 2
    assert f"The input is {prompt_tokens(folder, text)} tokens" in result.stderr
    assert "context window of 256 tokens" in result.stderr
    assert result.stdout == ""


def test_usage_line_goes_to_stderr(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("generate", "-m", str(tiny_models["gemma"]), "Hi", "--max-tokens", "3", "-u")
    assert result.exit_code == 0
    assert "Tokens:" not in result.stdout
    assert "3 output" in result.stderr and "(exact)" in result.stderr


def test_no_stream_prints_the_same_answer(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    args = ("generate", "-m", str(tiny_models["llama"]), "Hi", *GREEDY, "--max-tokens", "6")
    assert run_llmctl(*args).stdout == run_llmctl(*args, "--no-stream").stdout


def test_defaults_come_from_config_then_flags(run_llmctl: Run, tiny_models: dict[str, Path], config_file: Path) -> None:
    config_file.write_text(
        'default_model = "tiny"\n[defaults]\nmax_tokens = 3\n'
        f'[models.tiny]\nprovider = "hf"\nid = "{tiny_models["llama"]}"\n'
    )
    data = as_json(run_llmctl("generate", "Hi", "--json"))
    assert data["model"] == "tiny"
    assert data["usage"]["output_tokens"] == 3  # type: ignore[index]
    data = as_json(run_llmctl("generate", "Hi", "--json", "--max-tokens", "5"))
    assert data["usage"]["output_tokens"] == 5  # type: ignore[index]


def test_config_error_exits_2_and_names_file_line_key(run_llmctl: Run, config_file: Path) -> None:
    config_file.write_text("[defaults]\ntemprature = 1\n")
    result = run_llmctl("generate", "Hi")
    assert result.exit_code == 2
    assert f"{config_file}:2: defaults.temprature: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_model_exit_2_without_traceback(run_llmctl: Run) -> None:
    result = run_llmctl("generate", "-m", "nonexistent-model", "Hi")
    assert result.exit_code == 2
    assert "Unknown model 'nonexistent-model'" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(run_llmctl: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmctl.errors import ModelNotFoundError

    monkeypatch.setenv("LLMCTL_DEBUG", "1")
    with pytest.raises(ModelNotFoundError):
        run_llmctl("generate", "-m", "nonexistent-model", "Hi")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model with a long context so a reply can run long enough to interrupt."""
    return build_tiny_model("llama", tmp_path_factory.mktemp("slow") / "llama", context=8192, never_stops=True)


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_ctrl_c_keeps_streamed_text_and_exits_130(slow_model: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmctl", "generate", "-m", str(slow_model), "Hi", "--max-tokens", "8000", "-u"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None
    first = proc.stdout.read(1)  # the answer has started streaming
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert len(first + rest) > 1
    text = stderr.decode()
    assert "Interrupted" in text
    assert "Traceback" not in text
    assert "(exact)" in text  # usage of the partial answer is still known


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_closed_pipe_ends_quietly(slow_model: Path) -> None:
    command = f"{sys.executable} -m llmctl generate -m {slow_model} Hi --max-tokens 2000 | head -c 20 > /dev/null"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, env=_env(), timeout=120)
    assert proc.returncode == 0
    assert b"Traceback" not in proc.stderr
    assert b"BrokenPipe" not in proc.stderr
    assert b"Exception ignored" not in proc.stderr
