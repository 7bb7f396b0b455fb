"""KV-cache reuse across chat turns: the same replies as without reuse, for less work.

Two chat sessions share one loaded tiny model: one keeps a KV cache between
turns, the other processes every prompt from scratch. With greedy decoding every
reply must be identical, through follow-ups, a /retry, a /system change and an
interrupted reply, while the cached session processes fewer prompt tokens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.domain import GenerationParams, GenerationRequest, Message
from llmctl.providers.hf.kv_cache import KVCacheProvider, common_prefix_length
from llmctl.providers.hf.loading import LoadedModel, load_model
from llmctl.providers.hf.provider import HuggingFaceProvider
from llmctl.providers.registry import resolve
from llmctl.services.chat.session import ChatSession, TurnOutcome

GREEDY = GenerationParams(temperature=0, max_tokens=8)


def _session(folder: Path, loaded: LoadedModel, *, reuse: bool) -> ChatSession:
    return ChatSession(
        Settings(),
        str(folder),
        params=GREEDY,
        opener=lambda resolved: KVCacheProvider(HuggingFaceProvider(resolved, loaded=loaded), reuse=reuse),
        record_usage=False,
    )


def _reply(session: ChatSession, text: str, *, stop_after: int | None = None) -> TurnOutcome:
    turn = session.start_turn(text)
    deltas = turn.deltas()
    try:
        for count, _ in enumerate(deltas, start=1):
            if stop_after is not None and count >= stop_after:
                turn.interrupted()
                break
    finally:
        deltas.close()
    return turn.finish()


def _retry(session: ChatSession) -> TurnOutcome:
    turn = session.retry()
    for _ in turn.deltas():
        pass
    return turn.finish()


@pytest.fixture(scope="module")
def loaded_models(tiny_models: dict[str, Path]) -> dict[str, LoadedModel]:
    settings = Settings()
    return {family: load_model(resolve(str(tiny_models[family]), settings)) for family in ("llama", "mistral", "gemma")}


@pytest.mark.parametrize("family", ["llama", "mistral", "gemma"])
def test_replies_identical_with_and_without_reuse(
    family: str, tiny_models: dict[str, Path], loaded_models: dict[str, LoadedModel]
) -> None:
    folder, loaded = tiny_models[family], loaded_models[family]
    cached, fresh = _session(folder, loaded, reuse=True), _session(folder, loaded, reuse=False)
    cached.set_system("You are terse.")
    fresh.set_system("You are terse.")

    script = [
        ("say", "Hello there, how are you today?"),
        ("say", "What is the capital of France?"),
        ("retry", ""),
        ("system", "You answer in one word."),
        ("say", "And seven times six?"),
        ("interrupt", "Tell me more about Paris."),
        ("say", "Thank you."),
    ]
    reused_by_turn = []
    for action, text in script:
        if action == "system":
            cached.set_system(text)
            fresh.set_system(text)
            continue
        if action == "retry":
            a, b = _retry(cached), _retry(fresh)
        elif action == "interrupt":
            a, b = _reply(cached, text, stop_after=3), _reply(fresh, text, stop_after=3)
            assert a.turn.status == b.turn.status == "interrupted"
        else:
            a, b = _reply(cached, text), _reply(fresh, text)
        assert a.turn.reply == b.turn.reply, f"{family}: {action} {text!r} differs with reuse"
        assert a.turn.usage.input_tokens == b.turn.usage.input_tokens
        assert a.turn.usage.output_tokens == b.turn.usage.output_tokens
        reused_by_turn.append(a.turn.usage.cached_input_tokens or 0)
        assert (b.turn.usage.cached_input_tokens or 0) == 0

    assert [t.reply for t in cached.conversation.turns] == [t.reply for t in fresh.conversation.turns]
    assert reused_by_turn[0] == 0  # nothing cached before the first turn
    # Every later turn reuses at least the system prompt; plain follow-ups reuse the earlier turns too.
    assert all(r > 0 for r in reused_by_turn[1:])
    follow_up = cached.conversation.turns[1].usage
    assert follow_up.cached_input_tokens is not None and follow_up.input_tokens is not None
    assert follow_up.cached_input_tokens > cached.conversation.turns[0].usage.input_tokens // 2  # type: ignore[operator]


def test_first_turn_processes_everything_and_follow_up_only_the_tail(
    tiny_models: dict[str, Path], loaded_models: dict[str, LoadedModel]
) -> None:
    resolved = resolve(str(tiny_models["llama"]), Settings())
    provider = KVCacheProvider(HuggingFaceProvider(resolved, loaded=loaded_models["llama"]))
    first = [Message("user", "Hello there")]
    list(provider.stream(GenerationRequest(tuple(first), GREEDY)))
    assert provider.last_prefill is not None and provider.last_prefill.reused == 0
    held = provider.cached_tokens
    first_ids = provider.inner.prompt_ids(GenerationRequest(tuple(first)))
    assert held >= len(first_ids)  # the prompt and (all but the last of) the reply are cached

    second = (*first, Message("assistant", "Hi!"), Message("user", "What did I say?"))
    second_ids = provider.inner.prompt_ids(GenerationRequest(second))
    list(provider.stream(GenerationRequest(second, GREEDY)))
    stats = provider.last_prefill
    assert stats is not None
    assert stats.reused >= len(first_ids)  # at least the whole first prompt came from the cache
    assert stats.reused + stats.processed == len(second_ids)
    assert stats.processed >= 1


def test_identical_prompt_still_processes_one_token(
    tiny_models: dict[str, Path], loaded_models: dict[str, LoadedModel]
) -> None:
    resolved = resolve(str(tiny_models["llama"]), Settings())
    provider = KVCacheProvider(HuggingFaceProvider(resolved, loaded=loaded_models["llama"]))
    request = GenerationRequest((Message("user", "Hello there"),), GREEDY)
    first = "".join(e.text for e in provider.stream(request) if hasattr(e, "text"))
    again = "".join(e.text for e in provider.stream(request) if hasattr(e, "text"))
    assert again == first
    assert provider.last_prefill is not None
    assert provider.last_prefill.processed == 1


def test_common_prefix_length() -> None:
    assert common_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_length([], [1]) == 0
    assert common_prefix_length([1, 2], [1, 2, 3]) == 2
    assert common_prefix_length([1, 2, 3], [1, 2]) == 2


def test_a_sliding_window_cache_that_cannot_be_rewound_starts_afresh(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    import json
    import shutil

    folder = tmp_path / "mistral-sliding"
    shutil.copytree(tiny_models["mistral"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["sliding_window"] = 8  # far shorter than any prompt: the cache slides past it at once
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_model(resolve(str(folder), Settings()))
    cached, fresh = _session(folder, loaded, reuse=True), _session(folder, loaded, reuse=False)
    for text in ("Hello there", "What is the capital of France?", "Thank you."):
        a, b = _reply(cached, text), _reply(fresh, text)
        assert a.turn.reply == b.turn.reply
    cache_provider = cached.provider
    assert isinstance(cache_provider, KVCacheProvider)
    assert any(layer.is_sliding for layer in cache_provider._cache.layers)  # the case this test is about
