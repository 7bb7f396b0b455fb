"""OpenAI's Chat Completions API, and every server that speaks it (vLLM, TGI, Ollama, LM Studio, ...).

Streams with ``stream_options={"include_usage": True}``: the counts arrive in a
last chunk that has no choices. A server that sends no usage leaves the counts
unknown (None), never 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import openai

from llmctl.config import OpenAIProviderSettings
from llmctl.domain import (
    UNKNOWN_USAGE,
    CountSource,
    Finished,
    FinishReason,
    GenerationRequest,
    StreamEvent,
    TextDelta,
    Usage,
)
from llmctl.errors import LlmctlError
from llmctl.providers.base import ResolvedModel
from llmctl.providers.hosted import Endpoint, HostedProvider, RemoteModel
from llmctl.providers.hosted_errors import listing_error, translate

_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}

# Sampling parameters a model may refuse ("Unsupported value: 'temperature' does not
# support 0.7 with this model"; OpenAI's reasoning models take only their defaults).
# Sent again without the refused one: the model then samples the only way it can.
_DROPPABLE = ("temperature", "top_p", "seed")
_UNSUPPORTED_CODES = ("unsupported_value", "unsupported_parameter")

# Keys OpenAI-compatible servers use for a model's context window in /v1/models.
_WINDOW_KEYS = ("context_window", "context_length", "max_model_len", "max_context_length")


def _settings(resolved: ResolvedModel) -> OpenAIProviderSettings:
    settings = resolved.provider_settings
    if not isinstance(settings, OpenAIProviderSettings):
        raise TypeError(f"{resolved.provider_name} is not an OpenAI-kind provider")
    return settings


def _client(endpoint: Endpoint) -> openai.OpenAI:
    return openai.OpenAI(**endpoint.client_options())


class OpenAIProvider(HostedProvider[openai.OpenAI, OpenAIProviderSettings]):
    """One model behind the Chat Completions API."""

    def __init__(self, resolved: ResolvedModel) -> None:
        super().__init__(resolved, _settings(resolved))
        self._refused: set[str] = set()

    def _make_client(self, endpoint: Endpoint) -> openai.OpenAI:
        return _client(endpoint)

    def request_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The keyword arguments for ``chat.completions.create``."""
        params = request.params
        body: dict[str, Any] = {
            "model": self._resolved.model_id,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.max_tokens is not None:
            # OpenAI's reasoning models refuse max_tokens; most other servers only know it.
            body["max_completion_tokens" if self._settings.base_url is None else "max_tokens"] = params.max_tokens
        for name in _DROPPABLE:
            value = getattr(params, name)
            if value is not None and name not in self._refused:
                body[name] = value
        return body

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        self.prepare()
        assert self._client is not None and self._endpoint is not None
        chunks = self._open_stream(request)
        usage: Usage = UNKNOWN_USAGE
        finish: str | None = None
        try:
            with chunks:
                for chunk in chunks:
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices:
                        if choice.index != 0:
                            continue
                        content = getattr(getattr(choice, "delta", None), "content", None)
                        if content:
                            yield TextDelta(content)
                        if choice.finish_reason:
                            finish = choice.finish_reason
        except (openai.OpenAIError, httpx2.TransportError) as exc:
            raise self._error(exc, mid_stream=True) from exc
        reason = _FINISH.get(finish, FinishReason.OTHER) if finish else FinishReason.OTHER
        yield Finished(usage, reason)

    def _open_stream(self, request: GenerationRequest) -> openai.Stream[Any]:
        assert self._client is not None
        while True:
            body = self.request_body(request)
            try:
                stream: openai.Stream[Any] = self._client.chat.completions.create(**body)
                return stream
            except openai.BadRequestError as exc:
                refused = _refused_parameter(exc)
                if refused is None or refused not in body:
                    raise self._error(exc) from exc
                self._refused.add(refused)
            except openai.OpenAIError as exc:
                raise self._error(exc) from exc

    def _error(self, exc: BaseException, *, mid_stream: bool = False) -> LlmctlError:
        assert self._endpoint is not None
        return translate(exc, openai, self._endpoint, self._resolved.display_name, mid_stream=mid_stream)


def _refused_parameter(exc: openai.BadRequestError) -> str | None:
    if exc.param in _DROPPABLE and exc.code in _UNSUPPORTED_CODES:
        return exc.param
    return None


def _usage(raw: Any) -> Usage:
    prompt = getattr(raw, "prompt_tokens", None)
    completion = getattr(raw, "completion_tokens", None)
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    if prompt is None and completion is None:
        return UNKNOWN_USAGE
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        source=CountSource.PROVIDER,
        cached_input_tokens=cached,
    )


def list_remote_models(provider_name: str, settings: OpenAIProviderSettings) -> list[RemoteModel]:
    """The models the provider's ``GET /models`` lists."""
    endpoint = Endpoint.open(provider_name, settings)
    with _client(endpoint) as client:
        try:
            models = list(client.models.list())
        except openai.OpenAIError as exc:
            raise listing_error(exc, openai, endpoint) from exc
    out = []
    for model in models:
        extra = model.model_extra or {}
        window = next((extra[k] for k in _WINDOW_KEYS if isinstance(extra.get(k), int)), None)
        created = getattr(model, "created", None)
        out.append(
            RemoteModel(
                id=model.id,
                provider=provider_name,
                owned_by=getattr(model, "owned_by", None),
                created=datetime.fromtimestamp(created, UTC).date().isoformat() if isinstance(created, int) else None,
                context_window=window,
            )
        )
    return sorted(out, key=lambda m: m.id)
