"""Broken hosted responses through the real SDKs over HTTP: each is one clear error, never an empty success.

Table-driven: every case is a response a real server (or a proxy in front of one) has been seen to send,
for both wire formats. The text received before the fault is kept, the run is an error, and the counts
are the provider's only where the provider stated them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from llmctl.config import Settings
from llmctl.domain import UNKNOWN_USAGE, CountSource, GenerationParams, GenerationRequest, Message, Usage
from llmctl.errors import InputError, ProviderError
from llmctl.providers.base import Provider
from llmctl.providers.registry import open_provider, resolve
from llmctl.services.generation import GenerationRun, RunStatus
from tests.wire import AnthropicServer, DropMidStream, KeepAlive, LoopbackServer, OpenAIServer, Plan, Raw, Reply, Slow

SSE = "text/event-stream"
REQUEST = GenerationRequest((Message("user", "Capital of France?"),), GenerationParams(max_tokens=20))


def sse(*events: Any) -> str:
    """An SSE body: dicts are JSON events, (name, data) pairs named events, strings sent as they are."""
    out = []
    for event in events:
        if isinstance(event, tuple):
            name, data = event
            out.append(f"event: {name}\ndata: {data if isinstance(data, str) else json.dumps(data)}\n\n")
        else:
            out.append(f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n")
    return "".join(out)


def oai_chunk(delta: Any = None, finish: Any = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": {} if delta is None else delta, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice], **extra}


def ant_start(input_tokens: Any = 25) -> tuple[str, dict[str, Any]]:
    usage = {"input_tokens": input_tokens, "output_tokens": 1}
    message = {"id": "m1", "type": "message", "role": "assistant", "model": "c", "content": [], "usage": usage}
    return "message_start", {"type": "message_start", "message": message}


def ant_text(text: Any) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }


def ant_stop(stop_reason: Any = "end_turn", usage: Any = None) -> tuple[str, dict[str, Any]]:
    event: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop_reason}}
    if usage is not None:
        event["usage"] = usage
    return "message_delta", event


@dataclass(frozen=True)
class Case:
    vendor: str  # openai | anthropic
    plan: Plan
    says: str  # in the error message
    text: str = ""  # kept from before the fault
    usage: Usage = UNKNOWN_USAGE


HTML = "<html><head><title>Gateway</title></head><body>Sign in to continue</body></html>"

CASES = {
    # An HTML page or an empty body with status 200 (a captive portal, a misrouted proxy).
    "oai-html-200": Case("openai", Raw(200, HTML, "text/html"), "it sent text/html, not text/event-stream"),
    "oai-empty-200": Case("openai", Raw(200, b"", "application/json"), "without any answer text or finish reason"),
    "ant-html-200": Case("anthropic", Raw(200, HTML, "text/html"), "it sent text/html, not text/event-stream"),
    "ant-empty-200": Case("anthropic", Raw(200, b"", SSE), "without any answer text or finish reason"),
    # llama.cpp's server answers an over-long prompt with a stream that has no text and no finish reason.
    "oai-no-text-no-finish": Case(
        "openai",
        Raw(200, sse(oai_chunk({"role": "assistant", "content": ""}), "[DONE]"), SSE),
        "without any answer text or finish reason.",
    ),
    "ant-no-text-no-stop": Case(
        "anthropic",
        Raw(200, sse(ant_start(), ("message_stop", {"type": "message_stop"})), SSE),
        "without any answer text or finish reason.",
        usage=Usage(25, None, CountSource.PROVIDER),
    ),
    # An event that is not JSON, after some text.
    "oai-invalid-json": Case(
        "openai",
        Raw(200, sse(oai_chunk({"content": "Paris "}), "{not json", "[DONE]"), SSE),
        "data that is not valid JSON",
        text="Paris ",
    ),
    "ant-invalid-json": Case(
        "anthropic",
        Raw(200, sse(ant_start(), ant_text("Paris "), ("content_block_delta", "{not json")), SSE),
        "data that is not valid JSON",
        text="Paris ",
        usage=Usage(25, None, CountSource.PROVIDER),
    ),
    # Fields of the wrong type.
    "oai-content-number": Case(
        "openai", Raw(200, sse(oai_chunk({"content": 5}), "[DONE]"), SSE), "choices.0.delta.content"
    ),
    "oai-choices-string": Case("openai", Raw(200, sse({**oai_chunk(), "choices": "oops"}, "[DONE]"), SSE), "choices"),
    "oai-chunk-array": Case("openai", Raw(200, sse([1, 2], "[DONE]"), SSE), "a stream chunk"),
    "oai-finish-number": Case(
        "openai",
        Raw(200, sse(oai_chunk({"content": "Paris"}), oai_chunk(finish=3), "[DONE]"), SSE),
        "finish_reason",
        text="Paris",
    ),
    "oai-negative-usage": Case(
        "openai",
        Raw(
            200,
            sse(
                oai_chunk({"content": "Paris"}, "stop"),
                {**oai_chunk(), "choices": [], "usage": {"prompt_tokens": -4, "completion_tokens": 1}},
                "[DONE]",
            ),
            SSE,
        ),
        "usage.prompt_tokens",
        text="Paris",
    ),
    "ant-text-number": Case(
        "anthropic",
        Raw(200, sse(ant_start(), ant_text(7)), SSE),
        "delta.text",
        usage=Usage(25, None, CountSource.PROVIDER),
    ),
    "ant-text-missing": Case(
        "anthropic",
        Raw(
            200,
            sse(ant_start(), ("content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta"}})),
            SSE,
        ),
        "text_delta without text",
        usage=Usage(25, None, CountSource.PROVIDER),
    ),
    "ant-stop-number": Case(
        "anthropic",
        Raw(200, sse(ant_start(), ant_text("Paris"), ant_stop(9)), SSE),
        "delta.stop_reason",
        text="Paris",
        usage=Usage(25, None, CountSource.PROVIDER),
    ),
    "ant-cut-short-cleanly": Case(
        "anthropic",
        Raw(200, sse(ant_start(), ant_text("Paris is")), SSE),
        "ended the stream before finishing the answer (no message_delta event)",
        text="Paris is",
        usage=Usage(25, None, CountSource.PROVIDER),
    ),
    "ant-usage-text": Case(
        "anthropic",
        Raw(200, sse(ant_start("many"), ant_text("Paris")), SSE),
        "message.usage.input_tokens",
    ),
}


def provider_for(server: LoopbackServer, vendor: str, **table: Any) -> Provider:
    model = "gpt-4o-mini" if vendor == "openai" else "claude-sonnet-4-6"
    table = {"base_url": server.base_url, "timeout": 5, "max_retries": 0, **table}
    return open_provider(resolve(f"{vendor}/{model}", Settings.model_validate({"providers": {vendor: table}})))


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, LoopbackServer]]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-faults")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-faults")
    with OpenAIServer() as oai, AnthropicServer() as ant:
        yield {"openai": oai, "anthropic": ant}
        assert not oai.errors and not ant.errors


def run_to_end(
    provider: Provider, request: GenerationRequest = REQUEST
) -> tuple[GenerationRun, str, ProviderError | None]:
    run = GenerationRun(provider, request)
    text = ""
    try:
        for piece in run.deltas():
            text += piece
    except ProviderError as exc:
        return run, text, exc
    finally:
        provider.close()
    return run, text, None


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_malformed_response_is_one_clear_error_and_keeps_the_text(
    servers: dict[str, LoopbackServer], case: Case
) -> None:
    server = servers[case.vendor]
    server.add(case.plan)
    run, text, error = run_to_end(provider_for(server, case.vendor))
    assert error is not None, "a malformed response passed as a success"
    assert case.says in error.message
    assert "\n" not in error.message and error.hint
    assert text == case.text
    result = run.result()
    assert result.status is RunStatus.ERROR and result.completion.text == case.text
    assert result.completion.usage == case.usage


TOLERATED = {
    # What real compatible servers send that is unusual but well-formed: still a success.
    "no-index": sse({"choices": [{"delta": {"content": "Paris"}, "finish_reason": "stop"}]}, "[DONE]"),
    "usage-chunk-without-choices": sse(
        oai_chunk({"content": "Paris"}, "stop"), {"usage": {"prompt_tokens": 9, "completion_tokens": 1}}, "[DONE]"
    ),
    "extra-fields": sse({**oai_chunk({"content": "Paris", "reasoning": None}, "stop"), "timings": {"n": 1}}, "[DONE]"),
    "unknown-finish-reason": sse(oai_chunk({"content": "Paris"}, "eos_token"), "[DONE]"),
    "text-but-no-finish": sse(oai_chunk({"content": "Paris"}), "[DONE]"),
}


@pytest.mark.parametrize("body", TOLERATED.values(), ids=TOLERATED.keys())
def test_unusual_but_well_formed_chunks_still_succeed(servers: dict[str, LoopbackServer], body: str) -> None:
    servers["openai"].add(Raw(200, body, SSE))
    run, text, error = run_to_end(provider_for(servers["openai"], "openai"))
    assert error is None and text == "Paris"
    assert run.result().status is RunStatus.OK


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
@pytest.mark.parametrize("style", ["comment", "event"])
def test_keep_alives_without_text_hit_the_idle_timeout(
    servers: dict[str, LoopbackServer], vendor: str, style: str
) -> None:
    server = servers[vendor]
    server.add(KeepAlive(after_chunks=2, interval_s=0.05, style=style))  # type: ignore[arg-type]
    run, text, error = run_to_end(provider_for(server, vendor, timeout=5, idle_timeout=0.4))
    assert error is not None
    assert "sent no answer text for 0.4 s" in error.message and f"providers.{vendor}.idle_timeout" in (error.hint or "")
    assert text == "Paris is "
    assert run.result().timing.total_s < 3  # not the 5 s read timeout, and far from the 20 s of pings


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_idle_timeout_defaults_to_timeout(servers: dict[str, LoopbackServer], vendor: str) -> None:
    server = servers[vendor]
    server.add(KeepAlive(after_chunks=1, interval_s=0.05))
    _, text, error = run_to_end(provider_for(server, vendor, timeout=0.5))
    assert error is not None and "sent no answer text for 0.5 s" in error.message
    assert text == "Paris "


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_total_timeout_stops_an_answer_that_keeps_coming(servers: dict[str, LoopbackServer], vendor: str) -> None:
    server = servers[vendor]
    server.add(Reply(text="word " * 200, chunk_delay_s=0.02))  # 4 s of text, never idle
    run, text, error = run_to_end(provider_for(server, vendor, total_timeout=0.5, idle_timeout=1))
    assert error is not None
    assert "did not finish the answer within 0.5 s" in error.message
    assert f"providers.{vendor}.total_timeout" in error.message
    assert text.startswith("word ") and len(text) < len("word " * 200)
    assert run.result().status is RunStatus.ERROR


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_total_timeout_also_bounds_a_whole_answer(servers: dict[str, LoopbackServer], vendor: str) -> None:
    server = servers[vendor]
    server.add(Slow(1.0, Reply(text="Paris.")))
    request = GenerationRequest(REQUEST.messages, REQUEST.params, stream=False)
    run, text, error = run_to_end(provider_for(server, vendor, total_timeout=0.3, max_retries=2), request)
    assert error is not None and "did not finish the answer within 0.3 s" in error.message
    assert len(server.requests) == 1  # past the deadline: no retry
    assert text == "" and run.result().status is RunStatus.ERROR


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_slow_but_steady_text_is_not_idle(servers: dict[str, LoopbackServer], vendor: str) -> None:
    server = servers[vendor]
    server.add(Reply(text="one two three four five six", chunk_delay_s=0.15))  # 0.75 s in all, 0.15 s gaps
    _, text, error = run_to_end(provider_for(server, vendor, idle_timeout=1.0))
    assert error is None and text == "one two three four five six"


# -- counts stay honest ---------------------------------------------------------------------------------------------


def test_anthropic_placeholder_input_zero_is_not_a_count(servers: dict[str, LoopbackServer]) -> None:
    """LiteLLM's Anthropic wire: message_start says input_tokens 0; the real count comes in message_delta."""
    server = servers["anthropic"]
    body = sse(
        ant_start(input_tokens=0),
        ant_text("Paris."),
        ant_stop("end_turn", {"input_tokens": 31, "output_tokens": 2}),
        ("message_stop", {"type": "message_stop"}),
    )
    server.add(Raw(200, body, SSE))
    run, text, error = run_to_end(provider_for(server, "anthropic"))
    assert error is None and text == "Paris."
    assert run.result().completion.usage == Usage(31, 2, CountSource.PROVIDER)


