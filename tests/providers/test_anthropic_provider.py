"""AnthropicProvider through the real anthropic SDK over HTTP to a loopback Messages server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from llmctl.config import Settings
from llmctl.domain import (
    CountSource,
    Finished,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    Message,
    StreamEvent,
    TextDelta,
    Usage,
    UsageUpdate,
    collect,
)
from llmctl.errors import AuthenticationError, ContextLengthError, InputError, ModelNotFoundError, ProviderError
from llmctl.provider_specs import AnthropicProviderSettings
from llmctl.providers.hosted.anthropic_provider import DEFAULT_MAX_TOKENS, AnthropicProvider, list_remote_models
from llmctl.providers.registry import open_provider, resolve
from llmctl.services.generation import GenerationRun, RunStatus
from tests.wire.anthropic_server import (
    AnthropicServer,
    ContextTooLong,
    DropMidStream,
    Fault,
    Reply,
    Slow,
    StreamError,
)

KEY = "sk-ant-test-0123456789"
MODEL = "claude-sonnet-4-6"
REQUEST = GenerationRequest(
    (Message("system", "Be brief."), Message("user", "Capital of France?")),
    GenerationParams(temperature=0.3, top_p=0.8, max_tokens=42, seed=7),
)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[AnthropicServer]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with AnthropicServer(api_key=KEY) as running:
        yield running
    assert not running.errors


def make(server: AnthropicServer | None, *, model: str = MODEL, **table: Any) -> AnthropicProvider:
    table = {"timeout": 5, "max_retries": 0, **table}
    if server is not None:
        table.setdefault("base_url", server.base_url)
    settings = Settings.model_validate({"providers": {"anthropic": table}})
    provider = open_provider(resolve(f"anthropic/{model}", settings))
    assert isinstance(provider, AnthropicProvider)
    return provider


def events(provider: AnthropicProvider, request: GenerationRequest = REQUEST) -> list[StreamEvent]:
    try:
        return list(provider.stream(request))
    finally:
        provider.close()


def run(provider: AnthropicProvider) -> tuple[GenerationRun, list[str], ProviderError | None]:
    generation = GenerationRun(provider, REQUEST)
    pieces: list[str] = []
    try:
        for piece in generation.deltas():
            pieces.append(piece)
    except ProviderError as exc:
        return generation, pieces, exc
    finally:
        provider.close()
    return generation, pieces, None


def test_input_usage_first_then_text_then_finished(server: AnthropicServer) -> None:
    server.add(Reply(text="Paris is the capital.", usage=(21, 6), cached_tokens=5, cache_creation_tokens=2))
    got = events(make(server))
    # Anthropic's input_tokens excludes cache reads and writes; ours counts the whole input: 21 + 5 + 2.
    assert got[0] == UsageUpdate(Usage(28, None, CountSource.PROVIDER, cached_input_tokens=5))
    assert all(isinstance(e, TextDelta) for e in got[1:-1])
    assert "".join(e.text for e in got if isinstance(e, TextDelta)) == "Paris is the capital."
    assert got[-1] == Finished(Usage(28, 6, CountSource.PROVIDER, cached_input_tokens=5), FinishReason.STOP)


def test_system_is_top_level_and_sampling_parameters_are_not_sent(server: AnthropicServer) -> None:
    events(make(server))
    request = server.last_request
    assert request.path == "/v1/messages"
    assert request.bearer_token == KEY
    assert request.headers["x-api-key"] == KEY  # for gateways that read the older header
    assert "anthropic-version" in request.headers
    body = request.json
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert body["model"] == MODEL and body["max_tokens"] == 42 and body["stream"] is True
    # The API version this SDK speaks rejects temperature/top_p/top_k; it never had a seed.
    assert not {"temperature", "top_p", "top_k", "seed"} & set(body)


def test_max_tokens_is_always_sent(server: AnthropicServer) -> None:
    events(make(server), GenerationRequest((Message("user", "Hi"),)))
    body = server.last_request.json
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS and "system" not in body


def test_several_system_messages_are_joined(server: AnthropicServer) -> None:
    request = GenerationRequest((Message("system", "One."), Message("system", "Two."), Message("user", "Hi")))
    events(make(server), request)
    assert server.last_request.json["system"] == "One.\n\nTwo."


def test_stop_at_max_tokens_is_length(server: AnthropicServer) -> None:
    server.add(Reply(finish_reason="max_tokens"))
    finished = events(make(server))[-1]
    assert isinstance(finished, Finished) and finished.finish_reason is FinishReason.LENGTH


def test_no_usage_gives_unknown_counts(server: AnthropicServer) -> None:
    server.add(Reply(text="Hi.", usage=None))
    completion = collect(make(server).stream(REQUEST))
    assert completion.text == "Hi."
    assert completion.usage == Usage(None, None, CountSource.UNKNOWN)


def test_dropped_stream_keeps_text_and_the_input_count(server: AnthropicServer) -> None:
    server.add(DropMidStream(after_chunks=2, reply=Reply(usage=(30, 8))))
    generation, pieces, error = run(make(server))
    assert "".join(pieces) == "Paris is "
    assert error is not None and "broke off mid-answer" in error.message
    result = generation.result()
    assert result.status is RunStatus.ERROR
    assert result.completion.text == "Paris is "
    assert result.completion.usage.input_tokens == 30
    assert result.completion.usage.output_tokens is None


def test_overloaded_event_mid_stream(server: AnthropicServer) -> None:
    server.add(StreamError(after_chunks=1))
    _, pieces, error = run(make(server))
    assert pieces == ["Paris "]
    assert error is not None and error.message.endswith("reported an error mid-answer: Overloaded")


def test_rejected_key_names_the_variable(server: AnthropicServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong")
    with pytest.raises(AuthenticationError) as info:
        events(make(server))
    assert "rejected the API key from $ANTHROPIC_API_KEY" in info.value.message
    assert "sk-ant-wrong" not in str(info.value)


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(AuthenticationError) as info:
        make(None).prepare()
    assert "ANTHROPIC_API_KEY is not set" in info.value.message
    assert "providers.anthropic.api_key_env" in str(info.value.hint)


def test_overloaded_then_success(server: AnthropicServer) -> None:
    server.add(Fault(529))
    assert collect(make(server, max_retries=1).stream(REQUEST)).text == Reply().text
    assert len(server.requests) == 2


def test_overloaded_after_retries(server: AnthropicServer) -> None:
    server.default = Fault(529)
    with pytest.raises(ProviderError) as info:
        events(make(server, max_retries=1))
    assert info.value.message.endswith("is overloaded (HTTP 529) (after 1 retry): Overloaded")


def test_rate_limited_after_retries(server: AnthropicServer) -> None:
    server.default = Fault(429)
    with pytest.raises(ProviderError, match=r"Rate limited by anthropic .*\(HTTP 429\) \(after 2 retries\)"):
        events(make(server, max_retries=2))
    assert len(server.requests) == 3


def test_timeout(server: AnthropicServer) -> None:
    server.add(Slow(5.0))
    with pytest.raises(ProviderError, match=r"did not answer within 0.3 s"):
        events(make(server, timeout=0.3))


def test_timeout_mid_answer_keeps_text_and_input_count(server: AnthropicServer) -> None:
    server.add(Reply(chunk_delay_s=5.0, usage=(17, 9)))
    generation, pieces, error = run(make(server, timeout=0.3))
    assert pieces == ["Paris "]
    assert error is not None and "did not answer within 0.3 s mid-answer" in error.message
    assert generation.result().completion.usage.input_tokens == 17


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderError) as info:
        events(make(None, base_url=f"http://127.0.0.1:{port}"))
    assert "(connection refused)" in info.value.message


def test_context_too_long(server: AnthropicServer) -> None:
    server.add(ContextTooLong(prompt_tokens=208_310))
    with pytest.raises(ContextLengthError) as info:
        events(make(server))
    assert (info.value.prompt_tokens, info.value.context_window) == (208_310, 200_000)


def test_input_plus_max_tokens_over_the_limit(server: AnthropicServer) -> None:
    message = "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000, decrease input length"
    server.add(Fault(400, message=message))
    with pytest.raises(InputError) as info:
        events(make(server))
    assert "198,000 tokens) plus --max-tokens (8192)" in info.value.message and "200,000 tokens" in info.value.message


def test_unknown_model(server: AnthropicServer) -> None:
    server.add(Fault(404))
    with pytest.raises(ModelNotFoundError, match="has no model 'anthropic/claude-nope'"):
        events(make(server, model="claude-nope"))


def test_lists_every_page_of_models(server: AnthropicServer) -> None:
    server.models = [f"claude-{i:03d}" for i in range(130)] + [{"id": "claude-big", "max_input_tokens": 1_000_000}]
    models = list_remote_models("anthropic", AnthropicProviderSettings(base_url=server.base_url))
    assert len(models) == 131
    assert models[-1].id == "claude-big" and models[-1].context_window == 1_000_000
    assert models[0].display_name == "claude-000" and models[0].created == "2025-01-01"
    assert len(server.requests_to("/v1/models")) == 2
