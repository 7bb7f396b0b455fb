"""The loopback wire servers, driven by the official OpenAI and Anthropic SDKs.

These check that the servers speak each vendor's wire format well enough for
the real SDK clients (streaming, usage, errors, retries, dropped streams,
timeouts) and that they record what the SDKs send.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from ._http import Headers, estimate_tokens, split_words, text_tokens
from .anthropic_server import AnthropicServer
from .openai_server import (
    ContextTooLong,
    DropMidStream,
    Fault,
    OpenAIServer,
    Raw,
    Reply,
    Slow,
    StreamError,
)

OPENAI_KEY = "sk-test"
ANTHROPIC_KEY = "sk-ant-test"
OAI_USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]
ANT_USER: list[MessageParam] = [{"role": "user", "content": "What is the capital of France?"}]


# --------------------------------------------------------------------------- #
# Fixtures
# --------------------------------------------------------------------------- #


def _wire_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wire-") and t.is_alive()]


@pytest.fixture(autouse=True)
def _no_leaked_server_threads() -> Iterator[None]:
    before = set(_wire_threads())
    yield
    leaked = [t for t in _wire_threads() if t not in before]
    assert not leaked, f"server threads left running: {leaked}"


@pytest.fixture
def oai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer(api_key=OPENAI_KEY) as server:
        yield server
    assert not server.errors
    assert not server.leaked_threads


@pytest.fixture
def ant_server() -> Iterator[AnthropicServer]:
    with AnthropicServer(api_key=ANTHROPIC_KEY) as server:
        yield server
    assert not server.errors
    assert not server.leaked_threads


def _oai(server: OpenAIServer, *, max_retries: int = 2, timeout: float = 3.0, key: str = OPENAI_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=max_retries, timeout=timeout)


def _ant(
    server: AnthropicServer, *, max_retries: int = 2, timeout: float = 3.0, key: str = ANTHROPIC_KEY
) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=max_retries, timeout=timeout)


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """A bare stdlib POST (no SDK), for header cases the SDKs cannot produce."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# --------------------------------------------------------------------------- #
# Plumbing
# --------------------------------------------------------------------------- #


def test_servers_listen_on_loopback_only_and_stop_cleanly() -> None:
    for server in (OpenAIServer(), AnthropicServer()):
        with server:
            assert server.running
            assert server.base_url.startswith(f"http://127.0.0.1:{server.port}")
            assert server._httpd is not None
            assert server._httpd.server_address[0] == "127.0.0.1"
        assert not server.running
        assert not server.leaked_threads
        server.stop()  # idempotent
    OpenAIServer().start().stop()  # start/stop without a context manager


def test_stop_does_not_wait_for_a_hanging_request() -> None:
    server = OpenAIServer(script=[Slow(math.inf)]).start()
    client = _oai(server, max_retries=0, timeout=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)
        except BaseException as err:
            errors.append(err)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 2
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.requests, "the request never arrived"
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    caller.join(3)
    assert not caller.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)
    assert not server.leaked_threads
    client.close()


def test_headers_are_case_insensitive() -> None:
    headers = Headers([("X-Api-Key", "a"), ("Accept", "x"), ("accept", "y")])
    assert headers["x-api-key"] == headers["X-API-KEY"] == "a"
    assert "X-Api-Key" in headers
    assert headers["Accept"] == "x, y"
    assert headers.get_all("ACCEPT") == ["x", "y"]


def test_helpers_are_deterministic() -> None:
    assert "".join(split_words("Paris is  the capital.")) == "Paris is  the capital."
    assert split_words("Paris is the capital.") == ["Paris ", "is ", "the ", "capital."]
    assert text_tokens("") == 1 and text_tokens("abcdefgh") == 2
    body = {"system": "Be brief.", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]}
    assert estimate_tokens(body) == text_tokens("Be brief.Hello")


def test_path_scoped_plan_waits_for_its_path(oai_server: OpenAIServer) -> None:
    oai_server.add(Fault(500, should_retry=False), path="/v1/chat/completions")
    with _oai(oai_server) as client:
        assert [m.id for m in client.models.list()]  # not hit by the scripted fault
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)
    assert [r.path for r in oai_server.requests] == ["/v1/models", "/v1/chat/completions"]
    assert oai_server.pending == []


# --------------------------------------------------------------------------- #
# OpenAI
# --------------------------------------------------------------------------- #


def test_openai_completion_and_recorded_request(oai_server: OpenAIServer) -> None:
    oai_server.add(Reply(text="Paris is the capital.", usage=(11, 7), cached_tokens=3))
    with _oai(oai_server) as client:
        completion = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"},
            ],
            temperature=0.2,
            max_tokens=50,
        )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Paris is the capital."
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        11,
        7,
        18,
    )
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 3

    request = oai_server.last_request
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.bearer_token == OPENAI_KEY
    body = request.json
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 50
    assert "stream" not in body


