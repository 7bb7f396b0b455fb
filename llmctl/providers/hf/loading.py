"""Load a Hugging Face model and tokenizer the way a user's config asks for.

One code path for every local model: the shipped demo model, a folder on disk,
and a repo already in the standard Hugging Face cache. Safe by default: no
remote code, safetensors only, no network (``llmctl models download`` fetches).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.config import ModelSettings
from llmctl.domain import CountSource, Message
from llmctl.errors import MissingDependencyError, ModelNotFoundError, ProviderError
from llmctl.provider_specs import DType, HuggingFaceProviderSettings, Quantization
from llmctl.providers.base import PromptTokens, ResolvedModel
from llmctl.providers.hf.folder import check_weights, load_failure, tokenizer_error, weights_error
from llmctl.providers.hf.model_config import context_window_from_config
from llmctl.providers.registry import is_repo_id


@dataclass(frozen=True)
class LoadOptions:
    """The effective loading options: model alias settings over provider settings."""

    dtype: DType = "auto"
    device_map: str = "auto"
    quantization: Quantization | None = None
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False
    cache_dir: str | None = None
    context_window: int | None = None
    compile: bool = False  # static KV cache + torch.compile for decoding (providers/hf/compiled.py)

    @classmethod
    def for_model(cls, resolved: ResolvedModel) -> LoadOptions:
        provider = resolved.provider_settings
        if not isinstance(provider, HuggingFaceProviderSettings):
            raise TypeError("LoadOptions are for Hugging Face providers")
        model = resolved.model_settings or ModelSettings(provider=resolved.provider_name, id=resolved.model_id)
        return cls(
            dtype=model.dtype or provider.dtype,
            device_map=model.device_map or provider.device_map,
            quantization=model.quantization or provider.quantization,
            trust_remote_code=_first_set(model.trust_remote_code, provider.trust_remote_code),
            allow_pickle_weights=_first_set(model.allow_pickle_weights, provider.allow_pickle_weights),
            cache_dir=provider.cache_dir,
            context_window=model.context_window,
            compile=_first_set(model.compile, provider.compile),
        )


def _first_set(value: bool | None, fallback: bool) -> bool:
    return fallback if value is None else value


@dataclass
class LoadedModel:
    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    source: str  # the folder or repo id it came from
    context_window: int | None


def _quiet_libraries() -> None:
    # bitsandbytes logs on every 8-bit matmul; transformers warns about
    # generation flags we set on purpose.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def quantization_config(quantization: Quantization | None, compute_dtype: Any) -> Any:
    """A BitsAndBytesConfig for ``8bit``/``4bit`` (transformers 5 has no ``load_in_8bit=``)."""
    if quantization is None:
        return None
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"{quantization} quantization needs bitsandbytes.",
            hint="Install it with: pip install 'llmctl[local]'",
        ) from exc
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype)


def _torch_dtype(dtype: DType) -> Any:
    if dtype == "auto":
        return "auto"
    import torch

    return getattr(torch, dtype)


def default_hub_cache() -> Path:
    """The standard Hugging Face cache, from the environment as it is now.

    huggingface_hub reads these variables once, at import; reading them per call keeps
    ``llmctl models download`` (which writes here) and loading (which reads here) agreeing.
    """
    hub_cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if hub_cache:
        return Path(os.path.expandvars(hub_cache)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def _locate(resolved: ResolvedModel, options: LoadOptions, *, need_weights: bool) -> str:
    """A local folder named by a path, or the snapshot of a repo in the HF cache; never the network.

    A repo id is never tried as a folder in the current directory (see ``registry``). With
    ``need_weights`` a folder or snapshot without its weights is refused, naming what is missing.
    """
    folder = resolved.local_folder
    if folder is not None:
        if not folder.is_dir():
            raise ModelNotFoundError(f"No model folder at {folder}.")
        if need_weights:
            check_weights(folder, name=resolved.display_name, repo_id=None)
        return str(folder)
    model_id = resolved.model_id
    if not is_repo_id(model_id):
        raise ModelNotFoundError(f"{model_id!r} is not a Hugging Face repo id (ORG/NAME) or an absolute folder path.")
    snapshot = _cached_snapshot(model_id, options.cache_dir or str(default_hub_cache()))
    if need_weights:
        check_weights(Path(snapshot), name=resolved.display_name, repo_id=model_id)
    return snapshot


def _cached_snapshot(model_id: str, cache_dir: str) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(model_id, local_files_only=True, cache_dir=cache_dir)
    except LocalEntryNotFoundError as exc:
        # huggingface_hub >= 1.x calls a snapshot holding only some of the repo's files incomplete
        # (IncompleteSnapshotError); `llmctl models download` and `hf download --include` make such
        # snapshots on purpose, and one is usable when it has what transformers loads.
        snapshot = getattr(exc, "snapshot_path", None)
        if snapshot and (Path(snapshot) / "config.json").is_file():
            return str(snapshot)
        if snapshot or _has_snapshots(Path(cache_dir), model_id):
            # A download that stopped early: files were written, but not all, and no ref points at them yet.
            raise ModelNotFoundError(
                f"{model_id}: incomplete download (the Hugging Face cache has only part of it).",
                hint=f"Run `llmctl models download {model_id}` again.",
            ) from None
        raise _not_in_cache(model_id) from None
    except (FileNotFoundError, OSError, ValueError):
        raise _not_in_cache(model_id) from None


def _has_snapshots(cache_dir: Path, model_id: str) -> bool:
    snapshots = cache_dir / ("models--" + model_id.replace("/", "--")) / "snapshots"
    try:
        return any(p.is_dir() for p in snapshots.iterdir())
    except OSError:
        return False


def _not_in_cache(model_id: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Model {model_id!r} is not in the local Hugging Face cache.",
        hint=f"Download it first: llmctl models download {model_id}",
    )


def load_model(resolved: ResolvedModel) -> LoadedModel:
    """Load tokenizer and weights for ``resolved`` with its effective options."""
    _quiet_libraries()
    options = LoadOptions.for_model(resolved)
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        raise MissingDependencyError(
            "Local models need torch and transformers.",
            hint="Install them with: pip install torch 'llmctl[local]'",
        ) from exc

    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    source = _locate(resolved, options, need_weights=True)
    dtype = _torch_dtype(options.dtype)
    compute_dtype = torch.float32 if dtype == "auto" else dtype
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "trust_remote_code": options.trust_remote_code,
        "use_safetensors": None if options.allow_pickle_weights else True,
        "local_files_only": True,
    }
    quant = quantization_config(options.quantization, compute_dtype)
    if quant is not None:
        kwargs["quantization_config"] = quant
    if _accelerate_available():
        kwargs["device_map"] = options.device_map
    tokenizer = _load_tokenizer(resolved, source, options)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except Exception as exc:  # transformers, safetensors and torch raise many types; each becomes one line
        raise _model_load_error(resolved, source, exc) from exc
    model.eval()
    window = options.context_window or context_window_from_config(model.config)
    return LoadedModel(model=model, tokenizer=tokenizer, source=source, context_window=window)


def _load_tokenizer(resolved: ResolvedModel, source: str, options: LoadOptions) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=options.trust_remote_code, local_files_only=True)
    except Exception as exc:  # "You need to have sentencepiece or tiktoken installed" for a folder without one
        if "trust_remote_code" in str(exc):
            raise _needs_remote_code(resolved) from exc
        raise tokenizer_error(Path(source), resolved.display_name, exc) from exc


def _needs_remote_code(resolved: ResolvedModel) -> ProviderError:
    return ProviderError(
        f"{resolved.display_name} needs custom code from its repository to load.",
        hint="Review that code, then set trust_remote_code = true for this model in the config.",
    )


def _model_load_error(resolved: ResolvedModel, source: str, exc: Exception) -> ProviderError:
    name = resolved.display_name
    repo_id = None if resolved.local_folder is not None else resolved.model_id
    damaged = weights_error(Path(source), name, repo_id, exc)
    if damaged is not None:
        return damaged
    message = str(exc)
    if isinstance(exc, ValueError) and "trust_remote_code" in message:
        return _needs_remote_code(resolved)
    if isinstance(exc, OSError) and "safetensors" in message:
        return ProviderError(
            f"{name} has no safetensors weights; llmctl loads only safetensors by default.",
            hint="If you trust the files, set allow_pickle_weights = true for this model in the config.",
        )
    return load_failure(name, exc)


def _accelerate_available() -> bool:
    try:
        import accelerate  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class LoadedTokenizer:
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    source: str
    context_window: int | None


def load_tokenizer(resolved: ResolvedModel) -> LoadedTokenizer:
    """Only the tokenizer and config of ``resolved`` (no weights): for counting tokens."""
    _quiet_libraries()
    options = LoadOptions.for_model(resolved)
    try:
        from transformers import AutoConfig
    except ImportError as exc:
        raise MissingDependencyError(
            "Counting tokens for local models needs transformers.",
            hint="Install it with: pip install torch 'llmctl[local]'",
        ) from exc
    source = _locate(resolved, options, need_weights=False)
    remote = options.trust_remote_code
    tokenizer = _load_tokenizer(resolved, source, options)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=remote, local_files_only=True)
    except Exception as exc:  # a config.json that does not parse, or names an unknown architecture
        raise load_failure(resolved.display_name, exc) from exc
    return LoadedTokenizer(tokenizer, source, options.context_window or context_window_from_config(config))


def count_prompt_tokens(resolved: ResolvedModel, messages: Sequence[Message]) -> PromptTokens:
    """Exact: the model's own tokenizer and chat template, the prompt generation would send (no weights loaded)."""
    from llmctl.providers.hf.prompt import prompt_token_ids

    loaded = load_tokenizer(resolved)
    template = "chat template" if getattr(loaded.tokenizer, "chat_template", None) else "plain transcript"
    tokens = len(prompt_token_ids(loaded.tokenizer, messages))
    method = f"the model's tokenizer and {template}"
    return PromptTokens(tokens, CountSource.EXACT, method, loaded.context_window)
