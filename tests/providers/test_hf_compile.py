"""Opt-in compiled decoding (``--compile`` / ``compile = true``): static cache + torch.compile.

The fast tests read the arguments generate() receives (a spy in place of generate); the slow
ones compile a tiny model for real and compare its greedy text with eager decoding.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmctl.config import Settings
from llmctl.domain import GenerationParams, GenerationRequest, Message, collect
from llmctl.errors import UsageError
from llmctl.providers.hf import compiled
from llmctl.providers.hf.kv_cache import KVCacheProvider
from llmctl.providers.hf.provider import HuggingFaceProvider
from llmctl.providers.registry import open_provider, resolve
from llmctl.services.bench.run import with_load_overrides

GREEDY = GenerationParams(temperature=0, max_tokens=12)
REQUEST = GenerationRequest((Message("user", "Hello there"),), GREEDY)


@pytest.fixture(autouse=True)
def inductor_cache_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiling sets TORCHINDUCTOR_CACHE_DIR for the process; put it back after each test."""
    monkeypatch.delenv(compiled.INDUCTOR_CACHE_ENV, raising=False)


@pytest.fixture(scope="session")
def shared_kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One inductor cache for the slow tests: the first compiles cold, the others reuse its kernels."""
    return tmp_path_factory.mktemp("inductor-cache")


def settings_for(folder: Path, *, provider: bool | None, alias: bool | None) -> Settings:
    hf: dict[str, Any] = {} if provider is None else {"compile": provider}
    model: dict[str, Any] = {"provider": "hf", "path": str(folder)}
    if alias is not None:
        model["compile"] = alias
    return Settings.model_validate({"providers": {"hf": hf}, "models": {"tiny": model}})


def open_tiny(folder: Path, *, provider: bool | None = None, alias: bool | None = None) -> HuggingFaceProvider:
    opened = open_provider(resolve("tiny", settings_for(folder, provider=provider, alias=alias)))
    assert isinstance(opened, HuggingFaceProvider)
    return opened


def generate_kwargs_of(
    provider: HuggingFaceProvider | KVCacheProvider, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The keyword arguments one stream() hands model.generate (which then generates nothing)."""
    seen: dict[str, Any] = {}

    def spy(**kwargs: Any) -> None:
        seen.update(kwargs)

    inner = provider.inner if isinstance(provider, KVCacheProvider) else provider
    monkeypatch.setattr(inner.loaded.model, "generate", spy)
    collect(provider.stream(REQUEST))
    return seen


# (provider's compile, alias's compile) -> compiled? The alias wins when it says either way.
SETTINGS_CASES = [
    (None, None, False),
    (True, None, True),
    (None, True, True),
    (False, True, True),
    (True, False, False),
]


