"""Every model a user can name, without loading any of them (no torch, no network)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.config import DEMO_MODEL_ALIAS, KIND_ALIASES, HuggingFaceProviderSettings, ModelSettings, Settings
from llmctl.hub.cache import cached_models, find_cached, hub_cache_dir
from llmctl.hub.weights import tensor_stats
from llmctl.paths import demo_model_dir
from llmctl.providers.llamacpp.files import is_gguf_snapshot
from llmctl.providers.registry import folder_path, is_repo_id, resolve, written_as_path
from llmctl.redaction import redact

DEMO_DESCRIPTION = "tiny offline demo model (a toy)"
DEMO_SWITCH_HINT = (
    "The demo model is a toy that knows capitals, small arithmetic and llmctl itself. For real answers "
    "use -m PROVIDER/MODEL (e.g. hf/ORG/REPO, openai/gpt-4o-mini) or set default_model in the config "
    "(llmctl config set default_model ALIAS)."
)


@dataclass(frozen=True)
class ModelEntry:
    name: str  # what to pass to -m
    provider: str
    kind: str
    model_id: str
    source: str  # "built-in" | "alias" | "hf-cache" | "provider" (a hosted provider: NAME/MODEL)
    description: str | None = None
    location: str | None = None  # a local folder, when there is one
    architecture: str | None = None
    context_window: int | None = None
    size_bytes: int | None = None
    is_default: bool = False
    parameters: int | None = None  # from the safetensors headers
    quantization: str | None = None  # configured (8bit/4bit) or of a pre-quantized checkpoint
    input_price_per_mtok: float | None = None  # USD, hosted models, when known
    output_price_per_mtok: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def read_model_config(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _local_details(folder: Path) -> dict[str, Any]:
    config = read_model_config(folder)
    architectures = config.get("architectures") or []
    window = next(
        (
            config[k]
            for k in ("max_position_embeddings", "n_positions", "max_sequence_length")
            if isinstance(config.get(k), int)
        ),
        None,
    )
    stats = tensor_stats(folder)
    return {
        "location": str(folder),
        "architecture": architectures[0] if architectures else config.get("model_type"),
        "context_window": window,
        "size_bytes": folder_size(folder),
        "parameters": stats.parameters if stats else None,
        "quantization": _checkpoint_quantization(config),
    }


def _checkpoint_quantization(config: dict[str, Any]) -> str | None:
    quant = config.get("quantization_config")
    return str(quant.get("quant_method") or "quantized") if isinstance(quant, dict) else None


def _alias_details(settings: Settings, alias: str, model: ModelSettings, kind: str) -> dict[str, Any]:
    """Folder or HF-cache details of a local alias; the price of a hosted one."""
    provider = settings.provider(model.provider)
    if kind != "huggingface":
        from llmctl.services.token_counting import context_window
        from llmctl.services.usage.pricing import price_for

        resolved = resolve(alias, settings)
        price = price_for(resolved)
        hosted: dict[str, Any] = {"context_window": context_window(resolved)}
        if price is not None:
            hosted |= {"input_price_per_mtok": price.input_per_mtok, "output_price_per_mtok": price.output_per_mtok}
        return hosted
    details: dict[str, Any] = {}
    if model.path is not None or written_as_path(model.reference):
        local = folder_path(model.reference)
        if local.is_dir():
            details = _local_details(local)
    elif is_repo_id(model.reference):  # a repo id comes from the cache only, never from a folder here
        cache_dir = provider.cache_dir if isinstance(provider, HuggingFaceProviderSettings) else None
        repo = find_cached(hub_cache_dir(cache_dir), model.reference)
        snapshot = repo.snapshot() if repo else None
        if repo is not None and snapshot is not None:
            details = {**_local_details(snapshot), "size_bytes": repo.size_on_disk}
    configured = model.quantization or (
        provider.quantization if isinstance(provider, HuggingFaceProviderSettings) else None
    )
    if configured:
        details["quantization"] = configured
    return details


def cached_entries(settings: Settings) -> list[ModelEntry]:
    """Models downloaded into the Hugging Face cache, named ``hf/ORG/NAME``."""
    provider = settings.provider("hf")
    cache_dir = provider.cache_dir if isinstance(provider, HuggingFaceProviderSettings) else None
    configured = provider.quantization if isinstance(provider, HuggingFaceProviderSettings) else None
    aliases: dict[str, list[str]] = {}
    for alias, model in settings.models.items():
        aliases.setdefault(model.reference, []).append(alias)
    entries = []
    for repo in cached_models(hub_cache_dir(cache_dir)):
        snapshot = repo.snapshot()
        if snapshot is not None and is_gguf_snapshot(snapshot):
            continue  # listed as llamacpp/ORG/REPO:QUANT
        details: dict[str, Any] = _local_details(snapshot) if snapshot is not None else {}
        details["size_bytes"] = repo.size_on_disk
        if configured:
            details["quantization"] = configured
        notes = []
        if not repo.is_complete:
            notes.append(f"incomplete download (resume: llmctl models download {repo.repo_id})")
        if repo.repo_id in aliases:
            notes.append("alias: " + ", ".join(sorted(aliases[repo.repo_id])))
        entries.append(
            ModelEntry(
                name=repo.name,
                provider="hf",
                kind="huggingface",
                model_id=repo.repo_id,
                source="hf-cache",
                description="; ".join(notes) or None,
                is_default=settings.default_model == repo.name,
                **details,
            )
        )
    return entries


def list_models(settings: Settings) -> list[ModelEntry]:
    """The demo model, every configured alias, the downloaded models, then the hosted providers."""
    entries = [
        ModelEntry(
            name=DEMO_MODEL_ALIAS,
            provider="hf",
            kind="huggingface",
            model_id="llmctl/demo",
            source="built-in",
            description=DEMO_DESCRIPTION,
            is_default=settings.default_model == DEMO_MODEL_ALIAS,
            **_local_details(demo_model_dir()),
        )
    ]
    for alias, model in sorted(settings.models.items()):
        kind = KIND_ALIASES.get(settings.provider(model.provider).kind, settings.provider(model.provider).kind)
        details = _alias_details(settings, alias, model, kind)
        if model.context_window:
            details["context_window"] = model.context_window
        entries.append(
            ModelEntry(
                name=alias,
                provider=model.provider,
                kind=kind,
                model_id=model.reference,
                source="alias",
                description=model.description,
                is_default=settings.default_model == alias,
                **details,
            )
        )
    from llmctl.services.models.gguf import cached_gguf_entries

    return entries + cached_entries(settings) + cached_gguf_entries(settings) + hosted_provider_entries(settings)


HOSTED_HINT = (
    "A hosted provider takes any model it serves as NAME/MODEL; `llmctl models list --remote NAME` lists them."
)


_VENDORS = {"openai": "OpenAI", "anthropic": "Anthropic"}


def hosted_provider_entries(settings: Settings, environ: Mapping[str, str] | None = None) -> list[ModelEntry]:
    """One row per hosted provider: any model it serves is ``NAME/MODEL``.

    The config's hosted providers, plus the built-in ``openai`` and ``anthropic`` when their
    usual key variable is set (they then work with no config at all).
    """
    from llmctl.providers.hosted.credentials import DEFAULT_KEY_ENV

    environ = os.environ if environ is None else environ
    rows: list[tuple[str, str, str]] = []  # (name, kind, where)
    for name, provider in sorted(settings.providers.items()):
        if provider.kind in ("openai", "anthropic"):
            vendor = _VENDORS[provider.kind]
            base_url = getattr(provider, "base_url", None)
            rows.append((name, provider.kind, redact(base_url) if base_url else f"the {vendor} API"))
    for kind, variable in DEFAULT_KEY_ENV.items():
        if kind not in settings.providers and environ.get(variable, "").strip():
            rows.append((kind, kind, f"the {_VENDORS[kind]} API (key from ${variable})"))
    return [
        ModelEntry(
            name=f"{name}/MODEL",
            provider=name,
            kind=kind,
            model_id="(any it serves)",
            source="provider",
            description=where,
        )
        for name, kind, where in rows
    ]
