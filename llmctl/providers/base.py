"""The provider protocol every backend implements, and what the registry hands it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from llmctl.config import ModelSettings
from llmctl.domain import CountSource, GenerationRequest, Message, StreamEvent
from llmctl.provider_specs import AnyProviderSettings, ProviderSpec, spec_for


@dataclass(frozen=True)
class ResolvedModel:
    """Everything an adapter needs to serve one model: no adapter reads the config itself."""

    provider_name: str  # the config's name for the provider ("hf", "my-vllm")
    kind: str  # a key of provider_specs.SPECS
    model_id: str  # repo id, local folder (an absolute path), or the API's model name
    provider_settings: AnyProviderSettings
    model_settings: ModelSettings | None = None  # set when the user named an alias
    alias: str | None = None
    # The model's name in the ledger and logs when model_id is not one: the demo's id is a folder
    # inside the installed package, which moves with every install; it is recorded as llmctl/demo.
    recorded_as: str | None = None

    def with_load_options(self, **options: object) -> ResolvedModel:
        """The same model with these ``ModelSettings`` loading options (those not None) over its configured ones."""
        update = {key: value for key, value in options.items() if value is not None}
        if not update:
            return self
        base = self.model_settings or ModelSettings(provider=self.provider_name, id=self.model_id)
        return replace(self, model_settings=base.model_copy(update=update))

    @property
    def spec(self) -> ProviderSpec:
        """What this model's backend declares it is (local or hosted, extra, pricing vendor)."""
        return spec_for(self.kind)

    @property
    def recorded_id(self) -> str:
        return self.recorded_as or self.model_id

    @property
    def short_name(self) -> str:
        """The alias, else the model id alone: the ``model`` of a result (``generate --json``)."""
        return self.alias or self.model_id

    @property
    def display_name(self) -> str:
        """What to type (-m) to get this model again, and its name in messages: the alias, the folder,
        or PROVIDER/MODEL-ID."""
        if self.alias:
            return self.alias
        if self.model_id.startswith("/"):  # a local folder names itself
            return self.model_id
        return f"{self.provider_name}/{self.model_id}"

    @property
    def local_folder(self) -> Path | None:
        """The folder of a local model named by a path; None for a Hub repo id (found in the HF cache only).

        The registry makes every folder absolute, so a relative id is never read from the current directory.
        """
        if self.spec.model_files == "hf" and os.path.isabs(self.model_id):
            return Path(self.model_id)
        return None


class Provider(Protocol):
    """One model on one backend: a request in, a stream of events out.

    ``stream`` yields TextDelta/UsageUpdate events and ends with exactly one
    Finished. On failure it raises a ProviderError (or a subclass) after whatever
    it already yielded; the consumer keeps that text and usage.
    """

    @property
    def resolved(self) -> ResolvedModel: ...

    # Optional capabilities, asked through the functions below (a provider that lacks one has not got it):
    # ``unsupported_params: frozenset[str]``: GenerationParams fields its API does not take, so the CLI
    #   can tell the user their flag had no effect;
    # ``accepts_images = True``: its wire takes images with a message (hosted vendors);
    # ``count_prompt_tokens(messages) -> PromptTokens | Uncountable``: the prompt's size, as exactly as it can;
    # ``for_chat(reuse_kv=...) -> Provider``: a provider that keeps state (a KV cache) between chat turns.

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]: ...

    def prepare(self) -> None:
        """Do slow one-time setup (load weights, build a client) before timing starts."""
        ...

    def context_window(self) -> int | None:
        """The model's context window in tokens, when known."""
        ...

    def close(self) -> None:
        """Release what the provider holds (a loaded model, an HTTP client)."""
        ...


@dataclass(frozen=True)
class PromptTokens:
    """A prompt's size in tokens and where the count came from (exact: the model's tokenizer; provider: its API)."""

    tokens: int
    source: CountSource
    method: str  # how it was counted, in words
    context_window: int | None = None  # the window the counter saw (a local model's config), when it saw one


@dataclass(frozen=True)
class Uncountable:
    """Why a provider could not count a prompt (the caller estimates instead, and says so)."""

    reason: str


def unsupported_params(provider: Provider) -> frozenset[str]:
    params: frozenset[str] = getattr(provider, "unsupported_params", frozenset())
    return params


def accepts_images(provider: Provider) -> bool:
    return bool(getattr(provider, "accepts_images", False))


def count_prompt_tokens(provider: Provider, messages: Sequence[Message]) -> PromptTokens | Uncountable:
    counter = getattr(provider, "count_prompt_tokens", None)
    if counter is None:
        return Uncountable(f"{provider.resolved.spec.label} cannot count tokens")
    counted: PromptTokens | Uncountable = counter(messages)
    return counted


def for_chat(provider: Provider, *, reuse_kv: bool) -> Provider:
    """The provider a chat should use: one that keeps its KV cache between turns where the backend can."""
    wrap = getattr(provider, "for_chat", None)
    if wrap is None:
        return provider
    chat_provider: Provider = wrap(reuse_kv=reuse_kv)
    return chat_provider
