"""Resolve what a user typed (-m MODEL) to a provider, importing its adapter only then.

Resolution order for a reference:
1. nothing given: the config's ``default_model`` (``demo`` out of the box);
2. an alias from ``[models.NAME]``;
3. ``demo``: the tiny model shipped inside the package;
4. a path, only when written as one (``./x``, ``../x``, ``/x``, ``~/x``): a ``.gguf`` file runs on
   llama.cpp (the built-in ``llamacpp`` provider), anything else is a local Hugging Face model folder;
5. ``provider/model-id``, split at the first ``/`` (so ``hf/org/repo`` works).

A Hub repo id is never looked up as a folder: ``hf/microsoft/phi-2`` (or an alias with
``id = "microsoft/phi-2"``) loads from the Hugging Face cache even inside a directory that
holds ``./microsoft/phi-2/``, which would otherwise replace the model, and with
``trust_remote_code`` run its Python. A folder's ``model_id`` is its absolute path.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from llmctl.config import DEMO_MODEL_ALIAS, ModelSettings, Settings
from llmctl.errors import MissingDependencyError, ModelNotFoundError
from llmctl.paths import demo_model_dir
from llmctl.provider_specs import SPECS, spec_for
from llmctl.providers.base import Provider, ResolvedModel

ProviderFactory = Callable[[ResolvedModel], Provider]

# kind -> "module:Class"; the module is imported on first use only, so commands
# that never generate never pay for torch or a vendor SDK.
ADAPTERS: dict[str, str] = {kind: spec.adapter for kind, spec in SPECS.items()}

GGUF_PROVIDER = "llamacpp"  # the built-in provider a path to a .gguf file runs on
DEMO_MODEL_ID = "llmctl/demo"  # what models list, the ledger and logs call the built-in demo model


# The Hub's rule (huggingface_hub.utils.validate_repo_id): NAME or ORG/NAME, word characters,
# "-" and "." inside; no "--" or ".." anywhere.
_REPO_PART = r"[A-Za-z0-9_](?:[\w.\-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"(?!.*(?:--|\.\.)){_REPO_PART}(?:/{_REPO_PART})?")


def written_as_path(reference: str) -> bool:
    """True when the user wrote a filesystem path, not a name: ``./x``, ``../x``, ``/x``, ``~/x``."""
    return reference.startswith((".", "/", "~"))


def folder_path(written: str) -> Path:
    """The absolute folder a written path names (relative ones from the current directory)."""
    return Path(written).expanduser().resolve()


def is_repo_id(model_id: str) -> bool:
    return _REPO_ID.fullmatch(model_id) is not None


def _local_folder(written: str, *, what: str) -> Path:
    folder = folder_path(written)
    if not folder.is_dir():
        raise ModelNotFoundError(f"No model folder at {folder} ({what}).")
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{folder} is not a Hugging Face model folder (it has no config.json).")
    return folder


def is_gguf_name(reference: str) -> bool:
    return reference.lower().endswith(".gguf")


def _gguf_file(written: str, *, what: str) -> Path:
    path = folder_path(written)
    if path.is_dir():
        raise ModelNotFoundError(f"{path} is a folder, not a GGUF file ({what}).")
    if not path.is_file():
        raise ModelNotFoundError(f"No GGUF file at {path} ({what}).")
    return path


def _local_path(resolved: ResolvedModel, written: str, *, what: str) -> Path:
    """The file or folder a local model written as a path is, as its backend's files are laid out."""
    if resolved.spec.model_files == "gguf":
        return _gguf_file(written, what=what)
    return _local_folder(written, what=what)


