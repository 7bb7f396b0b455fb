"""``models list --remote PROVIDER``: ask a hosted provider which models it serves."""

from __future__ import annotations

import importlib
from typing import Any

from llmctl.config import AnthropicProviderSettings, OpenAIProviderSettings, Settings
from llmctl.errors import MissingDependencyError, UsageError
from llmctl.providers.hosted.base import RemoteModel
from llmctl.providers.registry import ADAPTERS, EXTRA_FOR_KIND


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
    if not isinstance(provider, (OpenAIProviderSettings, AnthropicProviderSettings)):
        raise UsageError(
            f"{provider_name!r} is a local Hugging Face provider; it has no remote model list.",
            hint="`llmctl models list` (without --remote) shows the local models.",
        )
    module = _adapter_module(provider.kind)
    models: list[RemoteModel] = module.list_remote_models(provider_name, provider)
    return models


def _adapter_module(kind: str) -> Any:
    module_name = ADAPTERS[kind].partition(":")[0]
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"The {kind} provider needs packages that are not installed ({exc.name or exc}).",
            hint=f"Install them with: pip install 'llmctl[{EXTRA_FOR_KIND[kind]}]'",
        ) from exc