def test_openai_stream_assembles_text_and_usage_chunk(oai_server: OpenAIServer) -> None:
    oai_server.add(Reply(chunks=["Par", "is is", " the capital."], usage=(12, 5), cached_tokens=4))
    with _oai(oai_server) as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=OAI_USER,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris is the capital."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (12, 5, 17)
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 4
    body = oai_server.last_request.json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_openai_stream_without_include_usage_has_no_usage_chunk(oai_server: OpenAIServer) -> None:
    with _oai(oai_server) as client:
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER, stream=True))
    assert all(c.usage is None and c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == Reply().text


def test_openai_stream_plan_without_usage(oai_server: OpenAIServer) -> None:
    oai_server.add(Reply(text="No usage here.", usage=None))
    with _oai(oai_server) as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=OAI_USER,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert all(c.usage is None and c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "No usage here."


def test_openai_async_stream(oai_server: OpenAIServer) -> None:
    async def run() -> str:
        async with openai.AsyncOpenAI(base_url=oai_server.base_url, api_key=OPENAI_KEY, timeout=3) as client:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(run()) == Reply().text


def test_openai_wrong_key_is_authentication_error(oai_server: OpenAIServer) -> None:
    with _oai(oai_server, key="sk-wrong-key-1234") as client, pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert "Incorrect API key provided: sk-" in info.value.message
    assert "1234" in info.value.message and "wrong-key" not in info.value.message
    assert len(oai_server.requests) == 1  # 401 is not retried


def test_openai_429_then_success_is_retried(oai_server: OpenAIServer) -> None:
    oai_server.add(Fault(429))
    started = time.monotonic()
    with _oai(oai_server, max_retries=2) as client:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)
    assert time.monotonic() - started < 1.0  # retry-after-ms honoured, no 0.5 s backoff
    assert completion.choices[0].message.content == Reply().text
    assert len(oai_server.requests) == 2
    assert [r.headers["x-stainless-retry-count"] for r in oai_server.requests] == ["0", "1"]


def test_openai_429_error_shape_without_retries(oai_server: OpenAIServer) -> None:
    oai_server.add(Fault(429))
    with _oai(oai_server, max_retries=0) as client, pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["retry-after-ms"] == "10"
    assert info.value.response.headers["x-request-id"].startswith("req_")


def test_openai_500_raises_after_retries(oai_server: OpenAIServer) -> None:
    oai_server.default = Fault(500)
    with _oai(oai_server, max_retries=2) as client, pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)
    assert info.value.status_code == 500
    assert info.value.type == "server_error"
    assert len(oai_server.requests) == 3


def test_openai_dropped_stream_raises_after_partial_text(oai_server: OpenAIServer) -> None:
    oai_server.add(DropMidStream(after_chunks=2))
    received: list[str] = []
    with _oai(oai_server) as client:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER, stream=True)
        with pytest.raises(openai.APIConnectionError) as info:
            for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Paris is "
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
    assert len(oai_server.requests) == 1  # a broken stream is not retried


def test_openai_dropped_non_streaming_body_is_connection_error(oai_server: OpenAIServer) -> None:
    oai_server.add(DropMidStream())
    with _oai(oai_server, max_retries=0) as client, pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)


def test_openai_in_stream_error_event(oai_server: OpenAIServer) -> None:
    oai_server.add(StreamError(after_chunks=1, message="boom"))
    received: list[str] = []
    with _oai(oai_server) as client, pytest.raises(openai.APIError, match="boom"):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Paris "


def test_openai_slow_response_times_out(oai_server: OpenAIServer) -> None:
    oai_server.add(Slow(3.0))
    started = time.monotonic()
    with _oai(oai_server, max_retries=0, timeout=0.3) as client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)
    assert time.monotonic() - started < 1.5


def test_openai_timeout_is_retried(oai_server: OpenAIServer) -> None:
    oai_server.add(Slow(3.0))
    with _oai(oai_server, max_retries=1, timeout=0.3) as client:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)
    assert completion.choices[0].message.content == Reply().text
    assert len(oai_server.requests) == 2


def test_openai_context_too_long(oai_server: OpenAIServer) -> None:
    oai_server.add(ContextTooLong())
    with _oai(oai_server) as client, pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER, stream=True)
    assert info.value.code == "context_length_exceeded"
    assert info.value.param == "messages"
    assert "maximum context length is 128000 tokens" in info.value.message


def test_openai_rejects_out_of_range_temperature(oai_server: OpenAIServer) -> None:
    with _oai(oai_server) as client, pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER, temperature=3)
    assert info.value.param == "temperature"


