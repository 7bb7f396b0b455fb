"""The TOML config: read with tomllib, validated with pydantic, written with tomli-w.

Every error names the file, the line and the key path, so a user can fix it
without guessing. See ``config.example.toml`` for every key and its default.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmctl.errors import ConfigError

DEMO_MODEL_ALIAS = "demo"
HF_KINDS = ("huggingface", "hf")
KIND_ALIASES = {"hf": "huggingface"}
BUILTIN_PROVIDERS = ("hf", "huggingface", "openai", "anthropic")

DType = Literal["auto", "float16", "bfloat16", "float32"]
Quantization = Literal["8bit", "4bit"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Defaults(_Strict):
    """Generation defaults; command-line flags override them."""

    temperature: float | None = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float | None = Field(default=0.9, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=512, ge=1)
    seed: int | None = None


class HuggingFaceProviderSettings(_Strict):
    """Local models through transformers."""

    kind: Literal["huggingface"] = "huggingface"
    device_map: str = "auto"
    dtype: DType = "auto"
    quantization: Quantization | None = None
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False
    cache_dir: str | None = None


class _HostedProviderSettings(_Strict):
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_cmd: str | None = None
    timeout: float = Field(default=60.0, gt=0)
    # Seconds a stream may go on without answer text (pings and SSE comments do not count); unset: timeout.
    idle_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # Seconds for the whole call, retries included; unset: no limit.
    total_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_retries: int = Field(default=2, ge=0)
    input_price_per_mtok: float | None = Field(default=None, ge=0)
    output_price_per_mtok: float | None = Field(default=None, ge=0)


class OpenAIProviderSettings(_HostedProviderSettings):
    """OpenAI, or any server that speaks its Chat Completions API (vLLM, Ollama, ...)."""

    kind: Literal["openai"] = "openai"


class AnthropicProviderSettings(_HostedProviderSettings):
    """Anthropic's Messages API."""

    kind: Literal["anthropic"] = "anthropic"


ProviderSettings = Annotated[
    HuggingFaceProviderSettings | OpenAIProviderSettings | AnthropicProviderSettings,
    Field(discriminator="kind"),
]


class ModelSettings(_Strict):
    """An alias: a short name for a model on a provider, with per-model options."""

    provider: str
    id: str
    description: str | None = None
    context_window: int | None = Field(default=None, ge=1)
    quantization: Quantization | None = None
    dtype: DType | None = None
    device_map: str | None = None
    trust_remote_code: bool | None = None
    allow_pickle_weights: bool | None = None
    input_price_per_mtok: float | None = Field(default=None, ge=0)
    output_price_per_mtok: float | None = Field(default=None, ge=0)


class UsageSettings(_Strict):
    """The usage ledger."""

    store_text: bool = False  # keep prompt and answer text in the ledger


class ProviderBudget(_Strict):
    """Spending limits for one provider, in USD."""

    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)


class BudgetSettings(_Strict):
    """Spending limits in USD; a call is refused once one is spent (``--ignore-budget`` overrides)."""

    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)
    providers: dict[str, ProviderBudget] = Field(default_factory=dict)


