"""The test support other tests stand on: the fake provider and the tiny-model builder do what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.domain import (
    CountSource,
    Finished,
    FinishReason,
    GenerationRequest,
    Message,
    TextDelta,
    Usage,
    UsageUpdate,
)
from llmctl.errors import AuthenticationError, ProviderError
from llmctl.providers.base import PromptTokens, Uncountable, count_prompt_tokens, unsupported_params
from llmctl.providers.registry import open_provider, resolve
from tests.fakes import FakeBackend, FakeProvider, fake_model, open_fake_provider
from tests.tiny_models import ModelSize, build_tiny_model

REQUEST = GenerationRequest((Message("user", "one two three"),))


def test_the_registry_opens_the_fake_for_openai_models(fake_provider: FakeBackend) -> None:
    fake_provider.enqueue("Hi", " there")
    provider = open_provider(resolve("openai/gpt-4o-mini", Settings()))
    assert isinstance(provider, FakeProvider) and provider.fake is fake_provider
    assert list(provider.stream(REQUEST)) == [
        TextDelta("Hi"),
        TextDelta(" there"),
        Finished(Usage(3, 2, CountSource.PROVIDER), FinishReason.STOP),
    ]
    assert fake_provider.requests == [REQUEST] and provider.requests == [REQUEST]


def test_calls_stream_their_scripts_in_order_then_the_every_call_answer() -> None:
    fake = FakeBackend()
    fake.enqueue("first")
    fake.answer_every_call("again")
    provider = fake.open()
    texts = ["".join(e.text for e in provider.stream(REQUEST) if isinstance(e, TextDelta)) for _ in range(3)]
    assert texts == ["first", "again", "again"]


def test_a_call_nobody_enqueued_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="called 1 times; only 0 were enqueued"):
        list(FakeBackend().open().stream(REQUEST))


@pytest.mark.parametrize(
    ("script", "fail_after", "seen", "raised"),
    [
        (("a ", "b ", ProviderError("cut")), None, ["a ", "b "], "cut"),
        (("a ", "b ", "c "), 1, ["a "], "The stream broke off."),
        (("a ", "b "), 0, [], "The stream broke off."),
        (("a ", "b "), 5, ["a ", "b "], None),
    ],
)
def test_failures_mid_stream_come_after_the_text_before_them(
    script: tuple[str | ProviderError, ...], fail_after: int | None, seen: list[str], raised: str | None
) -> None:
    fake = FakeBackend(fail_after=fail_after)
    fake.enqueue(*script)
    got: list[str] = []
    error: ProviderError | None = None
    try:
        got.extend(e.text for e in fake.open().stream(REQUEST) if isinstance(e, TextDelta))
    except ProviderError as exc:
        error = exc
    assert got == seen
    assert (error.message if error else None) == raised
    assert fake.stopped == 1


def test_the_knobs_are_what_the_provider_declares() -> None:
    fake = FakeBackend(
        window=40,
        unsupported_params=frozenset({"seed"}),
        count_tokens=lambda messages: 7,
        fail_prepare=AuthenticationError("No API key."),
    )
    fake.enqueue_words("one two")
    provider = fake.open()
    assert provider.context_window() == 40 and unsupported_params(provider) == {"seed"}
    with pytest.raises(AuthenticationError):
        provider.prepare()
    assert count_prompt_tokens(provider, REQUEST.messages) == PromptTokens(7, CountSource.EXACT, "the fake's own count")
    assert list(provider.stream(REQUEST)) == [
        UsageUpdate(Usage(input_tokens=7, source=CountSource.EXACT)),
        TextDelta("one", tokens=1),
        TextDelta(" two", tokens=1),
        Finished(Usage(7, 2, CountSource.EXACT), FinishReason.STOP),
    ]
    assert isinstance(count_prompt_tokens(FakeBackend().open(), REQUEST.messages), Uncountable)  # as a hosted one


def test_the_registry_opens_a_counting_fake_when_the_backend_counts(fake_provider: FakeBackend) -> None:
    fake_provider.count_tokens = lambda messages: 11
    provider = open_provider(resolve("openai/gpt-4o-mini", Settings()))
    counted = count_prompt_tokens(provider, REQUEST.messages)
    assert isinstance(counted, PromptTokens) and counted.tokens == 11


def test_a_fake_model_outside_the_fixture_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="outside the fake_provider fixture"):
        open_fake_provider(fake_model())


def test_an_endless_stream_runs_until_its_consumer_stops() -> None:
    fake = FakeBackend()
    fake.enqueue_endless("word ")
    stream = fake.open().stream(REQUEST)
    assert [next(stream) for _ in range(50)] == [TextDelta("word ", tokens=1)] * 50
    stream.close()
    assert fake.stopped == 1


def test_tiny_models_are_built_at_the_size_asked(tmp_path: Path) -> None:
    size = ModelSize(hidden=48, layers=3, heads=6, kv_heads=3, intermediate=80, vocab=300)
    folder = build_tiny_model("gemma", tmp_path / "gemma", context=128, size=size)
    config = json.loads((folder / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]) == (48, 3, 80)
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]) == (6, 3, 8)
    assert config["max_position_embeddings"] == 128 and config["vocab_size"] <= 300