@pytest.mark.parametrize(("provider_compile", "alias_compile", "expected"), SETTINGS_CASES)
def test_compile_setting_reaches_generate(
    provider_compile: bool | None,
    alias_compile: bool | None,
    expected: bool,
    tiny_models: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = open_tiny(tiny_models["llama"], provider=provider_compile, alias=alias_compile)
    assert provider.compiles is expected
    kwargs = generate_kwargs_of(provider, monkeypatch)
    if not expected:
        assert "cache_implementation" not in kwargs and "compile_config" not in kwargs
        assert provider.compile_seconds is None and provider.compile_cache_dir() is None
        return
    assert kwargs["cache_implementation"] == "static"
    config = kwargs["compile_config"]
    assert config.mode == "default" and config._compile_all_devices  # on a CPU: no CUDA graphs, compile anyway
    prompt = len(provider.prompt_ids(REQUEST))
    assert kwargs["max_cache_len"] >= prompt + GREEDY.max_tokens  # type: ignore[operator]
    assert kwargs["max_new_tokens"] == GREEDY.max_tokens
    assert compiled.os.environ[compiled.INDUCTOR_CACHE_ENV] == str(provider.compile_cache_dir())


def test_compiling_on_weights_loaded_by_another_provider_still_caches_under_llmctl_home(
    isolated_home: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    eager = open_tiny(tiny_models["llama"])
    shared = HuggingFaceProvider(open_tiny(tiny_models["llama"], alias=True).resolved, loaded=eager.loaded)
    kwargs = generate_kwargs_of(shared, monkeypatch)
    assert kwargs["cache_implementation"] == "static"
    assert compiled.os.environ[compiled.INDUCTOR_CACHE_ENV] == str(isolated_home / "torch-compile")


def test_chat_kv_reuse_keeps_its_dynamic_cache_when_compiling(
    tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's own cache and cache_implementation cannot go together: that call decodes eagerly."""
    provider = open_tiny(tiny_models["llama"], provider=True)
    kwargs = generate_kwargs_of(KVCacheProvider(provider), monkeypatch)
    assert kwargs["cache"] is not None
    assert "cache_implementation" not in kwargs and "compile_config" not in kwargs


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_compile_with_bitsandbytes_quantization_is_refused_before_loading(
    quantization: str, tiny_models: dict[str, Path]
) -> None:
    """transformers would silently decode such a model eagerly; say so instead."""
    settings = Settings.model_validate(
        {"models": {"tiny": {"provider": "hf", "path": str(tiny_models["llama"]), "quantization": quantization}}}
    )
    with pytest.raises(UsageError, match=f"compiling does not go with {quantization} quantization"):
        open_provider(with_load_overrides(resolve("tiny", settings), None, None, compile=True))


# (prompt tokens, new tokens, context window) -> static cache length: bucketed, so calls share a compiled graph.
CACHE_LENGTH_CASES = [
    (10, 12, None, 256),
    (200, 56, None, 256),
    (200, 57, None, 512),
    (1000, 500, 8192, 1536),
    (100, 100, 150, 200),  # the window is smaller than the bucket: never below what the call needs
    (60, 40, 128, 128),  # the window caps the bucket
]


@pytest.mark.parametrize(("prompt", "new", "window", "expected"), CACHE_LENGTH_CASES)
def test_static_cache_length_is_bucketed_within_the_window(
    prompt: int, new: int, window: int | None, expected: int
) -> None:
    assert compiled.static_cache_length(prompt, new, window) == expected


def test_compile_cache_lives_under_llmctl_home_unless_the_user_chose(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.delenv(compiled.INDUCTOR_CACHE_ENV, raising=False)
    assert compiled.use_compile_cache() == isolated_home / "torch-compile"
    # torch writes its default (the temp folder) into the variable when inductor's config is imported
    monkeypatch.setenv(compiled.INDUCTOR_CACHE_ENV, default_cache_dir())
    assert compiled.use_compile_cache() == isolated_home / "torch-compile"
    assert compiled.os.environ[compiled.INDUCTOR_CACHE_ENV] == str(isolated_home / "torch-compile")
    chosen = tmp_path / "my-kernels"
    monkeypatch.setenv(compiled.INDUCTOR_CACHE_ENV, str(chosen))
    assert compiled.use_compile_cache() == chosen


@pytest.mark.slow
def test_compiled_greedy_text_equals_eager(
    tiny_models: dict[str, Path], shared_kernel_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(compiled.INDUCTOR_CACHE_ENV, str(shared_kernel_cache))  # the user's choice is kept
    eager = open_tiny(tiny_models["llama"])
    fast = open_tiny(tiny_models["llama"], alias=True)
    expected = collect(eager.stream(REQUEST))
    first, second = collect(fast.stream(REQUEST)), collect(fast.stream(REQUEST))
    assert first.text == second.text == expected.text
    assert first.usage.output_tokens == expected.usage.output_tokens == GREEDY.max_tokens
    assert fast.compile_seconds is not None and fast.compile_seconds > 0
    assert fast.compile_cache_dir() == shared_kernel_cache
    assert any(shared_kernel_cache.iterdir()), "compiled kernels are cached on disk"


def write_config(config_file: Path, folder: Path, extra: str = "") -> None:
    config_file.write_text(f'[models.tiny]\nprovider = "hf"\npath = "{folder}"\n{extra}', encoding="utf-8")


def llmctl_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``llmctl ARGS`` in a fresh process: torch.compile's in-memory caches start empty, as for a user."""
    return subprocess.run([sys.executable, "-m", "llmctl", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_generate_and_bench_with_compile_report_the_compile_time(
    config_file: Path, tiny_models: dict[str, Path], shared_kernel_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(compiled.INDUCTOR_CACHE_ENV, str(shared_kernel_cache))
    write_config(config_file, tiny_models["llama"])
    ask = ("generate", "-m", "tiny", "--temperature", "0", "--max-tokens", "8", "--raw", "Hello there")
    eager, fast = llmctl_process(*ask), llmctl_process(*ask, "--compile")
    assert eager.returncode == fast.returncode == 0, fast.stderr
    assert fast.stdout == eager.stdout
    assert "static cache + torch.compile" in fast.stderr and str(shared_kernel_cache) in fast.stderr
    assert re.search(r"torch\.compile took \d+\.\d s of this call", fast.stderr), fast.stderr
    assert "torch.compile" not in eager.stderr

    bench = ("bench", "tiny", "--compile", "--runs", "1", "--warmup", "1", "--prompt-tokens", "8", "--max-tokens", "4")
    shown = llmctl_process(*bench, "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["settings"]["compile"] is True
    assert data["compile"]["compile_s"] > 0 and data["compile"]["in_warmup"] is True
    assert data["compile"]["cache_dir"] == str(shared_kernel_cache)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-m", "openai/gpt-4o-mini", "--compile", "hi"), "--compile: options that apply to local models"),
        (("--continue", "--compile", "hi"), "--compile"),
    ],
)
def test_compile_flag_is_refused_where_it_cannot_apply(run_llmctl: Any, args: tuple[str, ...], message: str) -> None:
    result = run_llmctl("generate", *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_bench_compile_is_refused_for_an_api_model(run_llmctl: Any) -> None:
    result = run_llmctl("bench", "openai/gpt-4o-mini", "--compile")
    assert result.exit_code == 2
    assert "--compile: options that apply to local models" in result.stderr


@pytest.mark.parametrize(
    ("seconds", "in_warmup", "says"),
    [
        (12.34, True, "12.3 s compiling, in the warm-up runs"),
        (3.0, False, "3.0 s compiling, inside the first timed run (--warmup 0)"),
        (None, True, "time unknown, in the warm-up runs"),
    ],
)
def test_bench_report_says_what_compiling_took_and_where(seconds: float | None, in_warmup: bool, says: str) -> None:
    from llmctl.cli.bench import _compile_cell
    from llmctl.services.bench.run import BenchOptions, BenchReport, CompileFacts, Environment

    facts = CompileFacts(seconds=seconds, cache_dir="/kernels", in_warmup=in_warmup)
    report = BenchReport(
        model="tiny", provider="hf", kind="huggingface", options=BenchOptions(compile=True),
        environment=Environment(device="cpu"), import_s=0.0, load_s=0.0, runs=(), peak_rss_bytes=None, compile=facts,
    )  # fmt: skip
    cell = _compile_cell(report)
    assert cell.startswith("torch.compile + static cache: ") and says in cell and cell.endswith("cached in /kernels")
