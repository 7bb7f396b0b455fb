"""Anthropic's Messages API (or a gateway that speaks it, through ``base_url``).

The system prompt goes in the top-level ``system`` field (the API has no system
role). Input tokens arrive in ``message_start`` (reported at once as a
UsageUpdate, so a broken stream still knows them), output tokens in
``message_delta``.

Sampling: the API version this SDK speaks (2026-10-21) rejects ``temperature``,
``top_p`` and ``top_k`` with a 400, and has never had a ``seed``; none of them is
sent. ``max_tokens`` is required, so the request's (the config default unless
``--max-tokens``) always is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2

from llmctl.config import AnthropicProviderSettings
from llmctl.domain import (
    UNKNOWN_USAGE,
    CountSource,
    Finished,
    FinishReason,
    GenerationRequest,
    StreamEvent,
    TextDelta,
    Usage,
    UsageUpdate,
)
from llmctl.errors import LlmctlError
from llmctl.providers.base import ResolvedModel
from llmctl.providers.hosted import Endpoint, HostedProvider, RemoteModel
from llmctl.providers.hosted_errors import listing_error, translate

# Used only when a caller leaves max_tokens unset (the config's [defaults] always sets it).
FALLBACK_MAX_TOKENS = 4096

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
}


def _settings(resolved: ResolvedModel) -> AnthropicProviderSettings:
    settings = resolved.provider_settings
    if not isinstance(settings, AnthropicProviderSettings):
        raise TypeError(f"{resolved.provider_name} is not an Anthropic-kind provider")
    return settings


def _client(endpoint: Endpoint) -> anthropic.Anthropic:
    options = endpoint.client_options()
    if not endpoint.official:
        # The SDK sends the key as a Bearer token; gateways built for older SDKs read x-api-key.
        options["default_headers"] = {"x-api-key": endpoint.key.value}
    return anthropic.Anthropic(**options)


class AnthropicProvider(HostedProvider[anthropic.Anthropic, AnthropicProviderSettings]):
    """One Claude model behind the Messages API."""

    # GenerationParams this API does not take; the CLI warns when a user sets them.
    ignored_params: frozenset[str] = frozenset({"temperature", "top_p", "seed"})

    def __init__(self, resolved: ResolvedModel) -> None:
        super().__init__(resolved, _settings(resolved))

    def _make_client(self, endpoint: Endpoint) -> anthropic.Anthropic:
        return _client(endpoint)

    def request_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The keyword arguments for ``messages.create``."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        max_tokens = request.params.max_tokens
        body: dict[str, Any] = {
            "model": self._resolved.model_id,
            "max_tokens": FALLBACK_MAX_TOKENS if max_tokens is None else max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
            "stream": True,
        }
        if system:
            body["system"] = system
        return body

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        self.prepare()
        assert self._client is not None
        try:
            events = self._client.messages.create(**self.request_body(request))
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        state = _StreamState()
        try:
            with events:
                for event in events:
                    update = state.add(event)
                    if isinstance(update, (TextDelta, UsageUpdate)):
                        yield update
        except (anthropic.AnthropicError, httpx2.TransportError) as exc:
            raise self._error(exc, mid_stream=True) from exc
        yield Finished(state.usage(), _FINISH.get(state.stop_reason or "", FinishReason.OTHER))

    def _error(self, exc: BaseException, *, mid_stream: bool = False) -> LlmctlError:
        assert self._endpoint is not None
        return translate(exc, anthropic, self._endpoint, self._resolved.display_name, mid_stream=mid_stream)


class _StreamState:
    """The usage and stop reason gathered from the raw event stream."""

    def __init__(self) -> None:
        self.input_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.output_tokens: int | None = None
        self.stop_reason: str | None = None

    def add(self, event: Any) -> TextDelta | UsageUpdate | None:
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            delta = event.delta
            if getattr(delta, "type", None) == "text_delta" and delta.text:
                return TextDelta(delta.text)
        elif kind == "message_start":
            raw = getattr(event.message, "usage", None)
            if raw is not None and self._take_input(raw):
                # message_start's output count is a placeholder; only input is known here.
                return UsageUpdate(Usage(self.input_tokens, None, CountSource.PROVIDER, self.cached_tokens))
        elif kind == "message_delta":
            self.stop_reason = getattr(event.delta, "stop_reason", None) or self.stop_reason
            raw = getattr(event, "usage", None)
            if raw is not None:
                self._take_input(raw)  # cumulative counts, when the delta repeats them
                if getattr(raw, "output_tokens", None) is not None:
                    self.output_tokens = raw.output_tokens
        return None

    def _take_input(self, raw: Any) -> bool:
        base = getattr(raw, "input_tokens", None)
        if base is None:
            return False
        read = getattr(raw, "cache_read_input_tokens", None)
        written = getattr(raw, "cache_creation_input_tokens", None)
        # Anthropic's input_tokens excludes cache reads and writes; ours (like OpenAI's) includes them.
        self.input_tokens = base + (read or 0) + (written or 0)
        self.cached_tokens = read
        return True

    def usage(self) -> Usage:
        if self.input_tokens is None and self.output_tokens is None:
            return UNKNOWN_USAGE
        return Usage(self.input_tokens, self.output_tokens, CountSource.PROVIDER, self.cached_tokens)


def list_remote_models(provider_name: str, settings: AnthropicProviderSettings) -> list[RemoteModel]:
    """The models ``GET /v1/models`` lists (every page)."""
    endpoint = Endpoint.open(provider_name, settings)
    with _client(endpoint) as client:
        try:
            models = list(client.models.list(limit=100))
        except anthropic.AnthropicError as exc:
            raise listing_error(exc, anthropic, endpoint) from exc
    return [
        RemoteModel(
            id=model.id,
            provider=provider_name,
            display_name=getattr(model, "display_name", None),
            created=model.created_at.date().isoformat() if getattr(model, "created_at", None) else None,
            context_window=getattr(model, "max_input_tokens", None),
        )
        for model in models
    ]
