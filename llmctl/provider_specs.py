"""What each kind of provider is and needs: its settings table and one spec row.

Adding a backend is a settings class, a member of ``AnyProviderSettings`` and a ``SPECS`` row here,
plus its adapter package under ``llmctl/providers/``. Everything else asks the spec (is it local? which
extra? which key variable? priced by whom?) or the provider object (what it can count, list, take);
nothing outside this module and the adapters compares kind strings or settings classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What a shell accepts after `export`: a pasted key (sk-..., with dashes) is not one.
_ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Keys that would pass as names: vendor prefixes, and long mixed-case or hex runs with no "_" between words.
_KEY_PREFIXES = ("sk_", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "github_pat_", "AIza")
_KEY_LIKE_RUN = re.compile(r"(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{20,}")


def looks_like_env_var_name(value: str) -> bool:
    """True for a plausible variable name; False for what looks like a pasted key."""
    if not _ENV_VAR_NAME.fullmatch(value) or value.startswith(_KEY_PREFIXES):
        return False
    return not any(_KEY_LIKE_RUN.fullmatch(part) for part in value.split("_"))


DType = Literal["auto", "float16", "bfloat16", "float32"]
Quantization = Literal["8bit", "4bit"]

# A request that may wait longer than a day is a typo; and from about 1e12 s (or `inf`) up the
# socket layer raises OverflowError mid-call instead of waiting.
TIMEOUT_MAX_S = 86_400.0


class StrictModel(BaseModel):
    # strict: no "512" -> 512 or "on" -> True coercion; allow_inf_nan: `timeout = inf` is refused.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)


class HuggingFaceProviderSettings(StrictModel):
    """Local models through transformers."""

    kind: Literal["huggingface"] = "huggingface"
    device_map: str = "auto"
    dtype: DType = "auto"
    quantization: Quantization | None = None
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False
    cache_dir: str | None = None
    compile: bool = False  # static KV cache + torch.compile for decoding; the first call compiles


class LlamaCppProviderSettings(StrictModel):
    """GGUF models through llama.cpp (llama-cpp-python, the ``gguf`` extra), in this process."""

    kind: Literal["llamacpp"] = "llamacpp"
    threads: int | None = Field(default=None, ge=1, le=4096)  # unset: this machine's physical cores
    n_ctx: int | None = Field(default=None, ge=16, le=2**31 - 1)  # unset: the model's, at most 4096
    n_gpu_layers: int = Field(default=0, ge=-1, le=100_000)  # layers offloaded to a GPU build; -1: all
    n_batch: int = Field(default=512, ge=1, le=1_048_576)  # prompt tokens per llama_decode call
    cache_dir: str | None = None  # the Hugging Face cache to find ORG/REPO's .gguf files in


class _HostedProviderSettings(StrictModel):
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_cmd: str | None = None
    timeout: float = Field(default=60.0, gt=0, le=TIMEOUT_MAX_S)
    # Seconds a stream may go on without answer text (pings and SSE comments do not count); unset: timeout.
    idle_timeout: float | None = Field(default=None, gt=0, le=TIMEOUT_MAX_S)
    # Seconds for the whole call, retries included; unset: no limit.
    total_timeout: float | None = Field(default=None, gt=0, le=TIMEOUT_MAX_S)
    max_retries: int = Field(default=2, ge=0, le=100)
    input_price_per_mtok: float | None = Field(default=None, ge=0)
    output_price_per_mtok: float | None = Field(default=None, ge=0)

    # Neither message repeats the value: it may be a pasted key, or a URL with a password in it.
    @field_validator("api_key_env")
    @classmethod
    def _names_a_variable(cls, value: str | None) -> str | None:
        if value is not None and not looks_like_env_var_name(value):
            raise ValueError(
                "must be the NAME of an environment variable (letters, digits, _), not the key itself; "
                "export the key in a variable (export MY_KEY=...) and put that variable's name here"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError("must be an http:// or https:// URL (it does not parse as one)") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1")
        return value


class OpenAIProviderSettings(_HostedProviderSettings):
    """OpenAI, or any server that speaks its Chat Completions API (vLLM, Ollama, ...)."""

    kind: Literal["openai"] = "openai"


class AnthropicProviderSettings(_HostedProviderSettings):
    """Anthropic's Messages API."""

    kind: Literal["anthropic"] = "anthropic"


AnyProviderSettings = (
    HuggingFaceProviderSettings | OpenAIProviderSettings | AnthropicProviderSettings | LlamaCppProviderSettings
)
ProviderSettings = Annotated[AnyProviderSettings, Field(discriminator="kind")]
HostedSettings = OpenAIProviderSettings | AnthropicProviderSettings


