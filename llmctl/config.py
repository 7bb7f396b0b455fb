"""The TOML config: read with tomllib, validated with pydantic, written with tomli-w.

Every error names the file, the line and the key path, so a user can fix it
without guessing. ``config.example.toml`` (shipped in the package, see
``paths.example_config_path``) documents every key and its default.

Types are strict: TOML has integers, floats and booleans, so ``max_tokens = "512"``
or ``trust_remote_code = "on"`` is a mistake to report, not a string to coerce.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from llmctl.domain import SEED_MAX, SEED_MIN, TOKENS_MAX
from llmctl.errors import ConfigError
from llmctl.files import exclusive_lock, write_atomically
from llmctl.paths import example_config_path
from llmctl.provider_specs import (
    BUILTIN_PROVIDERS,
    SPECS,
    AnyProviderSettings,
    DType,
    OpenAIProviderSettings,
    ProviderSettings,
    Quantization,
    StrictModel,
    builtin_settings,
    canonical_kind,
    looks_like_env_var_name,
)

DEMO_MODEL_ALIAS = "demo"


Seed = Annotated[int, Field(ge=SEED_MIN, le=SEED_MAX)]


class Defaults(StrictModel):
    """Generation defaults; command-line flags override them."""

    temperature: float | None = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float | None = Field(default=0.9, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=512, ge=1, le=TOKENS_MAX)
    seed: Seed | None = None


class ModelSettings(StrictModel):
    """An alias: a short name for a model on a provider, with per-model options."""

    provider: str
    id: str | None = None  # a Hub repo id or an API's model name (never looked up as a folder)
    path: str | None = None  # a local model folder
    description: str | None = None
    context_window: int | None = Field(default=None, ge=1, le=TOKENS_MAX)
    quantization: Quantization | None = None
    dtype: DType | None = None
    device_map: str | None = None
    trust_remote_code: bool | None = None
    allow_pickle_weights: bool | None = None
    compile: bool | None = None
    input_price_per_mtok: float | None = Field(default=None, ge=0)
    output_price_per_mtok: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _id_or_path(self) -> ModelSettings:
        if (self.id is None) == (self.path is None):
            raise ValueError("set exactly one of id (a Hub repo id or API model name) and path (a local folder)")
        return self

    @property
    def reference(self) -> str:
        """The id, or the folder as written."""
        return self.id if self.id is not None else str(self.path)


class UsageSettings(StrictModel):
    """The usage ledger."""

    store_text: bool = True  # keep prompt and answer text in the ledger (`llmctl logs`); `llmctl logs off`


class ProviderBudget(StrictModel):
    """Spending limits for one provider, in USD."""

    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)


class BudgetSettings(StrictModel):
    """Spending limits in USD; a call is refused once one is spent (``--ignore-budget`` overrides)."""

    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)
    providers: dict[str, ProviderBudget] = Field(default_factory=dict)


# keep_alive as Ollama writes it: "5m", "30s", "1h", "1h30m", a number of seconds; 0 unloads at once, negative never.
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|h|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
KEEP_ALIVE_MAX_S = 365 * 86_400.0


def parse_keep_alive(value: str | int | float) -> float | None:
    """Seconds a model stays loaded after its last request; ``None`` forever (a negative value).

    Raises ValueError with the forms that are accepted.
    """
    if isinstance(value, bool):
        raise ValueError('must be a duration such as "5m", "30s", "1h", or seconds (0: unload at once)')
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        negative = text.startswith("-")
        body = text[1:] if negative else text
        if _DURATION.fullmatch(body):
            seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(body))
        else:
            try:
                seconds = float(body)
            except ValueError:
                raise ValueError(
                    'must be a duration such as "5m", "30s", "1h", or seconds (0: unload at once, '
                    "negative: keep loaded)"
                ) from None
        seconds = -seconds if negative else seconds
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError("must be a finite duration (a negative one keeps the model loaded)")
    if seconds < 0:
        return None
    if seconds > KEEP_ALIVE_MAX_S:
        raise ValueError("must be at most a year (a negative value keeps the model loaded for good)")
    return seconds


class ServerSettings(StrictModel):
    """``llmctl serve``: where it listens, how long models stay warm, who may call it."""

    host: str = "127.0.0.1"
    port: int = Field(default=8484, ge=0, le=65535)  # 0: any free port (the chosen one is in server.json)
    keep_alive: str | int | float = "5m"
    # label -> NAME of the environment variable holding that client's key (never the key itself);
    # required to listen on anything but loopback. The label is recorded as the call's client.
    api_keys: dict[str, str] = Field(default_factory=dict)
    url: str | None = None  # a running server to attach generate/chat to (default: the one in $LLMCTL_HOME)

    @field_validator("keep_alive", mode="plain")  # one message for any wrong value, not one per union member
    @classmethod
    def _is_duration(cls, value: object) -> str | int | float:
        if not isinstance(value, str | int | float):
            raise ValueError('must be a duration such as "5m", "30s", "1h", or seconds (0: unload at once)')
        parse_keep_alive(value)
        return value

    @field_validator("api_keys")
    @classmethod
    def _names_variables(cls, value: dict[str, str]) -> dict[str, str]:
        for label, variable in value.items():
            if not looks_like_env_var_name(variable):
                raise ValueError(
                    f"{label}: must be the NAME of an environment variable holding the key, not the key itself; "
                    "export it (export MY_CLIENT_KEY=...) and put that variable's name here"
                )
        return value

    @field_validator("url")
    @classmethod
    def _is_url(cls, value: str | None) -> str | None:
        return None if value is None else OpenAIProviderSettings._is_http_url(value)  # the providers' own URL rule

    @property
    def keep_alive_s(self) -> float | None:
        return parse_keep_alive(self.keep_alive)


class Settings(StrictModel):
    """The whole config file."""

    default_model: str = DEMO_MODEL_ALIAS
    defaults: Defaults = Field(default_factory=Defaults)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    usage: UsageSettings = Field(default_factory=UsageSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

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
                    table["kind"] = canonical_kind(kind)
            providers[name] = table
        return {**data, "providers": providers}

    @model_validator(mode="after")
    def _aliases_name_known_providers(self) -> Settings:
        for alias, model in self.models.items():
            if model.provider not in self.providers and model.provider not in BUILTIN_PROVIDERS:
                raise _UnknownProvider(alias, model.provider)
        return self

    def provider(self, name: str) -> AnyProviderSettings:
        """The settings of a configured provider, or the defaults of a built-in one."""
        if name in self.providers:
            return self.providers[name]
        settings = builtin_settings(name)
        if settings is None:
            raise KeyError(name)
        return settings

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
    if len(parts) > 2 and parts[0] == "providers" and parts[2] in SPECS:
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


_KINDS_HOSTED_FIRST = sorted(SPECS, key=lambda kind: SPECS[kind].local)  # the likely one first
_TAG_NAMES = f'"{_KINDS_HOSTED_FIRST[0]}" (or ' + ", ".join(f'"{k}"' for k in _KINDS_HOSTED_FIRST[1:]) + ")"


def _problem(error: Any, typed_keys: frozenset[tuple[str, ...]] = frozenset()) -> tuple[tuple[str, ...], str]:
    """One pydantic error as (TOML key path, message that says how to fix it)."""
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _UnknownProvider):
        return ("models", ctx_error.alias, "provider"), (
            f"unknown provider {ctx_error.provider!r}; define [providers.{ctx_error.provider}] "
            f"or use one of: {', '.join(BUILTIN_PROVIDERS)}"
        )
    key_path = _format_loc(error["loc"])
    kind = error["type"]
    if kind == "union_tag_not_found":
        return (*key_path, "kind"), f"no kind: add kind = {_TAG_NAMES}"
    if kind == "union_tag_invalid":
        tag = (error.get("ctx") or {}).get("tag")
        return (*key_path, "kind"), f"unknown kind {tag!r}: use kind = {_TAG_NAMES}"
    if kind == "extra_forbidden":
        return key_path, f"unknown key (every key there is: {example_config_path()})"
    message = str(ctx_error) if kind == "value_error" and ctx_error is not None else str(error["msg"])
    if kind in ("int_type", "float_type", "bool_type") and isinstance(error.get("input"), str):
        # Not echoed: a pasted secret could be the value. Only its kind is named.
        if key_path in typed_keys:
            message += " (the value given is text, not a number or true/false)"
        else:
            message += " (got a quoted string: write numbers and true/false without quotes)"
    return key_path, message


def validate_settings(
    data: dict[str, Any], path: Path, text: str = "", *, typed_keys: set[tuple[str, ...]] | None = None
) -> Settings:
    """Settings from ``data``; ``text`` is the file as on disk (for line numbers), ``typed_keys`` the
    keys given on the command line (``config set``)."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key_path, message = _problem(error, frozenset(typed_keys or ()))
            problems.append(f"{_location(path, text, key_path)}: {'.'.join(key_path) or '(top level)'}: {message}")
        raise ConfigError("Invalid config:\n  " + "\n  ".join(problems)) from exc


