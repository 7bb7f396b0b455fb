"""Resolve what a user typed (-m MODEL) to a provider, importing its adapter only then.

Resolution order for a reference:
1. nothing given: the config's ``default_model`` (``demo`` out of the box);
2. an alias from ``[models.NAME]``;
3. ``demo``: the tiny model shipped inside the package;
4. a path to a local Hugging Face model folder;
5. ``provider/model-id``, split at the first ``/`` (so ``hf/org/repo`` works).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path

from llmctl.config import DEMO_MODEL_ALIAS, KIND_ALIASES, ModelSettings, Settings
from llmctl.errors import MissingDependencyError, ModelNotFoundError
from llmctl.paths import demo_model_dir
from llmctl.providers.base import Provider, ResolvedModel

ProviderFactory = Callable[[ResolvedModel], Provider]

# kind -> "module:Class"; the module is imported on first use only, so commands
# that never generate never pay for torch or a vendor SDK.
ADAPTERS: dict[str, str] = {
    "huggingface": "llmctl.providers.hf_provider:HuggingFaceProvider",
    "openai": "llmctl.providers.openai_provider:OpenAIProvider",
    "anthropic": "llmctl.providers.anthropic_provider:AnthropicProvider",
}

EXTRA_FOR_KIND = {"huggingface": "local", "openai": "openai", "anthropic": "anthropic"}


def _looks_like_path(reference: str) -> bool:
    return reference.startswith((".", "/", "~")) or Path(reference).expanduser().is_dir()


def resolve(reference: str | None, settings: Settings) -> ResolvedModel:
    """Turn a model reference into a ResolvedModel, or explain why it cannot be."""
    reference = (reference or settings.default_model).strip()
    if not reference:
        raise ModelNotFoundError("Empty model name.", hint="Pass -m MODEL or set default_model in the config.")

    if reference in settings.models:
        model = settings.models[reference]
        return _resolved(settings, model.provider, model.id, model, alias=reference)

    if reference == DEMO_MODEL_ALIAS:
        return _resolved(settings, "hf", str(demo_model_dir()), None, alias=DEMO_MODEL_ALIAS)

    if _looks_like_path(reference):
        folder = Path(reference).expanduser()
        if not folder.is_dir():
            raise ModelNotFoundError(f"No model folder at {folder}.")
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"{folder} is not a Hugging Face model folder (it has no config.json).")
        return _resolved(settings, "hf", str(folder.resolve()), None, alias=None)

    provider_name, sep, model_id = reference.partition("/")
    if sep and model_id:
        try:
            settings.provider(provider_name)
        except KeyError:
            raise ModelNotFoundError(
                f"Unknown provider {provider_name!r} in {reference!r}.",
                hint=f"Providers: {', '.join(settings.provider_names())}. "
                f"Add [providers.{provider_name}] to the config to define it.",
            ) from None
        return _resolved(settings, provider_name, model_id, None, alias=None)

    aliases = ", ".join(sorted([DEMO_MODEL_ALIAS, *settings.models]))
    raise ModelNotFoundError(
        f"Unknown model {reference!r}.",
        hint=f"Use an alias ({aliases}), PROVIDER/MODEL-ID (e.g. hf/org/repo, openai/gpt-4o-mini), "
        "or a path to a local model folder. `llmctl models list` shows what there is.",
    )


def _resolved(
    settings: Settings,
    provider_name: str,
    model_id: str,
    model: ModelSettings | None,
    *,
    alias: str | None,
) -> ResolvedModel:
    provider_settings = settings.provider(provider_name)
    kind = KIND_ALIASES.get(provider_settings.kind, provider_settings.kind)
    return ResolvedModel(provider_name, kind, model_id, provider_settings, model, alias)


def load_factory(kind: str, adapters: Mapping[str, str] = ADAPTERS) -> ProviderFactory:
    """Import the adapter for ``kind`` (the only place heavy libraries get pulled in)."""
    target = adapters.get(kind)
    if target is None:
        raise ModelNotFoundError(f"No adapter for provider kind {kind!r}.")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = EXTRA_FOR_KIND.get(kind, kind)
        raise MissingDependencyError(
            f"The {kind} provider needs packages that are not installed ({exc.name or exc}).",
            hint=f"Install them with: pip install 'llmctl[{extra}]'",
        ) from exc
    factory: ProviderFactory = getattr(module, class_name)
    return factory


def open_provider(resolved: ResolvedModel, adapters: Mapping[str, str] = ADAPTERS) -> Provider:
    """A ready provider for the resolved model."""
    return load_factory(resolved.kind, adapters)(resolved)
