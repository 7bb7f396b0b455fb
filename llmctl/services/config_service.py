"""``llmctl config``: create, show and change the config file, always validated."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from llmctl.config import (
    Settings,
    config_edit_lock,
    parse_settings,
    read_config_text,
    read_raw,
    validate_settings,
    write_private,
)
from llmctl.errors import ConfigError, ModelNotFoundError, UsageError
from llmctl.paths import example_config_path
from llmctl.redaction import redact

STARTER_CONFIG = """\
# llmctl configuration. Every key, with its default: the file that
# `llmctl config path --example` names (`llmctl config init --example --force`
# writes it here); `llmctl config show` prints the values in effect.

# The model used when -m is not given: an alias below, PROVIDER/MODEL-ID, or a
# local folder. "demo" is the tiny offline model shipped with llmctl.
default_model = "demo"

[defaults]            # generation defaults; flags override them. Only what is set here is
                      # sent to hosted APIs; local models use the values shown when unset.
# temperature = 0.7
# top_p = 0.9
# max_tokens = 512

[usage]
# Prompts and answers are kept in the usage ledger, for `llmctl logs`. They stay on this
# machine; `llmctl logs off` (or false here) keeps only token counts and costs.
store_text = true

# [providers.hf]      # local models (transformers)
# device_map = "auto"
# dtype = "auto"      # auto | float16 | bfloat16 | float32

# [providers.openai]
# api_key_env = "OPENAI_API_KEY"

# [providers.my-vllm] # any OpenAI-compatible server
# kind = "openai"
# base_url = "http://127.0.0.1:8000/v1"

# [models.llama3]     # an alias: llmctl generate -m llama3 "..."
# provider = "hf"
# id = "meta-llama/Meta-Llama-3-8B-Instruct"
# quantization = "8bit"
"""

_SECRET_WORDS = ("key", "token", "secret", "password")


def init_config(path: Path, *, force: bool, example: bool = False) -> None:
    """Write the short starter file, or with ``example`` the full one documenting every key."""
    text = example_config_path().read_text(encoding="utf-8") if example else STARTER_CONFIG
    parse_settings(text, path)
    with config_edit_lock(path):
        if path.exists() and not force:
            raise UsageError(f"{path} already exists.", hint="Use --force to overwrite it.")
        write_private(path, text)


def redact_config(data: Any, key: str = "") -> Any:
    """Hide anything that could be a secret: secret-named keys whole (``api_key_cmd``: its arguments may
    be one), credentials inside URLs (``base_url``). Names of environment variables stay."""
    if isinstance(data, dict):
        return {k: redact_config(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [redact_config(v, key) for v in data]
    lowered = key.lower()
    if isinstance(data, str) and any(w in lowered for w in _SECRET_WORDS) and not lowered.endswith("_env"):
        return "<redacted>"
    if isinstance(data, str):
        return redact(data)
    return data


def shown_value(key: str, value: Any) -> Any:
    """``value`` of dotted ``key`` as it may be echoed back (``config set`` confirms what it stored)."""
    return redact_config(value, key.rpartition(".")[2])


def effective_config(settings: Settings) -> dict[str, Any]:
    """The settings in effect (file values over defaults), secrets redacted."""
    dumped = settings.model_dump(mode="json", exclude_none=True)
    result: dict[str, Any] = redact_config({k: v for k, v in dumped.items() if v != {}})
    return result


def render_toml(data: dict[str, Any]) -> str:
    return tomli_w.dumps(data)


def parse_value(raw: str) -> Any:
    """A TOML value when it parses as one (``0.2``, ``true``, ``[1, 2]``), else a string."""
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def set_values(path: Path, pairs: list[tuple[str, str]], *, must_exist: bool = False) -> list[tuple[str, Any]]:
    """Set dotted KEYs in the file, validating the whole config before writing anything.

    The read, the change and the write happen under one lock, so parallel ``config set``
    runs of different keys all keep their key.
    """
    with config_edit_lock(path):
        on_disk = read_config_text(path, must_exist=must_exist) or ""
        data = read_raw(path, must_exist=must_exist)
        stored = _apply(data, path, pairs)
        text = tomli_w.dumps(data)
        # Problems are located in the file as it is on disk (what the user can open), and a value
        # typed here that is not a number or true/false is called that, not "a quoted string".
        settings = validate_settings(data, path, on_disk, typed_keys={tuple(key.split(".")) for key, _ in pairs})
        if any(key == "default_model" for key, _ in stored):
            _require_resolvable_default(settings)
        write_private(path, text)
    return stored


def _require_resolvable_default(settings: Settings) -> None:
    from llmctl.providers.registry import resolve

    try:
        resolve(settings.default_model, settings)
    except ModelNotFoundError as exc:
        raise ConfigError(f"default_model: {exc.message}", hint=exc.hint) from None


def _apply(data: dict[str, Any], path: Path, pairs: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    stored = []
    for key, raw_value in pairs:
        parts = key.split(".")
        if not all(parts):
            raise UsageError(f"Invalid key {key!r}.", hint="Use a dotted path like defaults.temperature.")
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parts[: depth + 1])} is a value, not a table, in {path}.")
            node = child
        value = parse_value(raw_value)
        node[parts[-1]] = value
        stored.append((key, value))
    return stored