def test_anthropic_broken_stream_after_placeholder_records_no_input_count(servers: dict[str, LoopbackServer]) -> None:
    server = servers["anthropic"]
    server.add(Raw(200, sse(ant_start(input_tokens=0), ant_text("Par")), SSE))  # ends: no message_delta
    run, text, error = run_to_end(provider_for(server, "anthropic"))
    assert text == "Par" and error is not None and "before finishing the answer" in error.message
    assert run.result().completion.usage == UNKNOWN_USAGE  # not "0 input tokens, from the provider"


def test_anthropic_dropped_stream_keeps_a_real_input_count(servers: dict[str, LoopbackServer]) -> None:
    server = servers["anthropic"]
    server.add(DropMidStream(after_chunks=2, reply=Reply(usage=(25, 9))))
    run, text, error = run_to_end(provider_for(server, "anthropic"))
    assert error is not None and text == "Paris is "
    assert run.result().completion.usage == Usage(25, None, CountSource.PROVIDER, cached_input_tokens=0)


def test_openai_zero_prompt_tokens_is_unknown(servers: dict[str, LoopbackServer]) -> None:
    server = servers["openai"]
    server.add(Reply(text="Paris.", usage=(0, 2)))
    run, _, error = run_to_end(provider_for(server, "openai"))
    assert error is None
    assert run.result().completion.usage == Usage(None, 2, CountSource.PROVIDER, cached_input_tokens=0)


