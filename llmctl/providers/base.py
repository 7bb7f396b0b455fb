"""The provider protocol every backend implements, and what the registry hands it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llmctl.config import (
    AnthropicProviderSettings,
    HuggingFaceProviderSettings,
    LlamaCppProviderSettings,
    ModelSettings,
    OpenAIProviderSettings,
)
from llmctl.domain import GenerationRequest, StreamEvent

AnyProviderSettings = (
    HuggingFaceProviderSettings | OpenAIProviderSettings | AnthropicProviderSettings | LlamaCppProviderSettings
)


@dataclass(frozen=True)
class ResolvedModel:
    """Everything an adapter needs to serve one model: no adapter reads the config itself."""

    provider_name: str  # the config's name for the provider ("hf", "my-vllm")
    kind: str  # "huggingface" | "openai" | "anthropic"
    model_id: str  # repo id, local folder (an absolute path), or the API's model name
    provider_settings: AnyProviderSettings
    model_settings: ModelSettings | None = None  # set when the user named an alias
    alias: str | None = None
    # The model's name in the ledger and logs when model_id is not one: the demo's id is a folder
    # inside the installed package, which moves with every install; it is recorded as llmctl/demo.
    recorded_as: str | None = None

    @property
    def recorded_id(self) -> str:
        return self.recorded_as or self.model_id

    @property
    def display_name(self) -> str:
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
        if self.kind == "huggingface" and os.path.isabs(self.model_id):
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

    # A provider may also set ``ignored_params: frozenset[str]``: GenerationParams
    # fields its API does not take, so the CLI can tell the user their flag had no effect;
    # and ``accepts_images = True`` when its wire takes images with a message (hosted vendors).

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