def test_openai_raw_html_gateway_error(oai_server: OpenAIServer) -> None:
    oai_server.add(Raw(502, "<html><body>502 Bad Gateway</body></html>", "text/html"))
    with _oai(oai_server, max_retries=0) as client, pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=OAI_USER)
    assert info.value.status_code == 502


def test_openai_models_listing() -> None:
    with OpenAIServer(models=["local-llama", {"id": "qwen", "owned_by": "me"}]) as server, _oai(server) as client:
        models = list(client.models.list())
        single = client.models.retrieve("qwen")
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("nope")
    assert [(m.id, m.object, m.owned_by) for m in models] == [
        ("local-llama", "model", "openai"),
        ("qwen", "model", "me"),
    ]
    assert single.id == "qwen"
    assert server.requests[0].path == "/v1/models"


# --------------------------------------------------------------------------- #
# Anthropic
# --------------------------------------------------------------------------- #


def test_anthropic_message_and_recorded_request(ant_server: AnthropicServer) -> None:
    ant_server.add(Reply(text="Paris.", usage=(21, 3), cached_tokens=5, cache_creation_tokens=2))
    with _ant(ant_server) as client:
        message = client.messages.create(
            model="claude-sonnet-4-6",
            system="Be brief.",
            messages=[{"role": "user", "content": "Capital of France?"}],
            max_tokens=64,
            # anthropic 2.13's messages.create() has no temperature/top_p/top_k
            # keyword any more; a caller that wants one must send it in the body.
            extra_body={"temperature": 0.3},
        )
    assert message.type == "message" and message.role == "assistant"
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "Paris.")]
    assert message.stop_reason == "end_turn"
    assert message.model == "claude-sonnet-4-6"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (21, 3)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (5, 2)

    request = ant_server.last_request
    assert (request.method, request.path) == ("POST", "/v1/messages")
    # anthropic 2.x sends api_key as a Bearer token (older SDKs used x-api-key).
    assert request.bearer_token == ANTHROPIC_KEY or request.headers.get("x-api-key") == ANTHROPIC_KEY
    assert "anthropic-version" in request.headers
    body = request.json
    assert body["model"] == "claude-sonnet-4-6"
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert all(m["role"] != "system" for m in body["messages"])
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 64


def test_anthropic_stream_events_and_usage(ant_server: AnthropicServer) -> None:
    ant_server.add(Reply(chunks=["Par", "is is", " the capital."], usage=(30, 9)))
    with _ant(ant_server) as client:
        events = list(client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER, stream=True))
    kinds = [e.type for e in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the SDK drops the "ping" event
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and delta.type == "message_delta"
    assert (start.message.usage.input_tokens, start.message.usage.output_tokens) == (30, 1)
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 9
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "Paris is the capital."
    assert ant_server.last_request.json["stream"] is True


def test_anthropic_stream_helper_assembles_message(ant_server: AnthropicServer) -> None:
    ant_server.add(Reply(text="Paris is the capital.", usage=(30, 9), finish_reason="max_tokens"))
    with (
        _ant(ant_server) as client,
        client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER) as stream,
    ):
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 4 and "".join(pieces) == "Paris is the capital."
    assert final.stop_reason == "max_tokens"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 9)


def test_anthropic_stream_without_usage(ant_server: AnthropicServer) -> None:
    ant_server.add(Reply(text="No usage.", usage=None))
    with _ant(ant_server) as client:
        events = list(client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER, stream=True))
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and delta.type == "message_delta"
    assert getattr(start.message, "usage", None) is None
    assert getattr(delta, "usage", None) is None


def test_anthropic_async_stream(ant_server: AnthropicServer) -> None:
    async def run() -> str:
        async with (
            anthropic.AsyncAnthropic(base_url=ant_server.base_url, api_key=ANTHROPIC_KEY, timeout=3) as client,
            client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER) as stream,
        ):
            return "".join([t async for t in stream.text_stream])

    assert asyncio.run(run()) == Reply().text


def test_anthropic_wrong_key_is_authentication_error(ant_server: AnthropicServer) -> None:
    with _ant(ant_server, key="sk-ant-wrong") as client, pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER)
    assert info.value.status_code == 401
    assert info.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        "request_id": info.value.response.headers["request-id"],
    }
    assert len(ant_server.requests) == 1