# -- a key in a server's message ---------------------------------------------------------------------------------------

SECRET = "sk-live-ABCDEFGHIJKLMNOPQRSTUV"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"bad key {SECRET}.", "bad key ****."),
        (f"bad key {SECRET[:12]}…", "bad key ****…"),  # a server that echoes the key cut short
        (f"key ending {SECRET[-9:]}", "key ending ****"),
        (f"{SECRET}{SECRET}", "********"),
        (
            f"hint: {SECRET[:7]}*** (7 characters are not the key)",
            f"hint: {SECRET[:7]}*** (7 characters are not the key)",
        ),
        ("nothing secret here", "nothing secret here"),
        (f"rate {SECRET.upper()}", "rate ****"),  # echoed in another case: still the key
        (f"rate {SECRET[3:15].swapcase()} x", "rate **** x"),
    ],
)
def test_every_eight_character_run_of_the_key_is_masked(text: str, expected: str) -> None:
    from llmctl.providers.hosted.credentials import ApiKey
    from llmctl.providers.hosted.errors import mask_key

    assert mask_key(text, ApiKey(SECRET, "$KEY", env_var="KEY")) == expected


@pytest.mark.parametrize("cut", range(280, 302))
def test_the_key_is_masked_before_the_message_is_cut(
    servers: dict[str, LoopbackServer], monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    """Wherever the 300-character cut falls in the key, no 8 characters of it survive."""
    from tests.wire import Fault

    key = "sk-test-faults-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    server = servers["openai"]
    server.add(Fault(400, message="x" * (cut - 10) + f" the key {key} is not valid here " + "y" * 300))
    provider = provider_for(server, "openai")
    with pytest.raises(InputError) as caught:
        list(provider.stream(REQUEST))
    provider.close()
    shown = caught.value.message + (caught.value.hint or "")
    assert [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in shown] == []
