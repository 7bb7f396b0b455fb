"""The official openai and anthropic SDKs as clients of a running ``llmctl serve`` (demo model)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.server.harness import ServeProcess

PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def oai(demo_server: ServeProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo_server.base_url, api_key="not-needed-on-loopback", max_retries=0)


@pytest.fixture(scope="module")
def ant(demo_server: ServeProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=demo_server.url, api_key="not-needed-on-loopback", max_retries=0)


def test_openai_sync_and_stream_agree_and_report_usage(oai: openai.OpenAI, demo_server: ServeProcess) -> None:
    before = len(demo_server.ledger_rows())
    whole = oai.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": PROMPT}], temperature=0, max_tokens=24, user="alice"
    )
    stream = oai.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": PROMPT}],
        temperature=0,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert whole.choices[0].message.content and streamed == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # usage in the final chunk, as OpenAI sends it
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    assert whole.usage is not None and whole.usage.prompt_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    rows = demo_server.wait_for_rows(before + 2)[before:]
    assert [(r["command"], r["model"], r["status"], r["client"]) for r in rows] == [
        ("serve", "llmctl/demo", "ok", "alice"),
        ("serve", "llmctl/demo", "ok", None),
    ]
    assert rows[0]["output_tokens"] == whole.usage.completion_tokens
    assert rows[0]["token_source"] == "exact"


def test_openai_stream_without_include_usage_has_no_usage_chunk(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": PROMPT}], max_tokens=8, stream=True
        )
    )
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)


def test_openai_models_list_names_the_demo(oai: openai.OpenAI) -> None:
    assert "demo" in [m.id for m in oai.models.list()]


def test_anthropic_create_and_stream_helper(ant: anthropic.Anthropic, demo_server: ServeProcess) -> None:
    before = len(demo_server.ledger_rows())
    message = ant.messages.create(
        model="demo",
        max_tokens=24,
        system="Answer briefly.",
        messages=[{"role": "user", "content": PROMPT}],
        metadata={"user_id": "bob"},
    )
    with ant.messages.stream(
        model="demo",
        max_tokens=24,
        system="Answer briefly.",
        messages=[{"role": "user", "content": PROMPT}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert message.content[0].type == "text" and text == message.content[0].text == final.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == message.usage.output_tokens > 0
    assert final.usage.input_tokens == message.usage.input_tokens > 0
    assert final.stop_reason == message.stop_reason in ("end_turn", "max_tokens")
    rows = demo_server.wait_for_rows(before + 2)[before:]
    assert [r["client"] for r in rows] == ["bob", None]


def test_anthropic_count_tokens_matches_the_calls_input(ant: anthropic.Anthropic) -> None:
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": PROMPT}]
    counted = ant.messages.count_tokens(model="demo", messages=messages)
    message = ant.messages.create(model="demo", max_tokens=4, messages=messages)
    assert counted.input_tokens == message.usage.input_tokens


def test_sdk_errors_are_the_vendors_own(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    with pytest.raises(openai.NotFoundError) as found:
        oai.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert found.value.code == "model_not_found" and "no-such-model" in found.value.message
    with pytest.raises(anthropic.NotFoundError) as missing:
        ant.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as refused:
        ant.messages.create(model="demo", max_tokens=5, messages=[{"role": "user", "content": ""}] * 0)
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
