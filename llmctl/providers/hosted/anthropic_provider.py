"""Anthropic's Messages API (or a gateway that speaks it, through ``base_url``).

The system prompt goes in the top-level ``system`` field (the API has no system
role). Input tokens arrive in ``message_start`` (reported at once as a
UsageUpdate, so a broken stream still knows them, unless that count is a
gateway's placeholder 0), output tokens in ``message_delta``.

Sampling: the API version this SDK speaks (2026-10-21) rejects ``temperature``,
``top_p`` and ``top_k`` with a 400, and has never had a ``seed``; none of them is
sent. ``max_tokens`` is required: the user's (flag or ``[defaults]``), else
``DEFAULT_MAX_TOKENS``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

import anthropic
from pydantic import Field, NonNegativeInt

from llmctl.domain import (
    UNKNOWN_USAGE,
    CountSource,
    Finished,
    FinishReason,
    GenerationRequest,
    Message,
    StreamEvent,
    TextDelta,
    Usage,
    UsageUpdate,
)
from llmctl.errors import LlmctlError
from llmctl.provider_specs import AnthropicProviderSettings
from llmctl.providers.base import PromptTokens, ResolvedModel, Uncountable
from llmctl.providers.hosted.base import Endpoint, HostedProvider, RemoteModel
from llmctl.providers.hosted.credentials import scrub
from llmctl.providers.hosted.errors import listing_error
from llmctl.providers.hosted.stream import (
    Checked,
    MalformedResponse,
    StreamStalled,
    StreamWatch,
    checked,
    error_in_body,
    not_an_answer,
    unfinished,
    wire_error,
)

# The API requires max_tokens; sent when neither --max-tokens nor [defaults] sets one. Every
# Claude model since Claude 3 accepts this many output tokens.
DEFAULT_MAX_TOKENS = 4096

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
}


class _Usage(Checked):
    input_tokens: NonNegativeInt | None = None
    output_tokens: NonNegativeInt | None = None
    cache_read_input_tokens: NonNegativeInt | None = None
    cache_creation_input_tokens: NonNegativeInt | None = None


class _StartedMessage(Checked):
    usage: _Usage | None = None


class _MessageStart(Checked):
    message: _StartedMessage


class _BlockDelta(Checked):
    type: str
    text: str | None = None


class _ContentBlockDelta(Checked):
    delta: _BlockDelta


class _StopDelta(Checked):
    stop_reason: str | None = None


class _MessageDelta(Checked):
    delta: _StopDelta
    usage: _Usage | None = None


class _Block(Checked):
    type: str
    text: str | None = None


class _Message(Checked):
    content: list[_Block] = Field(default_factory=list)
    stop_reason: str | None = None
    usage: _Usage | None = None
    error: Any = None  # {"type": "error", "error": {...}} sent with status 200


class _Stalled(StreamStalled, anthropic.AnthropicError):
    """A passed idle or total timeout, as an error the SDK passes through without retrying."""


def _settings(resolved: ResolvedModel) -> AnthropicProviderSettings:
    settings = resolved.provider_settings
    if not isinstance(settings, AnthropicProviderSettings):
        raise TypeError(f"{resolved.provider_name} is not an Anthropic-kind provider")
    return settings


def _client(endpoint: Endpoint, watch: StreamWatch | None = None) -> anthropic.Anthropic:
    options = endpoint.client_options()
    if not endpoint.official:
        # The SDK sends the key as a Bearer token; gateways built for older SDKs read x-api-key.
        options["default_headers"] = {"x-api-key": endpoint.key.value}
    if watch is not None:
        options["http_client"] = anthropic.DefaultHttpxClient(event_hooks={"response": [watch.on_response]})
    return anthropic.Anthropic(**options)


class AnthropicProvider(HostedProvider[anthropic.Anthropic, AnthropicProviderSettings]):
    """One Claude model behind the Messages API."""

    @staticmethod
    def list_models(provider_name: str, settings: AnthropicProviderSettings) -> list[RemoteModel]:
        """The models the provider serves, from its model-listing endpoint (a network call)."""
        return list_remote_models(provider_name, settings)

    # GenerationParams this API does not take; the CLI warns when a user sets them.
    unsupported_params: frozenset[str] = frozenset({"temperature", "top_p", "seed"})

    def __init__(self, resolved: ResolvedModel) -> None:
        super().__init__(resolved, _settings(resolved), _Stalled)

    def _make_client(self, endpoint: Endpoint) -> anthropic.Anthropic:
        return _client(endpoint, self._watch)

    def request_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The keyword arguments for ``messages.create``."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        max_tokens = request.params.max_tokens
        body: dict[str, Any] = {
            "model": self._resolved.model_id,
            "max_tokens": DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
            "messages": [_anthropic_message(m) for m in request.messages if m.role != "system"],
            "stream": request.stream,
        }
        if system:
            body["system"] = system
        if request.response_schema is not None:
            body["output_config"] = {"format": {"type": "json_schema", "schema": dict(request.response_schema)}}
        return body

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        self.prepare()
        assert self._client is not None
        self._start_watch(stream=request.stream)
        try:
            response = self._client.messages.with_raw_response.create(**self.request_body(request))
        except Exception as exc:  # a whole answer is read here: a stall or a bad body shows now
            self._watch.stop()
            raise self._wire_error(exc) from exc
        try:
            if request.stream:
                yield from self._streamed(response)
            else:
                yield from self._whole(response)
        finally:
            self._watch.stop()

    def _streamed(self, response: Any) -> Iterator[StreamEvent]:
        state = _StreamState()
        content_type = response.headers.get("content-type")
        try:
            with response.parse() as events:
                for event in events:
                    update = state.add(event)
                    if update is not None:
                        self._watch.saw_content()
                    if isinstance(update, (TextDelta, UsageUpdate)):
                        yield update
        except Exception as exc:
            raise self._wire_error(exc, mid_stream=True) from exc
        if state.stop_reason is None:
            if not state.text:
                raise not_an_answer(self._endpoint_or_fail(), content_type, expected="text/event-stream")
            # The Messages API always ends an answer with message_delta (its stop reason): text
            # without one is an answer cut short by a proxy or a crash, not a finished one.
            raise unfinished(self._endpoint_or_fail(), "message_delta")
        yield Finished(state.usage(), _FINISH.get(state.stop_reason or "", FinishReason.OTHER))

    def _whole(self, response: Any) -> Iterator[StreamEvent]:
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type.lower():
            raise not_an_answer(self._endpoint_or_fail(), content_type, expected="application/json")
        try:
            message: _Message = checked(_Message, response.http_response.json(), "the message")
        except Exception as exc:
            raise self._wire_error(exc) from exc
        if message.error is not None:
            raise error_in_body(self._endpoint_or_fail(), message.error)
        text = "".join(block.text or "" for block in message.content if block.type == "text")
        if not text and message.stop_reason is None:
            raise not_an_answer(self._endpoint_or_fail(), content_type, expected="application/json")
        state = _StreamState()
        if message.usage is not None:
            state.take_usage(message.usage, final=True)
        if text:
            yield TextDelta(text)
        yield Finished(state.usage(), _FINISH.get(message.stop_reason or "", FinishReason.OTHER))

    def _wire_error(self, exc: Exception, *, mid_stream: bool = False) -> LlmctlError:
        return wire_error(exc, anthropic, self._endpoint_or_fail(), self._resolved.display_name, mid_stream=mid_stream)


class _StreamState:
    """The text, usage and stop reason gathered from the raw event stream.

    Counts are the provider's only once it has stated them: ``message_start``'s output
    count is always a placeholder, and so is an input count of 0 there (gateways such as
    LiteLLM send 0 and the real count only in ``message_delta``).
    """

    def __init__(self) -> None:
        self.text = ""
        self.input_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.output_tokens: int | None = None
        self.stop_reason: str | None = None

    def add(self, event: Any) -> TextDelta | UsageUpdate | bool | None:
        """What ``event`` adds: a delta, a usage update, True for other news, None for nothing."""
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            delta: _BlockDelta = checked(_ContentBlockDelta, event, "a content_block_delta event").delta
            if delta.type == "text_delta" and delta.text is None:
                raise MalformedResponse("a text_delta without text")
            if delta.type == "text_delta" and delta.text:
                self.text += delta.text
                return TextDelta(delta.text)
        elif kind == "message_start":
            usage = checked(_MessageStart, event, "the message_start event").message.usage
            if usage is not None and self.take_usage(usage, final=False):
                return UsageUpdate(Usage(self.input_tokens, None, CountSource.PROVIDER, self.cached_tokens))
        elif kind == "message_delta":
            update: _MessageDelta = checked(_MessageDelta, event, "the message_delta event")
            self.stop_reason = update.delta.stop_reason or self.stop_reason
            if update.usage is not None:
                self.take_usage(update.usage, final=True)  # cumulative counts
            return True
        return None

    def take_usage(self, raw: _Usage, *, final: bool) -> bool:
        """Take the input (and, when ``final``, output) counts; True when an input count was new."""
        if final and raw.output_tokens is not None:
            self.output_tokens = raw.output_tokens
        if raw.input_tokens is None:
            return False
        read, written = raw.cache_read_input_tokens, raw.cache_creation_input_tokens
        # Anthropic's input_tokens excludes cache reads and writes; ours (like OpenAI's) includes them.
        total = raw.input_tokens + (read or 0) + (written or 0)
        if total == 0:  # every request has input: 0 is a placeholder
            return False
        self.input_tokens, self.cached_tokens = total, read
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


def _anthropic_message(message: Message) -> dict[str, Any]:
    """A message on the Messages wire; with images, base64 image blocks before the text (as Anthropic advises)."""
    if not message.images:
        return {"role": message.role, "content": message.content}
    blocks: list[dict[str, Any]] = [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": image.media_type, "data": base64.b64encode(image.data).decode()},
        }
        for image in message.images
    ]
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    return {"role": message.role, "content": blocks}


def count_prompt_tokens(resolved: ResolvedModel, messages: Sequence[Message]) -> PromptTokens | Uncountable:
    """The count from the API's count-tokens endpoint, through the same client (and headers) as generation."""
    settings = _settings(resolved)
    try:
        endpoint = Endpoint.open(resolved.provider_name, settings)
    except LlmctlError as exc:
        return Uncountable(f"no API key ({exc.message})")
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    body: dict[str, Any] = {
        "model": resolved.model_id,
        "messages": [{"role": m.role, "content": m.content} for m in messages if m.role != "system"],
    }
    if system:
        body["system"] = system
    try:
        with _client(endpoint) as client:
            tokens = int(client.messages.count_tokens(**body).input_tokens)
    except anthropic.AnthropicError as exc:
        return Uncountable(f"the count-tokens API failed: {scrub(str(exc), endpoint.key)}")
    return PromptTokens(tokens, CountSource.PROVIDER, "Anthropic count-tokens API")