def test_anthropic_x_api_key_header_and_missing_key(ant_server: AnthropicServer) -> None:
    url = ant_server.base_url + "/v1/messages"
    body = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": ANT_USER}
    status, reply = _post(url, body, {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"})
    assert status == 200 and reply["type"] == "message"
    status, reply = _post(url, body, {"anthropic-version": "2023-06-01"})
    assert status == 401 and reply["error"] == {
        "type": "authentication_error",
        "message": "x-api-key header is required",
    }
    status, reply = _post(url, body, {"x-api-key": ANTHROPIC_KEY})
    assert status == 400 and reply["error"]["message"] == "anthropic-version: header is required"


def test_anthropic_rejects_system_role_message(ant_server: AnthropicServer) -> None:
    with _ant(ant_server) as client, pytest.raises(anthropic.BadRequestError, match='Unexpected role "system"'):
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=64,
            messages=[{"role": "system", "content": "Be brief."}, *ANT_USER],
        )
    with AnthropicServer(allow_system_messages=True) as lenient, _ant(lenient) as client:
        message = client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=64,
            messages=[{"role": "system", "content": "Be brief."}, *ANT_USER],
        )
    assert message.content[0].type == "text"


def test_anthropic_429_then_success_is_retried(ant_server: AnthropicServer) -> None:
    ant_server.add(Fault(429))
    started = time.monotonic()
    with _ant(ant_server, max_retries=2) as client:
        message = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER)
    assert time.monotonic() - started < 1.0
    assert message.content[0].type == "text"
    assert len(ant_server.requests) == 2


def test_anthropic_overloaded_then_success_while_streaming(ant_server: AnthropicServer) -> None:
    ant_server.add(Fault(529))
    with (
        _ant(ant_server, max_retries=1) as client,
        client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER) as stream,
    ):
        assert stream.get_final_text() == Reply().text
    assert len(ant_server.requests) == 2


def test_anthropic_500_raises_after_retries(ant_server: AnthropicServer) -> None:
    ant_server.default = Fault(500)
    with _ant(ant_server, max_retries=2) as client, pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER)
    assert info.value.status_code == 500
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == "api_error"
    assert len(ant_server.requests) == 3


def test_anthropic_dropped_stream_raises_after_partial_text(ant_server: AnthropicServer) -> None:
    ant_server.add(DropMidStream(after_chunks=2))
    received: list[str] = []
    # anthropic 2.13 lets the transport error of a broken stream escape unwrapped
    # (httpx2.RemoteProtocolError); openai wraps it in APIConnectionError.
    with (
        _ant(ant_server) as client,
        pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)),
        client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER) as stream,
    ):
        for piece in stream.text_stream:
            received.append(piece)
    assert "".join(received) == "Paris is "
    assert len(ant_server.requests) == 1


def test_anthropic_in_stream_error_event(ant_server: AnthropicServer) -> None:
    ant_server.add(StreamError(after_chunks=1))
    received: list[str] = []
    with (
        _ant(ant_server) as client,
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER) as stream,
    ):
        for piece in stream.text_stream:
            received.append(piece)
    assert "".join(received) == "Paris "
    assert info.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_anthropic_slow_response_times_out(ant_server: AnthropicServer) -> None:
    ant_server.add(Slow(3.0))
    started = time.monotonic()
    with _ant(ant_server, max_retries=0, timeout=0.3) as client, pytest.raises(anthropic.APITimeoutError):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER)
    assert time.monotonic() - started < 1.5


def test_anthropic_context_too_long(ant_server: AnthropicServer) -> None:
    ant_server.add(ContextTooLong(prompt_tokens=208_310))
    with _ant(ant_server) as client, pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=ANT_USER)
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 208310 tokens > 200000 maximum",
    }


def test_anthropic_models_listing_paginates() -> None:
    with AnthropicServer(models=["claude-a-20250101", "claude-b", "claude-c"]) as server, _ant(server) as client:
        models = list(client.models.list(limit=2))
        single = client.models.retrieve("claude-b")
    assert [(m.id, m.type) for m in models] == [
        ("claude-a-20250101", "model"),
        ("claude-b", "model"),
        ("claude-c", "model"),
    ]
    assert models[0].display_name == "claude-a-20250101"
    assert models[0].created_at.year == 2025
    assert single.id == "claude-b"
    assert [r.query.get("after_id") for r in server.requests_to("/v1/models")] == [None, ["claude-b"]]


def test_anthropic_count_tokens(ant_server: AnthropicServer) -> None:
    messages: list[MessageParam] = [{"role": "user", "content": "Hello there, how are you?"}]
    with _ant(ant_server) as client:
        counted = client.messages.count_tokens(model="claude-sonnet-4-6", system="Be brief.", messages=messages)
        ant_server.count_tokens = 4242
        fixed = client.messages.count_tokens(model="claude-sonnet-4-6", messages=messages)
    assert counted.input_tokens == text_tokens("Be brief.Hello there, how are you?")
    assert fixed.input_tokens == 4242
    assert ant_server.requests[0].path == "/v1/messages/count_tokens"
    assert ant_server.requests[0].json["system"] == "Be brief."