def resolve(reference: str | None, settings: Settings) -> ResolvedModel:
    """Turn a model reference into a ResolvedModel, or explain why it cannot be."""
    reference = (reference or settings.default_model).strip()
    if not reference:
        raise ModelNotFoundError("Empty model name.", hint="Pass -m MODEL or set default_model in the config.")

    if reference in settings.models:
        return _resolved_alias(reference, settings)

    if reference == DEMO_MODEL_ALIAS:
        demo = _resolved(settings, "hf", str(demo_model_dir()), None, alias=DEMO_MODEL_ALIAS)
        return replace(demo, recorded_as=DEMO_MODEL_ID)

    if written_as_path(reference) and is_gguf_name(reference):
        gguf = _gguf_file(reference, what=f"from {reference}")
        return _resolved(settings, GGUF_PROVIDER, str(gguf), None, alias=None)

    if written_as_path(reference):
        folder = _local_folder(reference, what=f"from {reference}")
        return _resolved(settings, "hf", str(folder), None, alias=None)

    provider_name, sep, model_id = reference.partition("/")
    if sep and model_id:
        try:
            settings.provider(provider_name)
        except KeyError:
            hint = (
                f"To load the folder ./{reference}, write it as a path: -m ./{reference}"
                if Path(reference).is_dir()
                else f"Providers: {', '.join(settings.provider_names())}. "
                f"Add [providers.{provider_name}] to the config to define it."
            )
            raise ModelNotFoundError(f"Unknown provider {provider_name!r} in {reference!r}.", hint=hint) from None
        resolved = _resolved(settings, provider_name, model_id, None, alias=None)
        _check_repo_id(resolved, f"-m {reference}")
        return resolved

    aliases = ", ".join(sorted([DEMO_MODEL_ALIAS, *settings.models]))
    raise ModelNotFoundError(
        f"Unknown model {reference!r}.",
        hint=f"Use an alias ({aliases}), PROVIDER/MODEL-ID (e.g. hf/org/repo, openai/gpt-4o-mini), "
        "or a path to a local model folder. `llmctl models list` shows what there is.",
    )


def _resolved_alias(alias: str, settings: Settings) -> ResolvedModel:
    model = settings.models[alias]
    resolved = _resolved(settings, model.provider, model.reference, model, alias=alias)
    if not resolved.spec.local:
        if model.path is not None:
            raise ModelNotFoundError(
                f"models.{alias}.path: a local folder is for local models, not the hosted provider {model.provider!r}.",
                hint=f"Set models.{alias}.id to the model name the provider serves.",
            )
        return resolved  # a hosted API's model name, which may well look like a path (vLLM's "/models/x")
    if model.path is not None or written_as_path(model.reference):
        key = "path" if model.path is not None else "id"
        local = _local_path(resolved, model.reference, what=f"models.{alias}.{key}")
        return _resolved(settings, model.provider, str(local), model, alias=alias)
    _check_repo_id(resolved, f"models.{alias}.id")
    return resolved


def _check_repo_id(resolved: ResolvedModel, where: str) -> None:
    """A local model named by anything but a path must be a Hub repo id (looked up in the cache only)."""
    if resolved.spec.model_files == "gguf":
        if not is_repo_id(resolved.model_id.partition(":")[0]):
            raise ModelNotFoundError(
                f"{where}: {resolved.model_id!r} is not a Hugging Face repo id (ORG/NAME, optionally :QUANT).",
                hint='For a GGUF file write a path (./model.gguf, /abs/model.gguf), or path = "..." in an alias.',
            )
    elif resolved.spec.local and not is_repo_id(resolved.model_id):
        raise ModelNotFoundError(
            f"{where}: {resolved.model_id!r} is not a Hugging Face repo id (ORG/NAME).",
            hint='For a local folder write a path (./folder, /abs/folder, ~/folder), or path = "..." in an alias.',
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
    return ResolvedModel(provider_name, spec_for(provider_settings).kind, model_id, provider_settings, model, alias)


def load_factory(kind: str, adapters: Mapping[str, str] = ADAPTERS) -> ProviderFactory:
    """Import the adapter for ``kind`` (the only place heavy libraries get pulled in)."""
    target = adapters.get(kind)
    if target is None:
        raise ModelNotFoundError(f"No adapter for provider kind {kind!r}.")
    try:
        factory: ProviderFactory = import_target(target)
    except ImportError as exc:
        extra = SPECS[kind].extra if kind in SPECS else kind
        raise MissingDependencyError(
            f"The {kind} provider needs packages that are not installed ({exc.name or exc}).",
            hint=f"Install them with: pip install 'llmctl[{extra}]'",
        ) from exc
    return factory


def import_target(target: str) -> Any:
    """What a ``"module:name"`` in a spec row names, importing the module now (ImportError if it cannot be)."""
    module_name, _, name = target.partition(":")
    return getattr(importlib.import_module(module_name), name)


def open_provider(resolved: ResolvedModel, adapters: Mapping[str, str] = ADAPTERS) -> Provider:
    """A ready provider for the resolved model."""
    return load_factory(resolved.kind, adapters)(resolved)
