"""Fast start as policy: which libraries each command really imports, read from ``sys.modules``.

Each check runs the real entry point (``llmctl.cli.app.main``) in a fresh interpreter, so
nothing imported by the test process can hide or fake an import. Time is never measured
here (benchmarks/startup.py does that); what was imported is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# What no command that does not talk to a model may load: each costs from 0.1 s to several seconds.
HEAVY = (
    "torch",
    "transformers",
    "accelerate",
    "bitsandbytes",
    "openai",
    "anthropic",
    "huggingface_hub",
    "tokenizers",
    "safetensors",
)

PROBE = r"""
import json, sys
out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["llmctl", *args]
from llmctl.cli.app import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
with open(out, "w", encoding="utf-8") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def run_probe(args: list[str], tmp_path: Path) -> tuple[set[str], str]:
    """The top-level packages ``llmctl ARGS`` imported; asserts the command succeeded."""
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
        check=False,
    )
    assert out.exists(), f"llmctl {' '.join(args)} crashed: {proc.stderr[-2000:]}"
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["code"] == 0, f"llmctl {' '.join(args)} exited {data['code']}: {proc.stderr[-2000:]}"
    return {name.split(".")[0] for name in data["modules"]}, proc.stdout


@pytest.fixture
def busy_config(config_file: Path, tiny_models: dict[str, Path]) -> Iterator[Path]:
    """A config like a real user's: a local alias, hosted aliases, an OpenAI-compatible server."""
    config_file.write_text(
        f"""
default_model = "local"

[providers.my-vllm]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[models.local]
provider = "hf"
id = "{tiny_models["llama"]}"

[models.fast]
provider = "openai"
id = "gpt-4o-mini"

[models.claude]
provider = "anthropic"
id = "claude-haiku-4-5"

[models.served]
provider = "my-vllm"
id = "meta-llama/Llama-3.1-8B-Instruct"
""",
        encoding="utf-8",
    )
    yield config_file


# Add each new command that never calls a model here.
FAST_COMMANDS = [
    ["--help"],
    ["--version"],
    ["config", "path"],
    ["config", "show"],
    ["config", "show", "--json"],
    ["models", "list"],
    ["models", "list", "--json"],
    ["usage"],
    ["usage", "--json"],
    ["chat", "--list"],
    ["generate", "--help"],
    ["chat", "--help"],
    ["bench", "--help"],
    ["compare", "--help"],
    ["logs"],
    ["logs", "--json"],
    ["logs", "status"],
    ["completion", "bash"],
]


@pytest.mark.parametrize("args", FAST_COMMANDS, ids=" ".join)
def test_commands_that_call_no_model_import_no_heavy_library(
    args: list[str], busy_config: Path, tmp_path: Path
) -> None:
    imported, _ = run_probe(args, tmp_path)
    assert not imported & set(HEAVY), f"llmctl {' '.join(args)} imported {sorted(imported & set(HEAVY))}"


@pytest.mark.parametrize("args", [["--help"], ["--version"]], ids=" ".join)
def test_help_skips_pydantic_and_rich(args: list[str], busy_config: Path, tmp_path: Path) -> None:
    """`llmctl --help` has a 0.15 s budget; pydantic and rich would take most of it.

    If this fails, a module imported by ``llmctl/cli/app.py`` imports ``llmctl.config`` (or a
    service that does) or rich at module level: move that import into the function that needs it.
    """
    imported, stdout = run_probe(args, tmp_path)
    assert "llmctl" in stdout
    assert "pydantic" not in imported
    assert "rich" not in imported


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_the_probe_sees_a_local_model_load_torch(busy_config: Path, tmp_path: Path) -> None:
    """The check above can fail: a command that does load a model shows up with torch."""
    imported, _ = run_probe(["generate", "-m", "local", "--max-tokens", "2", "hi"], tmp_path)
    assert {"torch", "transformers"} <= imported
    assert not imported & {"openai", "anthropic"}


def test_openai_generate_imports_only_the_openai_sdk(
    busy_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.wire.openai_server import OpenAIServer, Reply

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-lazy")
    with OpenAIServer(api_key="sk-test-lazy", default=Reply(text="Hi there", usage=(5, 2))) as server:
        busy_config.write_text(
            busy_config.read_text(encoding="utf-8") + f'\n[providers.openai]\nbase_url = "{server.base_url}"\n',
            encoding="utf-8",
        )
        imported, stdout = run_probe(["generate", "-m", "fast", "hello"], tmp_path)
        assert len(server.requests_to("/v1/chat/completions")) == 1
    assert stdout.strip() == "Hi there"
    assert "openai" in imported
    assert not imported & (set(HEAVY) - {"openai"})


def test_anthropic_generate_imports_only_the_anthropic_sdk(
    busy_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.wire.anthropic_server import AnthropicServer, Reply

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-lazy")
    with AnthropicServer(api_key="sk-ant-lazy", default=Reply(text="Hello", usage=(5, 1))) as server:
        busy_config.write_text(
            busy_config.read_text(encoding="utf-8") + f'\n[providers.anthropic]\nbase_url = "{server.base_url}"\n',
            encoding="utf-8",
        )
        imported, stdout = run_probe(["generate", "-m", "claude", "hello"], tmp_path)
        assert len(server.requests_to("/v1/messages")) == 1
    assert stdout.strip() == "Hello"
    assert "anthropic" in imported
    assert not imported & (set(HEAVY) - {"anthropic"})
