"""Config parsing: valid files load, and every mistake names the file, the line and the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

import llmctl
from llmctl.config import Settings, line_of_key, load_settings, parse_settings
from llmctl.errors import ConfigError
from llmctl.paths import example_config_path
from llmctl.provider_specs import AnthropicProviderSettings, HuggingFaceProviderSettings, OpenAIProviderSettings

REPO = Path(__file__).resolve().parent.parent


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "nope.toml")
    assert settings.default_model == "demo"
    assert settings.defaults.temperature == 0.7
    assert settings.defaults.max_tokens == 512


def test_issue_example_shape_loads(tmp_path: Path) -> None:
    text = """
default_model = "llama3"
[defaults]
temperature = 0.2
top_p = 0.95
max_tokens = 64
[providers.hf]
kind = "huggingface"
device_map = "auto"
[providers.my-vllm]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "VLLM_API_KEY"
[providers.anthropic]
timeout = 5
[models.llama3]
provider = "hf"
id = "meta-llama/Meta-Llama-3-8B-Instruct"
quantization = "8bit"
"""
    settings = parse_settings(text, tmp_path / "c.toml")
    assert isinstance(settings.providers["hf"], HuggingFaceProviderSettings)
    assert isinstance(settings.providers["my-vllm"], OpenAIProviderSettings)
    assert isinstance(settings.providers["anthropic"], AnthropicProviderSettings)
    assert settings.providers["anthropic"].timeout == 5
    assert settings.models["llama3"].quantization == "8bit"
    assert settings.defaults.max_tokens == 64


def test_kind_defaults_to_table_name_and_hf_alias() -> None:
    settings = Settings.model_validate({"providers": {"openai": {}, "hf": {}, "x": {"kind": "hf"}}})
    assert settings.providers["openai"].kind == "openai"
    assert settings.providers["hf"].kind == "huggingface"
    assert settings.providers["x"].kind == "huggingface"


def test_unknown_key_names_file_line_and_key_path(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = '[defaults]\ntemperature = 0.5\n\n[providers.my-vllm]\nkind = "openai"\nbase_urll = "http://x"\n'
    with pytest.raises(ConfigError) as info:
        parse_settings(text, path)
    message = str(info.value)
    assert f"{path}:6" in message
    assert "providers.my-vllm.base_urll" in message
    assert "unknown key" in message


def test_wrong_type_names_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = 'default_model = "demo"\n[defaults]\ntemperature = "hot"\n'
    with pytest.raises(ConfigError) as info:
        parse_settings(text, path)
    assert f"{path}:3: defaults.temperature" in str(info.value)


def test_out_of_range_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"defaults\.top_p"):
        parse_settings("[defaults]\ntop_p = 3\n", tmp_path / "c.toml")


def test_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError) as info:
        parse_settings('default_model = "demo"\n[defaults\n', path)
    message = str(info.value)
    assert str(path) in message
    assert "line 2" in message and "column" in message


def test_alias_with_unknown_provider(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = '[models.fast]\nprovider = "nowhere"\nid = "m"\n'
    with pytest.raises(ConfigError) as info:
        parse_settings(text, path)
    assert f"{path}:2: models.fast.provider" in str(info.value)
    assert "nowhere" in str(info.value)


def test_unknown_provider_kind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"providers\.x"):
        parse_settings('[providers.x]\nkind = "cohere"\n', tmp_path / "c.toml")


def test_line_of_key_handles_dotted_and_quoted_keys() -> None:
    text = '[models."my.model"]\nprovider = "hf"\n[defaults]\nseed = 1\ndefaults2.x = 2\n'
    assert line_of_key(text, ("models", "my.model", "provider")) == 2
    assert line_of_key(text, ("defaults", "seed")) == 4
    assert line_of_key(text, ("defaults", "missing")) == 3


def _field_names(model: type[BaseModel]) -> set[str]:
    """Every key a config file can hold, walking nested tables and provider kinds."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for candidate in _models_in(field.annotation):
            names |= _field_names(candidate)
    return names


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def test_example_config_shipped_in_the_package_is_valid_and_complete() -> None:
    example = example_config_path()
    assert example.is_file() and example.parent == Path(llmctl.__file__).parent
    assert (REPO / "config.example.toml").read_text(encoding="utf-8") == example.read_text(encoding="utf-8")
    text = example.read_text(encoding="utf-8")
    settings = parse_settings(text, example)
    assert settings.default_model == "demo"
    missing = sorted(name for name in _field_names(Settings) if not re.search(rf"\b{name}\b", text))
    assert not missing, f"config.example.toml does not document: {missing}"