class Settings(_Strict):
    """The whole config file."""

    default_model: str = DEMO_MODEL_ALIAS
    defaults: Defaults = Field(default_factory=Defaults)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    usage: UsageSettings = Field(default_factory=UsageSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)

    @model_validator(mode="before")
    @classmethod
    def _default_provider_kinds(cls, data: Any) -> Any:
        """``[providers.openai]`` needs no ``kind``: the table name gives it."""
        if not isinstance(data, dict) or not isinstance(data.get("providers"), dict):
            return data
        providers = {}
        for name, table in data["providers"].items():
            if isinstance(table, dict):
                table = dict(table)
                kind = table.get("kind")
                if kind is None and name in BUILTIN_PROVIDERS:
                    kind = name
                if isinstance(kind, str):
                    table["kind"] = KIND_ALIASES.get(kind, kind)
            providers[name] = table
        return {**data, "providers": providers}

    @model_validator(mode="after")
    def _aliases_name_known_providers(self) -> Settings:
        for alias, model in self.models.items():
            if model.provider not in self.providers and model.provider not in BUILTIN_PROVIDERS:
                raise _UnknownProvider(alias, model.provider)
        return self

    def provider(self, name: str) -> HuggingFaceProviderSettings | OpenAIProviderSettings | AnthropicProviderSettings:
        """The settings of a configured provider, or the defaults of a built-in one."""
        if name in self.providers:
            return self.providers[name]
        kind = KIND_ALIASES.get(name, name)
        if kind == "huggingface":
            return HuggingFaceProviderSettings()
        if kind == "openai":
            return OpenAIProviderSettings()
        if kind == "anthropic":
            return AnthropicProviderSettings()
        raise KeyError(name)

    def provider_names(self) -> list[str]:
        names = list(self.providers)
        names += [n for n in BUILTIN_PROVIDERS if n not in names and n != "huggingface"]
        return names


class _UnknownProvider(ValueError):
    def __init__(self, alias: str, provider: str) -> None:
        super().__init__(f"unknown provider {provider!r}")
        self.alias = alias
        self.provider = provider


def _format_loc(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    """Pydantic's error location as a TOML key path (dropping the union tag)."""
    parts = [str(p) for p in loc]
    if len(parts) > 2 and parts[0] == "providers" and parts[2] in ("huggingface", "openai", "anthropic"):
        del parts[2]
    return tuple(parts)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_dotted(key: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'""", key)
    return tuple(p.strip("\"'") for p in parts)


def line_of_key(text: str, key_path: tuple[str, ...]) -> int | None:
    """The 1-based line where ``key_path`` is set (or its table begins), if it can be found."""
    table: tuple[str, ...] = ()
    best: tuple[int, int] | None = None  # (matched depth, line)
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _split_dotted(header.group(1))
            full = table
        else:
            key = _KEY.match(line)
            if not key:
                continue
            full = table + _split_dotted(key.group(1))
        depth = 0
        for a, b in zip(full, key_path, strict=False):
            if a != b:
                break
            depth += 1
        if depth == len(full) and (best is None or depth > best[0]):
            best = (depth, number)
    return best[1] if best else None


def _location(path: Path, text: str, key_path: tuple[str, ...]) -> str:
    line = line_of_key(text, key_path)
    return f"{path}:{line}" if line else str(path)


def parse_settings(text: str, path: Path) -> Settings:
    """Validate config text; raise ConfigError naming file, line and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid TOML: {exc}",
            hint="Fix the syntax at that line and column, or run `llmctl config init --force` for a fresh file.",
        ) from exc
    return validate_settings(data, path, text)


def validate_settings(data: dict[str, Any], path: Path, text: str = "") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            ctx_error = (error.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _UnknownProvider):
                key_path: tuple[str, ...] = ("models", ctx_error.alias, "provider")
                message = (
                    f"unknown provider {ctx_error.provider!r}; define [providers.{ctx_error.provider}] "
                    f"or use one of: {', '.join(BUILTIN_PROVIDERS)}"
                )
            else:
                key_path = _format_loc(error["loc"])
                message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
                if error["type"] == "extra_forbidden":
                    message += " (see config.example.toml for the keys there are)"
            problems.append(f"{_location(path, text, key_path)}: {'.'.join(key_path) or '(top level)'}: {message}")
        raise ConfigError("Invalid config:\n  " + "\n  ".join(problems)) from exc


def load_settings(path: Path) -> Settings:
    """The settings from ``path``; built-in defaults when the file does not exist."""
    if not path.exists():
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}") from exc
    return parse_settings(text, path)


def read_raw(path: Path) -> dict[str, Any]:
    """The file's TOML as a plain dict (empty when it does not exist)."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def write_private(path: Path, text: str) -> None:
    """Write a config file readable by its owner only (it may name secrets' sources)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
