"""Model references resolve the documented way, and unknown ones explain themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.errors import MissingDependencyError, ModelNotFoundError
from llmctl.paths import demo_model_dir
from llmctl.providers.registry import load_factory, resolve


def settings_with_alias() -> Settings:
    return Settings.model_validate(
        {
            "default_model": "fast",
            "providers": {"my-vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"}},
            "models": {"fast": {"provider": "my-vllm", "id": "Qwen/Qwen2.5-7B-Instruct"}},
        }
    )


def test_default_is_the_demo_model() -> None:
    resolved = resolve(None, Settings())
    assert resolved.alias == "demo"
    assert resolved.kind == "huggingface"
    assert Path(resolved.model_id) == demo_model_dir()


def test_default_model_from_config_is_an_alias() -> None:
    resolved = resolve(None, settings_with_alias())
    assert (resolved.provider_name, resolved.kind, resolved.model_id) == (
        "my-vllm",
        "openai",
        "Qwen/Qwen2.5-7B-Instruct",
    )
    assert resolved.display_name == "fast"


def test_provider_slash_model_splits_at_first_slash() -> None:
    resolved = resolve("hf/meta-llama/Meta-Llama-3-8B-Instruct", Settings())
    assert resolved.provider_name == "hf"
    assert resolved.kind == "huggingface"
    assert resolved.model_id == "meta-llama/Meta-Llama-3-8B-Instruct"


def test_builtin_hosted_providers_need_no_config() -> None:
    assert resolve("openai/gpt-4o-mini", Settings()).kind == "openai"
    assert resolve("anthropic/claude-sonnet-4-5", Settings()).kind == "anthropic"


def test_named_provider_from_config() -> None:
    resolved = resolve("my-vllm/meta-llama/Llama-3.1-8B", settings_with_alias())
    assert resolved.kind == "openai"
    assert resolved.model_id == "meta-llama/Llama-3.1-8B"


def test_local_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    resolved = resolve(str(tmp_path), Settings())
    assert resolved.kind == "huggingface"
    assert resolved.model_id == str(tmp_path.resolve())


def test_folder_without_config_json_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        resolve(str(tmp_path), Settings())


def test_missing_path() -> None:
    with pytest.raises(ModelNotFoundError, match="No model folder"):
        resolve("./no/such/folder", Settings())


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve("cohere/command-r", settings_with_alias())
    assert "my-vllm" in str(info.value) and "openai" in str(info.value)


def test_unknown_bare_name_suggests_forms() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve("gpt-4o", settings_with_alias())
    assert "fast" in str(info.value) and "PROVIDER/MODEL-ID" in str(info.value)


def test_missing_adapter_package_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError, match=r"llmctl\[local\]"):
        load_factory("huggingface", {"huggingface": "llmctl_no_such_module:X"})
