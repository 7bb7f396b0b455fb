"""OpenAIProvider through the real openai SDK over HTTP to a loopback Chat Completions server."""

from __future__ import annotations

import shlex
import socket
import sys
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
    collect,
)
from llmctl.errors import (
    AuthenticationError,
    ConfigError,
    ContextLengthError,
    InputError,
    ModelNotFoundError,
    ProviderError,
)
from llmctl.provider_specs import OpenAIProviderSettings
from llmctl.providers.hosted import credentials
from llmctl.providers.hosted.credentials import NO_AUTH_PLACEHOLDER, resolve_api_key
from llmctl.providers.hosted.openai_provider import OpenAIProvider, list_remote_models
from llmctl.providers.registry import open_provider, resolve
from llmctl.services.generation import GenerationRun, RunStatus
from tests.wire.openai_server import (
    ContextTooLong,
    DropMidStream,
    Fault,
    OpenAIServer,
    Raw,
    Reply,
    Slow,
    StreamError,
)

KEY = "sk-test-0123456789abcdef"
REQUEST = GenerationRequest(
    (Message("system", "Be brief."), Message("user", "Capital of France?")),
    GenerationParams(temperature=0.3, top_p=0.8, max_tokens=42, seed=7),
)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIServer(api_key=KEY) as running:
        yield running
    assert not running.errors


def make(
    server: OpenAIServer | None, *, name: str = "openai", model: str = "gpt-4o-mini", **table: Any
) -> OpenAIProvider:
    table = {"timeout": 5, "max_retries": 0, **table}
    if server is not None:
        table.setdefault("base_url", server.base_url)
    if name != "openai":
        table["kind"] = "openai"
    settings = Settings.model_validate({"providers": {name: table}})
    provider = open_provider(resolve(f"{name}/{model}", settings))
    assert isinstance(provider, OpenAIProvider)
    return provider


def events(provider: OpenAIProvider, request: GenerationRequest = REQUEST) -> list[StreamEvent]:
    try:
        return list(provider.stream(request))
    finally:
        provider.close()


def run(provider: OpenAIProvider) -> tuple[GenerationRun, list[str], ProviderError | None]:
    """Stream through GenerationRun, as the CLI does; keep the error instead of raising it."""
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


# -- the happy path ------------------------------------------------------------------------------------------------


def test_streams_text_then_one_finished_with_provider_usage(server: OpenAIServer) -> None:
    server.add(Reply(text="Paris is the capital.", usage=(12, 5), cached_tokens=3))
    got = events(make(server))
    assert all(isinstance(e, TextDelta) for e in got[:-1]) and len(got) > 2
    assert "".join(e.text for e in got if isinstance(e, TextDelta)) == "Paris is the capital."
    assert got[-1] == Finished(Usage(12, 5, CountSource.PROVIDER, cached_input_tokens=3), FinishReason.STOP)


def test_sends_messages_options_usage_request_and_the_key(server: OpenAIServer) -> None:
    events(make(server))
    request = server.last_request
    assert request.path == "/v1/chat/completions"
    assert request.bearer_token == KEY
    body = request.json
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert (body["temperature"], body["top_p"], body["seed"], body["max_tokens"]) == (0.3, 0.8, 7, 42)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_unset_options_are_not_sent(server: OpenAIServer) -> None:
    events(make(server), GenerationRequest((Message("user", "Hi"),)))
    body = server.last_request.json
    assert not {"temperature", "top_p", "seed", "max_tokens", "max_completion_tokens"} & set(body)


def test_openai_itself_gets_max_completion_tokens() -> None:
    provider = make(None)  # no base_url: api.openai.com (nothing is sent in this test)
    body = provider.request_body(REQUEST)
    assert body["max_completion_tokens"] == 42 and "max_tokens" not in body


def test_finish_reason_length(server: OpenAIServer) -> None:
    server.add(Reply(finish_reason="length"))
    finished = events(make(server))[-1]
    assert isinstance(finished, Finished) and finished.finish_reason is FinishReason.LENGTH


def test_a_server_without_usage_gives_unknown_counts_not_zero(server: OpenAIServer) -> None:
    server.add(Reply(text="No counts here.", usage=None))
    completion = collect(make(server).stream(REQUEST))
    assert completion.text == "No counts here."
    assert completion.usage == Usage(None, None, CountSource.UNKNOWN)
    assert completion.usage.total_tokens is None