def read_config_text(path: Path, *, must_exist: bool = False) -> str | None:
    """The config file's text; ``None`` when it does not exist and ``must_exist`` is false.

    ``must_exist`` is for a path the user named (``--config``): a typo there must not
    silently mean "use the defaults". A symbolic link to nowhere is an error either way.
    """
    try:
        if path.is_symlink() and not path.exists():
            raise ConfigError(
                f"Config file {path} is a symbolic link to {os.readlink(path)}, which does not exist.",
                hint="Point the link at an existing file, or remove it to use the defaults.",
            )
        if not path.exists():
            if must_exist:
                raise ConfigError(
                    f"Config file {path} does not exist.",
                    hint=f"Check the --config path, or create the file: llmctl --config {path} config init",
                )
            return None
        # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the TOML.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Config file {path} is not UTF-8 text (byte {exc.start}).", hint="Save it as UTF-8."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"Cannot read config file {path}: {exc.strerror or type(exc).__name__}.",
            hint="Check its permissions, or pass another file with --config.",
        ) from None


def load_settings(path: Path, *, must_exist: bool = False) -> Settings:
    """The settings from ``path``; built-in defaults when it does not exist (unless ``must_exist``)."""
    text = read_config_text(path, must_exist=must_exist)
    return Settings() if text is None else parse_settings(text, path)


def read_raw(path: Path, *, must_exist: bool = False) -> dict[str, Any]:
    """The file's TOML as a plain dict (empty when it does not exist, unless ``must_exist``)."""
    text = read_config_text(path, must_exist=must_exist)
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def write_private(path: Path, text: str) -> None:
    """Write a config file readable by its owner only (it may name secrets' sources).

    Atomic and through symlinks (see ``llmctl.files``); callers that read, change and write
    hold ``config_edit_lock(path)`` around all three so parallel edits are not lost.
    """
    write_atomically(path, text, mode=0o600)


def config_edit_lock(path: Path) -> contextlib.AbstractContextManager[None]:
    """Serialize read-modify-write edits of the config file at ``path`` across processes."""
    return exclusive_lock(path)
