"""``llmctl completion SHELL``: the script a shell loads, and the completions it then gets, through real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult

Run = Callable[..., CliResult]

LLMCTL = str(Path(sys.executable).with_name("llmctl"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[models.llama3]\nprovider = "hf"\nid = "meta-llama/Meta-Llama-3-8B-Instruct"\n\n'
        '[models.gpt]\nprovider = "openai"\nid = "gpt-4o-mini"\n\n'
        '[providers.vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\n'
    )
    return path


def _bash_completions(words: list[str], config: Path) -> list[str]:
    """Load the printed script into a real bash, then ask it to complete ``words`` as Tab would."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    array = " ".join(f"'{w}'" for w in words)
    script = (
        f'eval "$({LLMCTL} completion bash)"\n'
        f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}\n"
        '_llmctl_completion llmctl\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "LLMCTL_CONFIG": str(config), "PATH": f"{Path(LLMCTL).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["llmctl", "gen"], ["generate"]),
        (["llmctl", "models", "l"], ["list", "load"]),
        (["llmctl", "generate", "--max"], ["--max-tokens"]),
        (
            ["llmctl", "generate", "-m", ""],
            ["demo", "gpt", "llama3", "anthropic/", "hf/", "llamacpp/", "openai/", "vllm/"],
        ),
        (["llmctl", "chat", "-m", "ll"], ["llama3", "llamacpp/"]),
        (["llmctl", "bench", "v"], ["vllm/"]),
        (["llmctl", "models", "info", "g"], ["gpt"]),
    ],
)
def test_bash_completes_commands_options_and_models(config: Path, words: list[str], expected: list[str]) -> None:
    assert sorted(_bash_completions(words, config)) == sorted(expected)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_every_shell_gets_a_script(run_llmctl: Run, shell: str) -> None:
    result = run_llmctl("completion", shell)
    assert result.exit_code == 0, result.stderr
    assert "_LLMCTL_COMPLETE" in result.stdout and "llmctl" in result.stdout


def test_an_unknown_shell_is_a_usage_error(run_llmctl: Run) -> None:
    result = run_llmctl("completion", "tcsh")
    assert result.exit_code == 2
    assert "bash" in result.stderr and "Traceback" not in result.stderr


def test_a_broken_config_completes_nothing_quietly(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[models.x\n")
    assert _bash_completions(["llmctl", "generate", "-m", ""], broken) == []
