"""Which downloaded repository a ``models rm`` argument means, and removing it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmctl.config import DEMO_MODEL_ALIAS, HuggingFaceProviderSettings, Settings
from llmctl.errors import ModelNotFoundError, UsageError
from llmctl.hub.cache import Removal, hub_cache_dir, plan_removal, remove
from llmctl.providers.registry import is_repo_id, written_as_path


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
        if not isinstance(provider, HuggingFaceProviderSettings):
            raise UsageError(f"{reference} is a hosted model ({model.provider}); nothing is downloaded for it.")
        if model.path is not None or written_as_path(model.reference):
            raise UsageError(
                f"{reference} is the local folder {model.reference}; llmctl removes only models in the Hugging Face "
                "cache.",
                hint="Delete the folder yourself if you no longer need it.",
            )
        return model.reference, provider.cache_dir
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
        if isinstance(provider_settings, HuggingFaceProviderSettings):
            return rest, provider_settings.cache_dir
        raise UsageError(f"{reference} is a hosted model ({prefix}); nothing is downloaded for it.")
    raise ModelNotFoundError(
        f"{reference!r} does not name a downloaded model.",
        hint="Use hf/ORG/NAME as shown by `llmctl models list`.",
    )


def _hf_cache_setting(settings: Settings) -> str | None:
    provider = settings.provider("hf")
    return provider.cache_dir if isinstance(provider, HuggingFaceProviderSettings) else None


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