@dataclass(frozen=True)
class ProviderSpec:
    """One kind of backend, as declared data: what the rest of llmctl may know without importing it."""

    kind: str
    settings: type[AnyProviderSettings]
    adapter: str  # "module:Class", imported on first use only
    extra: str  # pip install 'llmctl[EXTRA]' provides the adapter's libraries
    local: bool  # runs on this machine: free, memory-checked, weights on disk (models list/info/load/rm)
    label: str  # what messages and tables call it
    key_env_var: str | None = None  # the API key's default variable
    pricing_vendor: str | None = None  # genai-prices provider id; None: never priced
    vendor: str | None = None  # who runs the official API ("OpenAI"), for messages
    # The files a local model is (how `models info/list/rm` read it): "hf" is a Hugging Face folder
    # (config.json + safetensors), "gguf" one .gguf file; in the HF cache or anywhere on disk. None for
    # hosted models.
    model_files: Literal["hf", "gguf"] | None = None
    # "module:function(resolved, messages) -> PromptTokens | Uncountable", imported only to count: a
    # count must not need the adapter (or its SDK) when it can be made offline.
    prompt_counter: str | None = None


SPECS: dict[str, ProviderSpec] = {
    spec.kind: spec
    for spec in (
        ProviderSpec(
            kind="huggingface",
            settings=HuggingFaceProviderSettings,
            adapter="llmctl.providers.hf.provider:HuggingFaceProvider",
            extra="local",
            local=True,
            label="Hugging Face",
            model_files="hf",
            prompt_counter="llmctl.providers.hf.loading:count_prompt_tokens",
        ),
        ProviderSpec(
            kind="llamacpp",
            settings=LlamaCppProviderSettings,
            adapter="llmctl.providers.llamacpp.provider:LlamaCppProvider",
            extra="gguf",
            local=True,
            label="llama.cpp (GGUF)",
            model_files="gguf",
            prompt_counter="llmctl.providers.llamacpp.provider:count_prompt_tokens",
        ),
        ProviderSpec(
            kind="openai",
            settings=OpenAIProviderSettings,
            adapter="llmctl.providers.hosted.openai_provider:OpenAIProvider",
            extra="openai",
            local=False,
            label="OpenAI-compatible API",
            key_env_var="OPENAI_API_KEY",
            pricing_vendor="openai",
            vendor="OpenAI",
            prompt_counter="llmctl.providers.hosted.openai_tokens:count_prompt_tokens",
        ),
        ProviderSpec(
            kind="anthropic",
            settings=AnthropicProviderSettings,
            adapter="llmctl.providers.hosted.anthropic_provider:AnthropicProvider",
            extra="anthropic",
            local=False,
            label="Anthropic Messages API",
            key_env_var="ANTHROPIC_API_KEY",
            pricing_vendor="anthropic",
            vendor="Anthropic",
            prompt_counter="llmctl.providers.hosted.anthropic_provider:count_prompt_tokens",
        ),
    )
}
# Other spellings a user may write for a kind (and a built-in provider named by it).
KIND_ALIASES = {"hf": "huggingface"}
# Providers that exist without a [providers.NAME] table: each named after its kind (or alias).
BUILTIN_PROVIDERS = ("hf", *SPECS)


def canonical_kind(kind: str) -> str:
    return KIND_ALIASES.get(kind, kind)


def spec_for(kind_or_settings: str | AnyProviderSettings) -> ProviderSpec:
    """The spec of a kind ("hf" works too) or of a provider's settings."""
    kind = kind_or_settings if isinstance(kind_or_settings, str) else kind_or_settings.kind
    return SPECS[canonical_kind(kind)]


def builtin_settings(name: str) -> AnyProviderSettings | None:
    """The defaults of a built-in provider (named after its kind), or None for any other name."""
    spec = SPECS.get(canonical_kind(name))
    return None if spec is None else spec.settings()


def configured_prices(settings: AnyProviderSettings) -> tuple[float | None, float | None]:
    """(input, output) USD per million tokens set on a provider's table; local engines have none."""
    if isinstance(settings, _HostedProviderSettings):
        return settings.input_price_per_mtok, settings.output_price_per_mtok
    return None, None


# Settings that only some kinds have, read without asking which kind it is.


def cache_dir_of(settings: AnyProviderSettings) -> str | None:
    """The Hugging Face cache folder a local provider reads (None: the default cache)."""
    return getattr(settings, "cache_dir", None)


def quantization_of(settings: AnyProviderSettings) -> Quantization | None:
    """The provider-wide load-time quantization (transformers + bitsandbytes), if it has one."""
    return getattr(settings, "quantization", None)


def dtype_of(settings: AnyProviderSettings) -> DType | None:
    return getattr(settings, "dtype", None)
