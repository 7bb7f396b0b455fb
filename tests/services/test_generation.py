"""The generation service: prompt composition, params, and runs that finish, fail or are interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmctl.config import Defaults, parse_settings
from llmctl.domain import (
    CountSource,
    Finished,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    Message,
    TextDelta,
    Usage,
    UsageUpdate,
    collect,
)
from llmctl.errors import InputError, ProviderError, UsageError
from llmctl.services.generation import (
    GenerationRun,
    RunStatus,
    build_messages,
    compose_prompt,
    decode_stdin,
    resolve_params,
)
from tests.fakes import FakeBackend, fake_model

FAKE = fake_model("fake", "fake-model")
REQUEST = GenerationRequest((Message("user", "hi"),))


def test_compose_prompt_rules() -> None:
    assert compose_prompt("summarize this", "notes\n") == "summarize this\n\nnotes\n"
    assert compose_prompt(None, "only stdin") == "only stdin"
    assert compose_prompt("only arg", None) == "only arg"
    assert compose_prompt("only arg", "   \n") == "only arg"
    with pytest.raises(UsageError):
        compose_prompt(None, "")
    with pytest.raises(UsageError):
        compose_prompt("  ", None)


def test_decode_stdin_rejects_non_utf8() -> None:
    assert decode_stdin("é".encode()) == "é"
    with pytest.raises(InputError, match="byte 3"):
        decode_stdin(b"caf\xe9")


def test_messages_and_params() -> None:
    assert build_messages("q", "sys") == (Message("system", "sys"), Message("user", "q"))
    assert build_messages("q", None) == (Message("user", "q"),)
    params = resolve_params(Defaults(temperature=0.5, max_tokens=10), temperature=0.0, seed=3)
    assert (params.temperature, params.top_p, params.max_tokens, params.seed) == (0.0, None, 10, 3)


@pytest.mark.parametrize(
    ("config", "flags", "expected"),
    [
        ("", {}, GenerationParams()),  # nobody asked for anything: nothing is sent
        ("[defaults]\n", {}, GenerationParams()),
        ("[defaults]\ntemperature = 0.7\n", {}, GenerationParams(temperature=0.7)),  # written, even if built in
        ("[defaults]\nmax_tokens = 99\nseed = 4\n", {}, GenerationParams(max_tokens=99, seed=4)),
        ("", {"top_p": 0.5, "max_tokens": 7}, GenerationParams(top_p=0.5, max_tokens=7)),
        ("[defaults]\ntop_p = 0.8\ntemperature = 1.0\n", {"temperature": 0.0}, GenerationParams(0.0, 0.8)),
    ],
)
def test_params_hold_only_what_the_user_set(config: str, flags: dict[str, float], expected: GenerationParams) -> None:
    settings = parse_settings(config, Path("config.toml"))
    assert resolve_params(settings.defaults, **flags) == expected


def test_local_defaults_fill_only_the_gaps() -> None:
    from llmctl.providers.hf.provider import LOCAL_DEFAULTS

    assert GenerationParams(max_tokens=5).or_defaults(LOCAL_DEFAULTS) == GenerationParams(0.7, 0.9, 5)
    assert GenerationParams(0.0, 0.2, seed=1).or_defaults(LOCAL_DEFAULTS) == GenerationParams(0.0, 0.2, seed=1)


def test_successful_run(fake_provider: FakeBackend) -> None:
    usage = Usage(5, 2, CountSource.PROVIDER)
    fake_provider.enqueue(TextDelta("Hel"), TextDelta("lo"), Finished(usage, FinishReason.STOP))
    run = GenerationRun(fake_provider.open(FAKE), REQUEST)
    assert list(run.deltas()) == ["Hel", "lo"]
    result = run.result()
    assert fake_provider.prepared == 1
    assert result.status is RunStatus.OK
    assert result.completion.text == "Hello"
    assert result.completion.usage == usage
    assert result.timing.first_token_s is not None
    assert result.model == "fake-model" and result.provider == "fake"


def test_failed_run_keeps_text_and_known_usage(fake_provider: FakeBackend) -> None:
    fake_provider.enqueue(
        UsageUpdate(Usage(input_tokens=7, source=CountSource.PROVIDER)),
        TextDelta("partial "),
        TextDelta("answer"),
        ProviderError("connection dropped"),
    )
    run = GenerationRun(fake_provider.open(FAKE), REQUEST)
    seen = []
    with pytest.raises(ProviderError):
        seen.extend(run.deltas())
    result = run.result()
    assert seen == ["partial ", "answer"]
    assert result.status is RunStatus.ERROR
    assert result.completion.text == "partial answer"
    assert result.completion.finish_reason is FinishReason.ERROR
    assert result.completion.usage.input_tokens == 7
    assert result.completion.usage.output_tokens is None  # unknown, not 0
    assert result.error is not None and "dropped" in result.error.message


def test_interrupted_run_counts_exact_output_tokens_from_deltas(fake_provider: FakeBackend) -> None:
    fake_provider.enqueue(
        UsageUpdate(Usage(input_tokens=4, source=CountSource.EXACT)),
        TextDelta("a", 1),
        TextDelta("bc", 2),
        TextDelta("never", 1),
    )
    run = GenerationRun(fake_provider.open(FAKE), REQUEST)
    pieces = run.deltas()
    assert next(pieces) == "a"
    assert next(pieces) == "bc"
    pieces.close()  # the consumer stops reading (Ctrl-C, closed pipe)
    run.interrupted()
    result = run.result()
    assert result.status is RunStatus.INTERRUPTED
    assert result.completion.text == "abc"
    assert result.completion.finish_reason is FinishReason.INTERRUPTED
    assert result.completion.usage == Usage(4, 3, CountSource.EXACT)


def test_collect_and_total() -> None:
    completion = collect([TextDelta("x"), Finished(Usage(1, None, CountSource.PROVIDER), FinishReason.LENGTH)])
    assert completion.text == "x"
    assert completion.usage.total_tokens is None
    assert Usage(2, 3).total_tokens == 5
