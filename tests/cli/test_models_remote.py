"""``llmctl models list --remote PROVIDER`` against loopback OpenAI/Anthropic servers, and hosted rows in the list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.wire.anthropic_server import AnthropicServer
from tests.wire.openai_server import OpenAIServer

Run = Callable[..., CliResult]


def test_remote_openai_compatible_models_as_json(run_llmctl: Run, config_file: Path) -> None:
    models: list[str | dict[str, Any]] = [
        "qwen2.5-7b",
        {"id": "llama-3.1-8b", "owned_by": "vllm", "max_model_len": 131072},
    ]
    with OpenAIServer(api_key=None, models=models) as vllm:
        config_file.write_text(f'[providers.my-vllm]\nkind = "openai"\nbase_url = "{vllm.base_url}"\n')
        result = run_llmctl("models", "list", "--remote", "my-vllm", "--json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [(m["id"], m["provider"], m["owned_by"], m["context_window"]) for m in listed] == [
        ("llama-3.1-8b", "my-vllm", "vllm", 131072),
        ("qwen2.5-7b", "my-vllm", "openai", None),
    ]
    assert vllm.last_request.path == "/v1/models"


def test_remote_anthropic_models_table(run_llmctl: Run, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-x")
    monkeypatch.setenv("COLUMNS", "200")
    with AnthropicServer(api_key="sk-ant-x") as server:
        config_file.write_text(f'[providers.anthropic]\nbase_url = "{server.base_url}"\n')
        result = run_llmctl("models", "list", "--remote", "anthropic")
    assert result.exit_code == 0, result.stderr
    for model_id, name in [("claude-opus-4-7", "Claude Opus 4.7"), ("claude-haiku-4-5-20251001", "Claude Haiku 4.5")]:
        row = next(line for line in result.stdout.splitlines() if model_id in line)
        assert name in row
    assert "2025-10-01" in result.stdout
    assert "3 models. Use one with: llmctl generate -m anthropic/MODEL" in result.stderr


def test_remote_listing_with_a_rejected_key(
    run_llmctl: Run, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with OpenAIServer(api_key="sk-right") as server:
        config_file.write_text(f'[providers.openai]\nbase_url = "{server.base_url}"\n')
        result = run_llmctl("models", "list", "--remote", "openai")
    assert result.exit_code == 1
    assert "rejected the API key from $OPENAI_API_KEY" in result.stderr


def test_remote_listing_of_a_server_without_one(run_llmctl: Run, config_file: Path) -> None:
    with OpenAIServer(api_key=None) as server:
        config_file.write_text(f'[providers.odd]\nkind = "openai"\nbase_url = "{server.root_url}/nothing"\n')
        result = run_llmctl("models", "list", "--remote", "odd")
    assert result.exit_code == 1
    assert "has no model-listing endpoint" in result.stderr


def test_remote_needs_a_hosted_provider(run_llmctl: Run) -> None:
    unknown = run_llmctl("models", "list", "--remote", "nope")
    assert unknown.exit_code == 2 and "Unknown provider 'nope'" in unknown.stderr
    local = run_llmctl("models", "list", "--remote", "hf")
    assert local.exit_code == 2 and "local Hugging Face provider" in local.stderr


def test_models_list_shows_hosted_providers_without_importing_an_sdk(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[providers.my-vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[providers.anthropic]\ntimeout = 30\n[models.fast]\nprovider = "openai"\nid = "gpt-4o-mini"\n'
    )
    probe = (
        "import sys\nsys.argv = ['llmctl', 'models', 'list', '--json']\nfrom llmctl.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('openai', 'anthropic', 'torch') if m in sys.modules], file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "LLMCTL_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    entries = {e["name"]: e for e in json.loads(done.stdout)}
    assert entries["my-vllm/MODEL"]["provider"] == "my-vllm"
    assert entries["my-vllm/MODEL"]["description"] == "http://127.0.0.1:9/v1"
    assert entries["anthropic/MODEL"]["kind"] == "anthropic"
    assert entries["fast"]["model_id"] == "gpt-4o-mini"
