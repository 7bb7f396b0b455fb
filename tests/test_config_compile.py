"""The ``compile`` keys: a provider's and an alias's, validated with the file and line of a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmctl.config import ConfigError, parse_settings

GOOD = [
    ("[providers.hf]\ncompile = true\n", ("providers", "hf"), True),
    ('[providers.local]\nkind = "huggingface"\ncompile = false\n', ("providers", "local"), False),
    ('[models.m]\nprovider = "hf"\nid = "org/name"\ncompile = true\n', ("models", "m"), True),
]


@pytest.mark.parametrize(("text", "where", "value"), GOOD)
def test_compile_is_read(text: str, where: tuple[str, str], value: bool, tmp_path: Path) -> None:
    settings = parse_settings(text, tmp_path / "config.toml")
    table = settings.providers[where[1]] if where[0] == "providers" else settings.models[where[1]]
    assert table.compile is value


BAD = [
    ('[providers.hf]\ncompile = "yes"\n', 2, "providers.hf.compile"),
    ('[providers.hf]\ndtype = "auto"\ncompile = 3\n', 3, "providers.hf.compile"),
    ('[models.m]\nprovider = "hf"\nid = "org/name"\ncompile = "fast"\n', 4, "models.m.compile"),
    # Hosted APIs decode on their servers: the key does not exist for them.
    ("[providers.openai]\ncompile = true\n", 2, "providers.openai.compile"),
    ("[providers.anthropic]\ncompile = true\n", 2, "providers.anthropic.compile"),
]


@pytest.mark.parametrize(("text", "line", "key"), BAD)
def test_bad_compile_names_file_line_and_key(text: str, line: int, key: str, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError) as info:
        parse_settings(text, path)
    assert f"{path}:{line}: {key}" in str(info.value)
