"""OpenAI's Chat Completions API, and every server that speaks it (vLLM, TGI, Ollama, LM Studio, ...).

Streams with ``stream_options={"include_usage": True}``: the counts arrive in a
last chunk that has no choices. A server that sends no usage leaves the counts
unknown (None), never 0.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import openai
from pydantic import NonNegativeInt

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
)
from llmctl.errors import LlmctlError
from llmctl.provider_specs import OpenAIProviderSettings
from llmctl.providers.base import PromptTokens, ResolvedModel, Uncountable
from llmctl.providers.hosted import openai_tokens
from llmctl.providers.hosted.base import Endpoint, HostedProvider, RemoteModel
from llmctl.providers.hosted.errors import listing_error
from llmctl.providers.hosted.stream import (
    Checked,
    StreamStalled,
    StreamWatch,
    checked,
    error_in_body,
    not_an_answer,
    wire_error,
)

_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}

# Sampling parameters a model may refuse ("Unsupported value: 'temperature' does not
# support 0.7 with this model"; OpenAI's reasoning models take only their defaults).
# Sent again without the refused one: the model then samples the only way it can.
_DROPPABLE = ("temperature", "top_p", "seed")
_UNSUPPORTED_CODES = ("unsupported_value", "unsupported_parameter")

# Keys OpenAI-compatible servers use for a model's context window in /v1/models.
_WINDOW_KEYS = ("context_window", "context_length", "max_model_len", "max_context_length")


class _Delta(Checked):
    content: str | None = None


class _StreamChoice(Checked):
    index: int | None = 0  # some compatible servers leave it out (None): their only choice
    delta: _Delta | None = None
    finish_reason: str | None = None


class _PromptDetails(Checked):
    cached_tokens: NonNegativeInt | None = None


class _Usage(Checked):
    prompt_tokens: NonNegativeInt | None = None
    completion_tokens: NonNegativeInt | None = None
    prompt_tokens_details: _PromptDetails | None = None


class _Chunk(Checked):
    choices: list[_StreamChoice] | None = None  # None: the usage-only last chunk of some servers
    usage: _Usage | None = None


class _Message(Checked):
    content: str | None = None


class _Choice(Checked):
    index: int | None = 0
    message: _Message
    finish_reason: str | None = None


class _Completion(Checked):
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: Any = None  # a proxy's error object, sent with status 200


class _Stalled(StreamStalled, openai.OpenAIError):
    """A passed idle or total timeout, as an error the SDK passes through without retrying."""


def _settings(resolved: ResolvedModel) -> OpenAIProviderSettings:
    settings = resolved.provider_settings
    if not isinstance(settings, OpenAIProviderSettings):
        raise TypeError(f"{resolved.provider_name} is not an OpenAI-kind provider")
    return settings


def _client(endpoint: Endpoint, watch: StreamWatch | None = None) -> openai.OpenAI:
    options = endpoint.client_options()
    if watch is not None:
        options["http_client"] = openai.DefaultHttpxClient(event_hooks={"response": [watch.on_response]})
    return openai.OpenAI(**options)


class OpenAIProvider(HostedProvider[openai.OpenAI, OpenAIProviderSettings]):
    """One model behind the Chat Completions API."""

    @staticmethod
    def list_models(provider_name: str, settings: OpenAIProviderSettings) -> list[RemoteModel]:
        """The models the provider serves, from its model-listing endpoint (a network call)."""
        return list_remote_models(provider_name, settings)

    def count_prompt_tokens(self, messages: Sequence[Message]) -> PromptTokens | Uncountable:
        """Offline and exact when the model's encoding is known (see openai_tokens)."""
        return openai_tokens.count_prompt_tokens(self.resolved, messages)

    def __init__(self, resolved: ResolvedModel) -> None:
        super().__init__(resolved, _settings(resolved), _Stalled)
        self._refused: set[str] = set()

    def _make_client(self, endpoint: Endpoint) -> openai.OpenAI:
        return _client(endpoint, self._watch)

    def request_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The keyword arguments for ``chat.completions.create``: only the options the user set."""
        params = request.params
        body: dict[str, Any] = {
            "model": self._resolved.model_id,
            "messages": [_openai_message(m) for m in request.messages],
            "stream": request.stream,
        }
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        if params.max_tokens is not None:
            # OpenAI's reasoning models refuse max_tokens; most other servers only know it.
            body["max_completion_tokens" if self._settings.base_url is None else "max_tokens"] = params.max_tokens
        for name in _DROPPABLE:
            value = getattr(params, name)
            if value is not None and name not in self._refused:
                body[name] = value
        if request.response_schema is not None:
            schema = dict(request.response_schema)
            body["response_format"] = {
                "type": "json_schema",
                # strict (a guarantee) where OpenAI takes the schema as strict; best effort otherwise.
                "json_schema": {"name": "answer", "schema": schema, "strict": strict_compatible(schema)},
            }
        return body

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        self.prepare()
        assert self._client is not None and self._endpoint is not None
        try:
            if request.stream:
                yield from self._streamed(request)
            else:
                yield from self._whole(request)
        finally:
            self._watch.stop()

    def _streamed(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        chunks: openai.Stream[Any] = self._create(request)
        answer = _Answer()
        try:
            with chunks:
                for raw in chunks:
                    chunk: _Chunk = checked(_Chunk, raw, "a stream chunk")
                    for event in answer.add_chunk(chunk):
                        self._watch.saw_content()
                        if event is not None:
                            yield event
        except Exception as exc:
            raise self._wire_error(exc, mid_stream=True) from exc
        if not answer.text and answer.finish is None:
            content_type = chunks.response.headers.get("content-type")
            raise not_an_answer(self._endpoint_or_fail(), content_type, expected="text/event-stream")
        yield answer.finished()

    def _whole(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        assert self._client is not None
        raw = self._create(request, raw=True)
        content_type = raw.headers.get("content-type", "")
        if "json" not in content_type.lower():
            raise not_an_answer(self._endpoint_or_fail(), content_type, expected="application/json")
        try:
            completion: _Completion = checked(_Completion, raw.http_response.json(), "the completion")
        except Exception as exc:
            raise self._wire_error(exc) from exc
        if completion.error is not None:
            raise error_in_body(self._endpoint_or_fail(), completion.error)
        answer = _Answer()
        answer.add_completion(completion)
        if not answer.text and answer.finish is None:
            raise not_an_answer(self._endpoint_or_fail(), content_type, expected="application/json")
        if answer.text:
            yield TextDelta(answer.text)
        yield answer.finished()

    def _create(self, request: GenerationRequest, *, raw: bool = False) -> Any:
        """The SDK's stream (or raw response), sending again without a sampling option the model refused."""
        assert self._client is not None
        completions = self._client.chat.completions
        create = completions.with_raw_response.create if raw else completions.create
        self._start_watch(stream=request.stream)
        while True:
            body = self.request_body(request)
            try:
                return create(**body)
            except openai.BadRequestError as exc:
                refused = _refused_parameter(exc)
                if refused is None or refused not in body:
                    raise self._wire_error(exc) from exc
                self._refused.add(refused)
            except Exception as exc:  # a whole answer is read here: a stall or a bad body shows now
                raise self._wire_error(exc) from exc

    def _wire_error(self, exc: Exception, *, mid_stream: bool = False) -> LlmctlError:
        return wire_error(exc, openai, self._endpoint_or_fail(), self._resolved.display_name, mid_stream=mid_stream)


