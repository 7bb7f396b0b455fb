"""Every model a user can name, without loading any of them (no torch, no network)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.config import DEMO_MODEL_ALIAS, ModelSettings, Settings
from llmctl.errors import ModelNotFoundError, UsageError
from llmctl.hub.cache import Removal, cached_models, find_cached, hub_cache_dir, plan_removal, remove
from llmctl.hub.weights import tensor_stats
from llmctl.paths import demo_model_dir
from llmctl.provider_specs import SPECS, cache_dir_of, quantization_of, spec_for
from llmctl.providers.hf.model_config import (
    architecture_from_config,
    context_window_from_config,
    quantization_method,
    read_model_config,
)
from llmctl.providers.hosted.base import RemoteModel
from llmctl.providers.registry import folder_path, is_repo_id, load_factory, resolve, written_as_path
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


def _local_details(folder: Path) -> dict[str, Any]:
    config = read_model_config(folder)
    stats = tensor_stats(folder)
    return {
        "location": str(folder),
        "architecture": architecture_from_config(config),
        "context_window": context_window_from_config(config),
        "size_bytes": folder_size(folder),
        "parameters": stats.parameters if stats else None,
        "quantization": quantization_method(config),
    }


def _alias_details(settings: Settings, alias: str, model: ModelSettings, kind: str) -> dict[str, Any]:
    """Folder or HF-cache details of a local alias; the price of a hosted one."""
    provider = settings.provider(model.provider)
    if not spec_for(kind).local:
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
        repo = find_cached(hub_cache_dir(cache_dir_of(provider)), model.reference)
        snapshot = repo.snapshot() if repo else None
        if repo is not None and snapshot is not None:
            details = {**_local_details(snapshot), "size_bytes": repo.size_on_disk}
    configured = model.quantization or quantization_of(provider)
    if configured:
        details["quantization"] = configured
    return details


def cached_entries(settings: Settings) -> list[ModelEntry]:
    """Models downloaded into the Hugging Face cache, named ``hf/ORG/NAME``."""
    provider = settings.provider("hf")
    cache_dir = cache_dir_of(provider)
    configured = quantization_of(provider)
    aliases: dict[str, list[str]] = {}
    for alias, model in settings.models.items():
        aliases.setdefault(model.reference, []).append(alias)
    entries = []
    for repo in cached_models(hub_cache_dir(cache_dir)):
        snapshot = repo.snapshot()
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
        kind = settings.provider(model.provider).kind
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
    return entries + cached_entries(settings) + hosted_provider_entries(settings)


HOSTED_HINT = (
    "A hosted provider takes any model it serves as NAME/MODEL; `llmctl models list --remote NAME` lists them."
)


def hosted_provider_entries(settings: Settings, environ: Mapping[str, str] | None = None) -> list[ModelEntry]:
    """One row per hosted provider: any model it serves is ``NAME/MODEL``.

    The config's hosted providers, plus the built-in ``openai`` and ``anthropic`` when their
    usual key variable is set (they then work with no config at all).
    """
    environ = os.environ if environ is None else environ
    rows: list[tuple[str, str, str]] = []  # (name, kind, where)
    for name, provider in sorted(settings.providers.items()):
        spec = spec_for(provider)
        if not spec.local:
            base_url = getattr(provider, "base_url", None)
            rows.append((name, spec.kind, redact(base_url) if base_url else str(spec.official_api)))
    for spec in SPECS.values():
        variable = spec.key_env_var
        if variable and spec.kind not in settings.providers and environ.get(variable, "").strip():
            rows.append((spec.kind, spec.kind, f"{spec.official_api} (key from ${variable})"))
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


# `models list --remote PROVIDER`: ask a hosted provider which models it serves.


def list_remote(settings: Settings, provider_name: str) -> list[RemoteModel]:
    """The provider's models, from its model-listing endpoint (a network call)."""
    try:
        provider = settings.provider(provider_name)
    except KeyError:
        raise UsageError(
            f"Unknown provider {provider_name!r}.",
            hint=f"Providers: {', '.join(settings.provider_names())}. "
            f"Add [providers.{provider_name}] to the config to define one.",
        ) from None
    spec = spec_for(provider)
    lister = None if spec.local else getattr(load_factory(spec.kind), "list_models", None)
    if lister is None:
        raise UsageError(
            f"{provider_name!r} is a {'local ' if spec.local else ''}{spec.label} provider; "
            "it has no remote model list.",
            hint="`llmctl models list` (without --remote) shows the local models.",
        )
    models: list[RemoteModel] = lister(provider_name, provider)
    return models


# `models rm`: which downloaded repository an argument means, and removing it.


@dataclass(frozen=True)
class ModelRemoval(Removal):
    cache_dir: Path = Path()


def _repo_and_cache(reference: str, settings: Settings) -> tuple[str, str | None]:
    """(repo id, the cache_dir setting of its provider) for a reference to a downloaded model."""
    reference = reference.strip()
    if reference == DEMO_MODEL_ALIAS and reference not in settings.models:
        raise UsageError("The demo model ships inside llmctl; there is nothing to remove.")
    if reference in settings.models:
        model = settings.models[reference]
        provider = settings.provider(model.provider)
        if not spec_for(provider).local:
            raise UsageError(f"{reference} is a hosted model ({model.provider}); nothing is downloaded for it.")
        if model.path is not None or written_as_path(model.reference):
            raise UsageError(
                f"{reference} is the local folder {model.reference}; llmctl removes only models in the Hugging Face "
                "cache.",
                hint="Delete the folder yourself if you no longer need it.",
            )
        return model.reference, cache_dir_of(provider)
    if written_as_path(reference):
        raise UsageError(
            f"{reference} is a folder; llmctl removes only models in the Hugging Face cache.",
            hint="Delete the folder yourself if you no longer need it.",
        )
    prefix, sep, rest = reference.partition("/")
    if sep and rest:
        try:
            provider_settings = settings.provider(prefix)
        except KeyError:
            return reference, _hf_cache_setting(settings)  # ORG/NAME
        if spec_for(provider_settings).local:
            return rest, cache_dir_of(provider_settings)
        raise UsageError(f"{reference} is a hosted model ({prefix}); nothing is downloaded for it.")
    raise ModelNotFoundError(
        f"{reference!r} does not name a downloaded model.",
        hint="Use hf/ORG/NAME as shown by `llmctl models list`.",
    )


def _hf_cache_setting(settings: Settings) -> str | None:
    return cache_dir_of(settings.provider("hf"))


def plan_model_removal(reference: str, settings: Settings, *, revision: str | None = None) -> ModelRemoval:
    repo_id, cache_setting = _repo_and_cache(reference, settings)
    if not is_repo_id(repo_id):  # it names the folder that gets deleted
        raise ModelNotFoundError(f"{repo_id!r} is not a Hub repository id.", hint="Use hf/ORG/NAME.")
    cache = hub_cache_dir(cache_setting)
    removal = plan_removal(cache, repo_id, revision)
    return ModelRemoval(**removal.__dict__, cache_dir=cache)


def execute_removal(removal: ModelRemoval) -> int:
    """Delete it; the bytes freed."""
    return remove(removal.cache_dir, removal)
