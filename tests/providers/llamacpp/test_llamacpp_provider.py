"""The llama.cpp engine against llama-cpp-python called directly on the same GGUF file, and against
transformers on the weights the file was written from: the same prompt ids, the same greedy tokens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp")

from llmctl.config import Settings
from llmctl.domain import CountSource, FinishReason, GenerationParams, GenerationRequest, Message, TextDelta, collect
from llmctl.errors import ContextLengthError, ProviderError
from llmctl.provider_specs import LlamaCppProviderSettings
from llmctl.providers.base import ResolvedModel
from llmctl.providers.hf.prompt import merge_system_into_first_user, plain_transcript
from llmctl.providers.llamacpp.provider import LlamaCppProvider
from llmctl.providers.registry import resolve
from llmctl.services.chat.session import ChatSession, TurnOutcome
from tests.tiny_gguf import write_gguf
from tests.tiny_models import GEMMA_TEMPLATE

GREEDY = GenerationParams(temperature=0, max_tokens=12)
CHAT = (Message("system", "You are terse."), Message("user", "Hello there, how are you today?"))


def _provider(path: Path, **settings: Any) -> LlamaCppProvider:
    resolved = resolve(str(path), Settings())
    if settings:
        resolved = ResolvedModel(
            resolved.provider_name, resolved.kind, resolved.model_id, LlamaCppProviderSettings(**settings)
        )
    return LlamaCppProvider(resolved)


@pytest.fixture(scope="module")
def providers(tiny_ggufs: dict[str, Path]) -> Iterator[dict[str, LlamaCppProvider]]:
    opened = {name: _provider(path) for name, path in tiny_ggufs.items()}
    yield opened
    for provider in opened.values():
        provider.close()


def _direct_greedy(path: Path, prompt: str, max_tokens: int) -> tuple[list[int], list[int], str]:
    """llama-cpp-python by itself: its Jinja2ChatFormatter, its tokenizer, greedy until an end token."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = llama_cpp.Llama(str(path), n_ctx=256, verbose=False)
    try:
        ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        out: list[int] = []
        for token in llm.generate(ids, temp=0.0, top_k=0, min_p=0.0, repeat_penalty=1.0):
            if llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llm.model), token):
                break
            out.append(token)
            if len(out) >= max_tokens:
                break
        return ids, out, llm.detokenize(out).decode("utf-8", errors="replace")
    finally:
        del Jinja2ChatFormatter
        llm.close()


def _rendered_by_llama_cpp_python(path: Path, messages: tuple[Message, ...]) -> str:
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    try:
        formatter = Jinja2ChatFormatter(
            template=llm.metadata["tokenizer.chat_template"],
            bos_token=llm._model.token_get_text(llm.token_bos()),
            eos_token=llm._model.token_get_text(llm.token_eos()),
        )
        return str(formatter(messages=[{"role": m.role, "content": m.content} for m in messages]).prompt)
    finally:
        llm.close()


@pytest.mark.parametrize("outtype", ["f32", "f16", "q8_0"])
def test_greedy_output_and_counts_match_llama_cpp_python_called_directly(
    outtype: str, tiny_ggufs: dict[str, Path], providers: dict[str, LlamaCppProvider]
) -> None:
    path = tiny_ggufs[outtype]
    prompt = _rendered_by_llama_cpp_python(path, CHAT)
    direct_ids, direct_out, direct_text = _direct_greedy(path, prompt, GREEDY.max_tokens or 0)

    provider = providers[outtype]
    events = list(provider.stream(GenerationRequest(CHAT, GREEDY)))
    completion = collect(events)

    assert provider.prompt_ids(CHAT) == direct_ids
    assert completion.usage.input_tokens == len(direct_ids)
    assert completion.usage.output_tokens == len(direct_out)
    assert completion.text == direct_text
    counted = provider.count_prompt_tokens(CHAT)
    assert (counted.tokens, counted.source, counted.context_window) == (len(direct_ids), CountSource.EXACT, 256)