def test_a_refused_sampling_parameter_is_dropped_and_remembered(server: OpenAIServer) -> None:
    refusal = {
        "error": {
            "message": "Unsupported value: 'temperature' does not support 0.3 with this model. "
            "Only the default (1) value is supported.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        }
    }
    server.add(Fault(400, body=refusal))
    provider = make(server, model="o4-mini")
    first = collect(provider.stream(REQUEST))
    second = collect(provider.stream(REQUEST))
    provider.close()
    assert first.text == second.text == Reply().text
    sent = [r.json for r in server.requests]
    assert len(sent) == 3
    assert sent[0]["temperature"] == 0.3
    assert "temperature" not in sent[1] and "temperature" not in sent[2]
    assert sent[1]["top_p"] == 0.8


# -- API keys ------------------------------------------------------------------------------------------------------


def test_missing_key_names_the_variable_and_the_config_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(AuthenticationError) as info:
        make(None).prepare()
    text = str(info.value)
    assert "OPENAI_API_KEY is not set" in text
    assert "providers.openai.api_key_env" in text and "providers.openai.api_key_cmd" in text


def test_missing_custom_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # must not be used for a named provider's own variable
    with pytest.raises(AuthenticationError, match=r"providers\.work\.api_key_env names \$WORK_KEY, which is not set"):
        make(None, name="work", api_key_env="WORK_KEY").prepare()


def test_rejected_key_says_which_variable_it_came_from(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-987654321")
    with pytest.raises(AuthenticationError) as info:
        events(make(server))
    message = str(info.value)
    assert "rejected the API key from $OPENAI_API_KEY" in message
    assert "sk-wrong-key-987654321" not in message and "4321" not in message
    assert len(server.requests) == 1


def test_api_key_cmd_output_is_the_key(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    command = f"{shlex.quote(sys.executable)} -c \"print('{KEY}'); print('second line ignored')\""
    assert collect(make(server, api_key_cmd=command).stream(REQUEST)).text == Reply().text
    assert server.last_request.bearer_token == KEY


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            f"{shlex.quote(sys.executable)} -c \"import sys; sys.stderr.write('vault locked'); sys.exit(3)\"",
            "failed with exit status 3.",
        ),
        (f"{shlex.quote(sys.executable)} -c pass", "printed no key"),
        ("no-such-password-manager read key", "its program was not found"),
    ],
)
def test_api_key_cmd_failures_are_clear(command: str, expected: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        resolve_api_key("openai", OpenAIProviderSettings(api_key_cmd=command))
    text = str(info.value)
    assert "providers.openai.api_key_cmd" in text and expected in text
    # Neither the command line nor what it wrote to stderr is repeated: both can carry secrets.
    assert "vault locked" not in text and "no-such-password-manager" not in text and sys.executable not in text


def test_api_key_cmd_that_hangs_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "KEY_CMD_TIMEOUT_S", 0.2)
    command = f'{shlex.quote(sys.executable)} -c "import time; time.sleep(10)"'
    with pytest.raises(AuthenticationError, match=r"did not finish within 0.2 s"):
        resolve_api_key("openai", OpenAIProviderSettings(api_key_cmd=command))


def test_api_key_cmd_with_bad_quoting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a valid command line"):
        resolve_api_key("openai", OpenAIProviderSettings(api_key_cmd="pass 'unterminated"))


def test_key_value_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    key = resolve_api_key("openai", OpenAIProviderSettings())
    assert KEY not in repr(key) and key.value == KEY and key.env_var == "OPENAI_API_KEY"


