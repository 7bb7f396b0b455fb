"""``llmctl config init | path | show | set``."""

from __future__ import annotations

import json
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult

Run = Callable[..., CliResult]


def test_path_follows_env_then_flag(run_llmctl: Run, config_file: Path, tmp_path: Path) -> None:
    assert run_llmctl("config", "path").stdout.strip() == str(config_file)
    other = tmp_path / "other.toml"
    assert run_llmctl("--config", str(other), "config", "path").stdout.strip() == str(other)


def test_init_writes_a_valid_private_file_and_never_overwrites(run_llmctl: Run, config_file: Path) -> None:
    result = run_llmctl("config", "init")
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert tomllib.loads(config_file.read_text())["default_model"] == "demo"
    assert "#" in config_file.read_text()  # commented starter

    config_file.write_text('default_model = "mine"\n[models.mine]\nprovider = "openai"\nid = "gpt-4o-mini"\n')
    again = run_llmctl("config", "init")
    assert again.exit_code == 2
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert "mine" in config_file.read_text()
    assert run_llmctl("config", "init", "--force").exit_code == 0
    assert tomllib.loads(config_file.read_text())["default_model"] == "demo"


def test_show_prints_effective_settings_with_secrets_redacted(run_llmctl: Run, config_file: Path) -> None:
    config_file.write_text(
        '[providers.openai]\napi_key_env = "MY_OPENAI_KEY"\napi_key_cmd = "echo sk-secret-123"\n'
        "[defaults]\ntemperature = 0.1\n"
    )
    result = run_llmctl("config", "show")
    assert result.exit_code == 0, result.stderr
    assert "sk-secret-123" not in result.stdout
    shown = tomllib.loads(result.stdout)
    assert shown["providers"]["openai"]["api_key_env"] == "MY_OPENAI_KEY"
    assert shown["providers"]["openai"]["api_key_cmd"] == "<redacted>"
    assert shown["defaults"]["temperature"] == 0.1
    assert shown["defaults"]["max_tokens"] == 512  # defaults are filled in
    data = json.loads(run_llmctl("config", "show", "--json").stdout)
    assert data["providers"]["openai"]["timeout"] == 60.0


def test_show_reports_invalid_config(run_llmctl: Run, config_file: Path) -> None:
    config_file.write_text('default_model = "demo"\n\n[providers.hf]\ndevice_mapp = "cpu"\n')
    result = run_llmctl("config", "show")
    assert result.exit_code == 2
    assert f"{config_file}:4: providers.hf.device_mapp: unknown key" in result.stderr


def test_set_validates_before_writing(run_llmctl: Run, config_file: Path) -> None:
    assert run_llmctl("config", "set", "defaults.temperature", "0.3").exit_code == 0
    assert run_llmctl("config", "set", "models.l3.provider", "hf").exit_code == 2  # alias lacks an id yet
    assert not tomllib.loads(config_file.read_text()).get("models")
    assert run_llmctl("config", "set", "providers.my-vllm.kind", "openai").exit_code == 0
    assert run_llmctl("config", "set", "providers.my-vllm.base_url", "http://127.0.0.1:8000/v1").exit_code == 0
    pair = run_llmctl("config", "set", "models.l3.provider", "hf", "models.l3.id", "meta-llama/Meta-Llama-3-8B")
    assert pair.exit_code == 0, pair.stderr
    data = tomllib.loads(config_file.read_text())
    assert data["models"]["l3"] == {"provider": "hf", "id": "meta-llama/Meta-Llama-3-8B"}
    assert data["defaults"]["temperature"] == 0.3
    assert data["providers"]["my-vllm"]["base_url"] == "http://127.0.0.1:8000/v1"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600

    bad = run_llmctl("config", "set", "defaults.temperature", "hot")
    assert bad.exit_code == 2
    assert "defaults.temperature" in bad.stderr
    assert tomllib.loads(config_file.read_text())["defaults"]["temperature"] == 0.3

    assert run_llmctl("config", "set", "defaults.seed").exit_code == 2  # a key without a value
    unknown = run_llmctl("config", "set", "defaults.temprature", "1")
    assert unknown.exit_code == 2 and "unknown key" in unknown.stderr


def test_help_lists_commands_on_one_screen(run_llmctl: Run) -> None:
    result = run_llmctl("--help")
    assert result.exit_code == 0
    for command in ("generate", "models", "config"):
        assert command in result.stdout
    assert len(result.stdout.splitlines()) < 45
    assert "not implemented" not in result.stdout.lower()


def test_config_set_names_the_line_of_the_file_as_it_is_on_disk(run_llmctl: Run, config_file: Path) -> None:
    config_file.write_text(
        '[providers.a]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[providers.b]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'api_key_env = "sk-pasted-0123456789abcdef"\n'
    )
    before = config_file.read_text()
    result = run_llmctl("config", "set", "providers.a.timeout", "5")
    assert result.exit_code == 2
    assert f"{config_file}:7: providers.b.api_key_env" in result.stderr  # line 7 of the file, not of a rewrite
    assert config_file.read_text() == before


def test_config_set_calls_a_word_a_word(run_llmctl: Run, config_file: Path) -> None:
    config_file.write_text("[defaults]\nmax_tokens = 100\n")
    result = run_llmctl("config", "set", "defaults.max_tokens", "abc")
    assert result.exit_code == 2
    assert "the value given is text, not a number" in result.stderr and "quoted" not in result.stderr
