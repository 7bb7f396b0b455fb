"""The local Hugging Face provider on real tiny Llama, Mistral and Gemma models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.domain import (
    CountSource,
    Finished,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    Message,
    TextDelta,
    UsageUpdate,
    collect,
)
from llmctl.errors import ContextLengthError, ProviderError
from llmctl.providers.hf.prompt import plain_transcript
from llmctl.providers.hf.provider import HuggingFaceProvider
from llmctl.providers.registry import open_provider, resolve

FAMILIES = ["llama", "mistral", "gemma"]
GREEDY = GenerationParams(temperature=0, max_tokens=12)


def provider_for(folder: Path, settings: Settings | None = None) -> HuggingFaceProvider:
    provider = open_provider(resolve(str(folder), settings or Settings()))
    assert isinstance(provider, HuggingFaceProvider)
    return provider


def ask(text: str, system: str | None = None, params: GenerationParams = GREEDY) -> GenerationRequest:
    messages = ([Message("system", system)] if system else []) + [Message("user", text)]
    return GenerationRequest(tuple(messages), params)


@pytest.fixture(scope="module")
def providers(tiny_models: dict[str, Path]) -> dict[str, HuggingFaceProvider]:
    return {name: provider_for(folder) for name, folder in tiny_models.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_streams_deltas_then_one_finished_with_exact_counts(
    family: str, providers: dict[str, HuggingFaceProvider]
) -> None:
    provider = providers[family]
    request = ask("Hello there", system="Be brief.")
    events = list(provider.stream(request))
    assert isinstance(events[0], UsageUpdate)
    assert isinstance(events[-1], Finished)
    assert sum(isinstance(e, Finished) for e in events) == 1
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1, "streams token by token, not all at once"

    tokenizer = provider.loaded.tokenizer
    usage = events[-1].usage
    assert usage.source is CountSource.EXACT
    assert usage.input_tokens == len(provider.prompt_ids(request))
    # Output is the number of generated ids: the deltas carry them.
    assert usage.output_tokens == sum(d.tokens or 0 for d in deltas) or usage.output_tokens == 12
    assert usage.output_tokens <= 12
    text = "".join(d.text for d in deltas)
    assert collect(events).text == text
    assert tokenizer is not None


def test_input_count_is_the_chat_templates_ids(providers: dict[str, HuggingFaceProvider]) -> None:
    provider = providers["llama"]
    tokenizer = provider.loaded.tokenizer
    request = ask("What is the capital of France?", system="You are terse.")
    expected = tokenizer.apply_chat_template(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        add_generation_prompt=True,
        return_dict=True,
    )["input_ids"]
    assert provider.prompt_ids(request) == list(expected)
    decoded = tokenizer.decode(provider.prompt_ids(request))
    assert decoded.startswith("<|begin_of_text|><|start_header_id|>system")
    assert decoded.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_gemma_system_prompt_is_merged_into_first_user_turn(providers: dict[str, HuggingFaceProvider]) -> None:
    provider = providers["gemma"]
    ids = provider.prompt_ids(ask("Hi", system="Speak like a pirate."))
    text = provider.loaded.tokenizer.decode(ids)
    assert "<start_of_turn>user\nSpeak like a pirate.\n\nHi<end_of_turn>" in text


def test_model_without_template_uses_plain_transcript(providers: dict[str, HuggingFaceProvider]) -> None:
    provider = providers["no-template"]
    request = ask("Hi", system="Sys")
    text = provider.loaded.tokenizer.decode(provider.prompt_ids(request), skip_special_tokens=True)
    assert text == plain_transcript(request.messages) == "System: Sys\n\nUser: Hi\n\nAssistant:"


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_is_deterministic(family: str, providers: dict[str, HuggingFaceProvider]) -> None:
    first = collect(providers[family].stream(ask("Tell me something")))
    second = collect(providers[family].stream(ask("Tell me something")))
    assert first.text == second.text
    assert first.usage == second.usage


def test_seed_makes_sampling_reproducible(providers: dict[str, HuggingFaceProvider]) -> None:
    provider = providers["llama"]
    sampled = GenerationParams(temperature=1.5, top_p=1.0, max_tokens=16, seed=7)
    runs = [collect(provider.stream(ask("Say anything", params=sampled))).text for _ in range(2)]
    other = collect(provider.stream(ask("Say anything", params=GenerationParams(1.5, 1.0, 16, seed=8)))).text
    assert runs[0] == runs[1]
    assert other != runs[0]


def test_stops_at_any_of_the_models_end_of_sequence_tokens(tiny_models: dict[str, Path]) -> None:
    provider = provider_for(tiny_models["llama"])
    request = ask("Hi", params=GenerationParams(temperature=0, max_tokens=20))
    loaded = provider.loaded
    first = provider.loaded.tokenizer.encode(collect(provider.stream(request)).text, add_special_tokens=False)
    # Declare the greedy first token an end-of-sequence token too (models like
    # Llama 3 have several): generation must stop right after it.
    original = loaded.model.generation_config.eos_token_id
    loaded.model.generation_config.eos_token_id = [original, first[0]]
    try:
        events = list(provider.stream(request))
    finally:
        loaded.model.generation_config.eos_token_id = original
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.finish_reason is FinishReason.STOP
    assert finished.usage.output_tokens == 1


def test_length_finish_reason(providers: dict[str, HuggingFaceProvider]) -> None:
    completion = collect(providers["mistral"].stream(ask("Go on", params=GenerationParams(0, None, 5))))
    assert completion.usage.output_tokens == 5
    assert completion.finish_reason is FinishReason.LENGTH


def test_input_longer_than_context_window_fails_before_generating(providers: dict[str, HuggingFaceProvider]) -> None:
    provider = providers["llama"]
    with pytest.raises(ContextLengthError) as info:
        next(iter(provider.stream(ask("word " * 400))))
    assert info.value.context_window == 256
    assert info.value.prompt_tokens > 256
    assert "256" in str(info.value) and str(info.value.prompt_tokens) in str(info.value)


def test_max_tokens_is_clamped_to_the_window(providers: dict[str, HuggingFaceProvider]) -> None:
    provider = providers["llama"]
    request = ask("word " * 50, params=GenerationParams(temperature=0, max_tokens=500))
    prompt = len(provider.prompt_ids(request))
    completion = collect(provider.stream(request))
    assert completion.usage.output_tokens is not None
    assert prompt + completion.usage.output_tokens <= 256


def test_only_safetensors_by_default(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_models["llama"], folder)
    import torch
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ProviderError) as info:
        provider_for(folder).prepare()
    assert "safetensors" in str(info.value)
    assert "allow_pickle_weights" in str(info.value)
    allowed = Settings.model_validate({"providers": {"hf": {"allow_pickle_weights": True}}})
    provider = provider_for(folder, allowed)
    assert collect(provider.stream(ask("Hi"))).usage.output_tokens


def test_remote_code_is_off_unless_configured(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    import json

    folder = tmp_path / "custom"
    shutil.copytree(tiny_models["llama"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "configuration_custom.CustomConfig",
        "AutoModelForCausalLM": "modeling_custom.CustomModel",
    }
    config["model_type"] = "custom-arch"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ProviderError, match="trust_remote_code"):
        provider_for(folder).prepare()


def test_not_downloaded_repo_says_how_to_download() -> None:
    from llmctl.errors import ModelNotFoundError

    provider = open_provider(resolve("hf/some-org/not-downloaded", Settings()))
    with pytest.raises(ModelNotFoundError, match="llmctl models download some-org/not-downloaded"):
        provider.prepare()