def test_named_server_without_auth_gets_a_placeholder_never_the_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIServer(api_key=None, models=["meta-llama/Llama-3.1-8B-Instruct"]) as vllm:
        provider = make(vllm, name="my-vllm", model="meta-llama/Llama-3.1-8B-Instruct")
        assert collect(provider.stream(REQUEST)).text == Reply().text
        provider.close()
    request = vllm.last_request
    assert request.bearer_token == NO_AUTH_PLACEHOLDER
    assert request.json["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert request.json["max_tokens"] == 42


def test_a_keyless_server_that_wants_a_key_says_how_to_configure_one(server: OpenAIServer) -> None:
    with pytest.raises(AuthenticationError) as info:
        events(make(server, name="gateway"))
    assert "requires an API key, and none is configured for provider 'gateway'" in str(info.value)
    assert "providers.gateway.api_key_env" in str(info.value)


# -- faults --------------------------------------------------------------------------------------------------------


def test_rate_limit_then_success_is_retried_by_the_sdk(server: OpenAIServer) -> None:
    server.add(Fault(429))
    assert collect(make(server, max_retries=2).stream(REQUEST)).text == Reply().text
    assert len(server.requests) == 2


def test_rate_limit_after_retries(server: OpenAIServer) -> None:
    server.default = Fault(429)
    with pytest.raises(ProviderError, match=r"Rate limited by openai .*\(HTTP 429\) \(after 1 retry\)") as info:
        events(make(server, max_retries=1))
    assert "max_retries" in str(info.value.hint)
    assert len(server.requests) == 2


def test_quota_exhausted_is_not_called_a_rate_limit(server: OpenAIServer) -> None:
    server.add(Fault(429, code="insufficient_quota", message="You exceeded your current quota."))
    with pytest.raises(ProviderError, match="quota exhausted") as info:
        events(make(server))
    assert "billing" in str(info.value.hint)


def test_server_error_after_retries(server: OpenAIServer) -> None:
    server.default = Fault(500)
    with pytest.raises(ProviderError, match=r"had a server error \(HTTP 500\) \(after 2 retries\)"):
        events(make(server, max_retries=2))
    assert len(server.requests) == 3


def test_html_error_page_from_a_proxy(server: OpenAIServer) -> None:
    server.add(Raw(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"))
    with pytest.raises(ProviderError) as info:
        events(make(server))
    assert info.value.message.endswith("had a server error (HTTP 502): 502 Bad Gateway")


def test_dropped_stream_keeps_the_text_already_received(server: OpenAIServer) -> None:
    server.add(DropMidStream(after_chunks=2))
    generation, pieces, error = run(make(server))
    assert "".join(pieces) == "Paris is "
    assert error is not None and "broke off mid-answer" in error.message
    result = generation.result()
    assert result.status is RunStatus.ERROR
    assert result.completion.text == "Paris is "
    assert result.completion.finish_reason is FinishReason.ERROR
    assert result.completion.usage.output_tokens is None  # unknown, not 0


def test_error_event_inside_the_stream(server: OpenAIServer) -> None:
    server.add(StreamError(after_chunks=1, message="boom"))
    _, pieces, error = run(make(server))
    assert "".join(pieces) == "Paris "
    assert error is not None and error.message.endswith("reported an error mid-answer: boom")


def test_timeout_before_the_answer(server: OpenAIServer) -> None:
    server.add(Slow(5.0))
    with pytest.raises(ProviderError, match=r"did not answer within 0.3 s\.") as info:
        events(make(server, timeout=0.3))
    assert "providers.openai.timeout" in str(info.value.hint)


def test_timeout_mid_answer_keeps_the_text(server: OpenAIServer) -> None:
    server.add(Reply(chunk_delay_s=5.0))
    generation, pieces, error = run(make(server, timeout=0.3))
    assert pieces == ["Paris "]
    assert error is not None and "did not answer within 0.3 s mid-answer" in error.message
    assert generation.result().completion.text == "Paris "


def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = make(None, name="local", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(ProviderError) as info:
        events(provider)
    assert (
        info.value.message
        == f"Cannot connect to local (http://127.0.0.1:{port}/v1) (connection refused) (after 1 retry)."
    )
    assert "providers.local.base_url" in str(info.value.hint)


def test_context_length_exceeded_has_both_numbers(server: OpenAIServer) -> None:
    server.add(ContextTooLong(prompt_tokens=129_024))
    with pytest.raises(ContextLengthError) as info:
        events(make(server))
    assert (info.value.prompt_tokens, info.value.context_window) == (129_024, 128_000)
    assert info.value.exit_code == 2


def test_vllm_context_message_with_room_for_the_input_blames_max_tokens(server: OpenAIServer) -> None:
    message = (
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
        "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion."
    )
    server.add(Fault(400, message=message))
    with pytest.raises(InputError, match=r"input \(4,000 tokens\) plus the tokens to generate exceed .* 4,096") as info:
        events(make(server))
    assert "--max-tokens" in str(info.value.hint)


def test_unknown_model(server: OpenAIServer) -> None:
    server.add(Fault(404))
    with pytest.raises(ModelNotFoundError, match="has no model 'openai/gpt-9'") as info:
        events(make(server, model="gpt-9"))
    assert "llmctl models list --remote openai" in str(info.value.hint)


def test_wrong_base_url_path_is_not_called_an_unknown_model(server: OpenAIServer) -> None:
    provider = make(server, name="oops", base_url=server.root_url, api_key_env="OPENAI_API_KEY")  # forgot the /v1
    with pytest.raises(ProviderError, match="answered 404 Not Found") as info:
        events(provider)
    assert not isinstance(info.value, ModelNotFoundError)
    assert "/v1" in str(info.value.hint)


def test_other_bad_requests_quote_the_server(server: OpenAIServer) -> None:
    server.add(Fault(400, message="Invalid 'messages[1].content': string too long."))
    with pytest.raises(InputError, match=r"rejected the request \(HTTP 400\): Invalid 'messages\[1\]\.content'"):
        events(make(server))


# -- model listing -------------------------------------------------------------------------------------------------


def test_lists_remote_models_with_context_windows_when_the_server_says(server: OpenAIServer) -> None:
    server.models = ["gpt-4o-mini", {"id": "qwen", "owned_by": "vllm", "max_model_len": 32768}]
    settings = OpenAIProviderSettings(base_url=server.base_url)
    models = list_remote_models("openai", settings)
    assert [(m.id, m.owned_by, m.context_window) for m in models] == [
        ("gpt-4o-mini", "openai", None),
        ("qwen", "vllm", 32768),
    ]
    assert models[0].created is not None and models[0].provider == "openai"
    assert server.last_request.path == "/v1/models" and server.last_request.bearer_token == KEY


def test_a_key_echoed_by_the_server_is_masked(server: OpenAIServer) -> None:
    server.add(Fault(400, message=f"Header value {KEY} is malformed."))
    with pytest.raises(InputError) as info:
        events(make(server))
    assert KEY not in str(info.value)
    assert "Header value **** is malformed." in info.value.message
