"""Every test gets its own llmctl home and config, and never touches the network."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.tiny_models import build_tiny_model

# Shared fixtures: fake_provider (the scripted provider), oai/ant (loopback vendor servers).
pytest_plugins = ["tests.fakes", "tests.hosted_servers"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """LLMCTL_HOME/LLMCTL_CONFIG point into tmp_path: the variables users have."""
    home = tmp_path / "llmctl-home"
    monkeypatch.setenv("LLMCTL_HOME", str(home))
    monkeypatch.setenv("LLMCTL_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("LLMCTL_DEBUG", raising=False)
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    yield home


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny Llama, Mistral and Gemma models (with chat templates), plus one without a template."""
    root = tmp_path_factory.mktemp("tiny-models")
    models = {family: build_tiny_model(family, root / family) for family in ("llama", "mistral", "gemma")}
    models["no-template"] = build_tiny_model("llama", root / "no-template", with_template=False)
    return models


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_llmctl(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``llmctl ARGS`` in-process through ``main()``, the real entry point, with optional stdin bytes."""

    def run(*args: str, stdin: bytes | None = None) -> CliResult:
        from llmctl.cli.app import main

        stream = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
        if stdin is None:
            stream.isatty = lambda: True  # type: ignore[method-assign]
        monkeypatch.setattr(sys, "stdin", stream)
        monkeypatch.setattr(sys, "argv", ["llmctl", *args])
        capfd.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capfd.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