class _Answer:
    """Text, finish reason and usage gathered from chunks (or one completion)."""

    def __init__(self) -> None:
        self.text = ""
        self.finish: str | None = None
        self.usage: Usage = UNKNOWN_USAGE

    def add_chunk(self, chunk: _Chunk) -> Iterator[TextDelta | None]:
        """The text deltas in ``chunk``, and ``None`` for a chunk that carried usage or a finish reason."""
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
            yield None
        for choice in chunk.choices or ():
            if choice.index not in (0, None):
                continue
            content = choice.delta.content if choice.delta is not None else None
            if content:
                self.text += content
                yield TextDelta(content)
            if choice.finish_reason:
                self.finish = choice.finish_reason
                yield None

    def add_completion(self, completion: _Completion) -> None:
        if completion.usage is not None:
            self.usage = _usage(completion.usage)
        for choice in completion.choices or ():
            if choice.index in (0, None):
                self.text = choice.message.content or ""
                self.finish = choice.finish_reason

    def finished(self) -> Finished:
        reason = _FINISH.get(self.finish, FinishReason.OTHER) if self.finish else FinishReason.OTHER
        return Finished(self.usage, reason)


def _refused_parameter(exc: openai.BadRequestError) -> str | None:
    if exc.param in _DROPPABLE and exc.code in _UNSUPPORTED_CODES:
        return exc.param
    return None


def _usage(raw: _Usage) -> Usage:
    details = raw.prompt_tokens_details
    # Every request has input, so a prompt count of 0 is a placeholder, not a count.
    prompt = raw.prompt_tokens or None
    if prompt is None and raw.completion_tokens is None:
        return UNKNOWN_USAGE
    return Usage(
        input_tokens=prompt,
        output_tokens=raw.completion_tokens,
        source=CountSource.PROVIDER,
        cached_input_tokens=details.cached_tokens if details is not None else None,
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


def strict_compatible(schema: Mapping[str, Any]) -> bool:
    """Whether OpenAI's strict structured outputs accept ``schema``: every object closed, every key required."""
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(properties):
            return False
        if not all(isinstance(p, Mapping) and strict_compatible(p) for p in properties.values()):
            return False
    items = schema.get("items")
    if isinstance(items, Mapping) and not strict_compatible(items):
        return False
    return all(strict_compatible(s) for key in ("anyOf", "allOf") for s in schema.get(key, []))


def _openai_message(message: Message) -> dict[str, Any]:
    """A message on the Chat Completions wire; with images, a list of text and image_url parts."""
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    for image in message.images:
        url = f"data:{image.media_type};base64,{base64.b64encode(image.data).decode()}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return {"role": message.role, "content": parts}