def test_prompt_ids_and_greedy_tokens_match_transformers_on_the_same_weights(
    tiny_models: dict[str, Path], tiny_ggufs: dict[str, Path], providers: dict[str, LlamaCppProvider]
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    chat = [{"role": m.role, "content": m.content} for m in CHAT]
    hf_ids = list(
        tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    )
    provider = providers["f32"]
    assert provider.prompt_ids(CHAT) == hf_ids

    model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    generated = model.generate(torch.tensor([hf_ids]), max_new_tokens=8, do_sample=False, min_new_tokens=8)
    hf_text = tokenizer.decode(generated[0, len(hf_ids) :], skip_special_tokens=True)
    text = collect(provider.stream(GenerationRequest(CHAT, GenerationParams(temperature=0, max_tokens=8)))).text
    assert text == hf_text


def test_no_template_sends_the_plain_transcript(
    tiny_models: dict[str, Path], providers: dict[str, LlamaCppProvider]
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["no-template"])
    expected = list(tokenizer(plain_transcript(CHAT), add_special_tokens=True)["input_ids"])
    assert providers["no-template"].prompt_ids(CHAT) == expected


def test_a_template_that_refuses_the_system_role_gets_it_merged_into_the_first_user_message(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    path = write_gguf(tiny_models["llama"], tmp_path / "gemma-template.gguf", template=GEMMA_TEMPLATE)
    provider = _provider(path)
    try:
        merged = provider.prompt_ids(tuple(merge_system_into_first_user(CHAT)))
        assert provider.prompt_ids(CHAT) == merged
    finally:
        provider.close()


def test_a_template_that_fails_otherwise_is_one_provider_error(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    path = write_gguf(tiny_models["llama"], tmp_path / "bad.gguf", template="{{ raise_exception('no tools here') }}")
    provider = _provider(path)
    with pytest.raises(ProviderError, match=r"chat template failed: TemplateError: no tools here"):
        provider.prompt_ids(CHAT)


def test_counting_tokens_loads_only_the_vocabulary(tiny_ggufs: dict[str, Path]) -> None:
    provider = _provider(tiny_ggufs["q8_0"])
    try:
        counted = provider.count_prompt_tokens(CHAT).tokens
        assert provider._loaded is not None and provider._loaded.vocab_only
        events = list(provider.stream(GenerationRequest(CHAT, GREEDY)))  # then the weights, for generating
        assert not provider._loaded.vocab_only
        assert collect(events).usage.input_tokens == counted
    finally:
        provider.close()


def test_the_context_window_is_n_ctx_and_a_prompt_that_fills_it_is_refused(tiny_ggufs: dict[str, Path]) -> None:
    provider = _provider(tiny_ggufs["f32"], n_ctx=32)
    assert provider.context_window() == 32
    long_chat = (Message("user", "Two plus two is four. " * 20),)
    with pytest.raises(ContextLengthError, match=r"context window of 32 tokens") as caught:
        list(provider.stream(GenerationRequest(long_chat, GREEDY)))
    assert caught.value.hint is not None and "n_ctx" in caught.value.hint
    # A prompt that fits gets at most what is left of the window.
    short = (Message("user", "Hi"),)
    usage = collect(provider.stream(GenerationRequest(short, GenerationParams(temperature=0, max_tokens=500)))).usage
    assert usage.input_tokens is not None and usage.output_tokens is not None
    assert usage.input_tokens + usage.output_tokens <= 32
    provider.close()


def test_default_window_is_the_models_own_when_below_4096(tiny_ggufs: dict[str, Path]) -> None:
    assert _provider(tiny_ggufs["f32"]).context_window() == 256  # the tiny model declares 256


@pytest.mark.parametrize("seed", [1, 2**40])
def test_a_seed_makes_sampling_repeatable(seed: int, providers: dict[str, LlamaCppProvider]) -> None:
    params = GenerationParams(temperature=1.5, top_p=1.0, max_tokens=16, seed=seed)
    runs = [collect(providers["f16"].stream(GenerationRequest(CHAT, params))).text for _ in range(2)]
    assert runs[0] == runs[1]
    other = collect(providers["f16"].stream(GenerationRequest(CHAT, GenerationParams(1.5, 1.0, 16, seed + 1)))).text
    assert other != runs[0]


def test_generation_stops_at_the_models_end_token(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    probe = _provider(write_gguf(tiny_models["llama"], tmp_path / "probe.gguf"))
    first = probe.prompt_ids(CHAT)
    import llama_cpp

    llm = llama_cpp.Llama(str(probe.path), n_ctx=256, verbose=False)
    greedy_first = next(iter(llm.generate(first, temp=0.0)))
    llm.close()
    # The same weights, with the token greedy decoding picks first declared the end of sequence.
    ends = _provider(write_gguf(tiny_models["llama"], tmp_path / "ends.gguf", eos_token_id=greedy_first))
    completion = collect(ends.stream(GenerationRequest(CHAT, GREEDY)))
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage.output_tokens == 0 and completion.text == ""
    ends.close()
    limited = collect(probe.stream(GenerationRequest(CHAT, GenerationParams(temperature=0, max_tokens=5))))
    assert limited.finish_reason is FinishReason.LENGTH and limited.usage.output_tokens == 5
    probe.close()


def test_an_interrupted_stream_leaves_the_model_ready_for_the_next_request(
    providers: dict[str, LlamaCppProvider],
) -> None:
    provider = providers["f32"]
    expected = collect(provider.stream(GenerationRequest(CHAT, GREEDY))).text
    stream = provider.stream(GenerationRequest(CHAT, GREEDY))
    deltas = 0
    with pytest.raises(KeyboardInterrupt):
        for event in stream:
            if isinstance(event, TextDelta):
                deltas += 1
                if deltas == 3:
                    stream.throw(KeyboardInterrupt())
    assert collect(provider.stream(GenerationRequest(CHAT, GREEDY))).text == expected


# -- chat: the KV cache kept between turns ------------------------------------------------------------


def _session(path: Path, *, reuse: bool) -> ChatSession:
    parent = _provider(path)
    return ChatSession(
        Settings(),
        str(path),
        params=GenerationParams(temperature=0, max_tokens=8),
        opener=lambda resolved: parent.for_chat(reuse_kv=reuse),
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


def test_chat_replies_are_identical_with_and_without_kv_reuse_and_reuse_is_reported(
    tiny_ggufs: dict[str, Path],
) -> None:
    cached, fresh = _session(tiny_ggufs["f32"], reuse=True), _session(tiny_ggufs["f32"], reuse=False)
    for session in (cached, fresh):
        session.set_system("You are terse.")
    script = [
        ("say", "Hello there, how are you today?"),
        ("say", "What is the capital of France?"),
        ("interrupt", "Tell me more about Paris."),
        ("say", "Thank you."),
    ]
    reused = []
    for action, text in script:
        stop = 2 if action == "interrupt" else None
        a, b = _reply(cached, text, stop_after=stop), _reply(fresh, text, stop_after=stop)
        assert a.turn.reply == b.turn.reply, f"{action} {text!r} differs with reuse"
        assert a.turn.usage.input_tokens == b.turn.usage.input_tokens
        assert b.turn.usage.cached_input_tokens is None
        reused.append(a.turn.usage.cached_input_tokens)
    assert reused[0] == 0
    turns = cached.conversation.turns
    assert all(r is not None and r > 0 for r in reused[1:])
    # The whole first prompt at least comes from the cache on the follow-up.
    assert reused[1] is not None and turns[0].usage.input_tokens is not None
    assert reused[1] >= turns[0].usage.input_tokens


def test_a_file_llama_cpp_refuses_is_one_error_with_its_reason_and_nothing_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "alien.gguf"
    writer = gguf.GGUFWriter(str(path), "alien-arch-9000")
    writer.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    capfd.readouterr()
    provider = _provider(path)
    with pytest.raises(ProviderError, match=r"llama.cpp cannot load .*alien.gguf: .*alien-arch-9000"):
        provider.prepare()
    assert capfd.readouterr().err == ""  # llama.cpp's own log is kept, not printed


def test_a_model_that_cannot_fit_in_memory_is_refused_before_loading(
    tiny_ggufs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmctl.providers.llamacpp.provider as module

    monkeypatch.setattr(module, "available_memory", lambda: 1000)
    opened: list[Path] = []
    monkeypatch.setattr(module, "open_llama", lambda path, *a, **k: opened.append(path))
    with pytest.raises(ProviderError, match=r"needs about .* of memory \(weights and KV cache\); 1.00 KB is available"):
        _provider(tiny_ggufs["q8_0"]).prepare()
    assert opened == []


def test_without_llama_cpp_python_the_error_names_the_extra(
    tiny_ggufs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmctl.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what `import llama_cpp` meets when it is not installed
    with pytest.raises(MissingDependencyError) as caught:
        _provider(tiny_ggufs["q8_0"]).prepare()
    assert caught.value.hint is not None and "pip install 'llmctl[gguf]'" in caught.value.hint


def test_a_response_schema_constrains_the_answer_with_a_grammar(providers: dict[str, LlamaCppProvider]) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    request = GenerationRequest(CHAT, GenerationParams(temperature=0, max_tokens=12), response_schema=schema)
    constrained = collect(providers["q8_0"].stream(request)).text
    free = collect(providers["q8_0"].stream(GenerationRequest(CHAT, request.params))).text
    assert constrained.startswith('{"answer": "') and not free.startswith("{")
