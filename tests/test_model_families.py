"""The guide's model families with their real tokenizers and chat formats, checked against the vendors' references.

Llama 3 against Meta's ``llama_models`` ``ChatFormat``, Mistral against Mistral AI's
``mistral_common`` ``encode_chat_completion``: the token ids llmctl's local provider sends
to the model, and the counts ``tokens count`` and ``generate --json`` report, equal the
reference encoding of the same dialog. Gemma (tokenizer not on PyPI) is checked on the
rendered prompt text against Google's documented format. Real sizes come from the published
``config.json`` files in tests/data/model_configs (facts only, no weights).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.real_tokenizers import build_gemma, build_llama3, build_mistral_v3

pytest.importorskip("llama_models")
pytest.importorskip("mistral_common")

pytestmark = pytest.mark.slow

Run = Callable[..., CliResult]
Dialog = Sequence[tuple[str, str]]
CONFIGS = Path(__file__).parent / "data" / "model_configs"

LONG = " ".join(["The quick brown fox jumps over the lazy dog; then it rests."] * 150)
DIALOGS: dict[str, Dialog] = {
    "one-user-turn": [("user", "Hello there")],
    "system-and-user": [("system", "Be brief."), ("user", "What is the capital of France?")],
    "several-turns": [
        ("user", "Hi"),
        ("assistant", "Hello! How can I help?"),
        ("user", "What is 2+2?"),
    ],
    "system-and-several-turns": [
        ("system", "You are terse."),
        ("user", "Hi"),
        ("assistant", "Hey."),
        ("user", "Name three rivers."),
        ("assistant", "Nile, Amazon, Yangtze."),
        ("user", "And two lakes?"),
    ],
    "unicode": [("user", "Ünïcödé — 日本語のテキスト, emoji 🚀🙂, Ελληνικά, עברית\nand a second line")],
    "code-in-history": [
        ("user", "Write hello world in Python."),
        ("assistant", "```python\nprint('hello, world')\n```"),
        ("user", "Now in C."),
    ],
    "long-input": [("system", "Summarise."), ("user", LONG)],
}


@pytest.fixture(scope="module")
def family_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {
        "llama3": build_llama3(root / "llama3"),
        "mistral": build_mistral_v3(root / "mistral"),
        "gemma": build_gemma(root / "gemma"),
    }


def llama3_reference(dialog: Dialog) -> list[int]:
    from llama_models.datatypes import RawMessage
    from llama_models.llama3.chat_format import ChatFormat
    from llama_models.llama3.tokenizer import Tokenizer

    messages = [RawMessage(role=role, content=content) for role, content in dialog]
    return list(ChatFormat(Tokenizer.get_instance()).encode_dialog_prompt(messages).tokens)


def mistral_reference(dialog: Dialog) -> list[int]:
    from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    kinds = {"system": SystemMessage, "user": UserMessage, "assistant": AssistantMessage}
    request = ChatCompletionRequest(messages=[kinds[role](content=content) for role, content in dialog])
    return list(MistralTokenizer.v3().encode_chat_completion(request).tokens)


REFERENCES = {"llama3": llama3_reference, "mistral": mistral_reference}


def llmctl_prompt_ids(folder: Path, dialog: Dialog) -> list[int]:
    """What llmctl's local provider feeds the model: the same call its stream() makes."""
    from llmctl.config import Settings
    from llmctl.domain import GenerationParams, GenerationRequest, Message
    from llmctl.providers.registry import open_provider, resolve

    provider = open_provider(resolve(str(folder), Settings()))
    try:
        request = GenerationRequest(tuple(Message(role, content) for role, content in dialog), GenerationParams())
        return provider.prompt_ids(request)  # type: ignore[attr-defined, no-any-return]
    finally:
        provider.close()


@pytest.mark.parametrize("dialog", list(DIALOGS), ids=list(DIALOGS))
@pytest.mark.parametrize("family", list(REFERENCES))
def test_prompt_ids_equal_the_vendor_reference(family_models: dict[str, Path], family: str, dialog: str) -> None:
    reference = REFERENCES[family](DIALOGS[dialog])
    assert llmctl_prompt_ids(family_models[family], DIALOGS[dialog]) == reference


SINGLE_TURN = ["one-user-turn", "system-and-user", "unicode", "long-input"]


@pytest.mark.parametrize("dialog", SINGLE_TURN)
@pytest.mark.parametrize("family", list(REFERENCES))
def test_reported_counts_equal_the_vendor_reference(
    run_llmctl: Run, family_models: dict[str, Path], family: str, dialog: str
) -> None:
    turns = dict(DIALOGS[dialog])
    system = ["-s", turns["system"]] if "system" in turns else []
    expected = len(REFERENCES[family](DIALOGS[dialog]))
    folder = str(family_models[family])

    counted = run_llmctl("tokens", "count", "-m", folder, *system, turns["user"], "--json")
    assert counted.exit_code == 0, counted.stderr
    counts = json.loads(counted.stdout)
    assert (counts["tokens"], counts["source"]) == (expected, "exact")

    generated = run_llmctl("generate", "-m", folder, *system, turns["user"], "--max-tokens", "1", "--json")
    assert generated.exit_code == 0, generated.stderr
    usage = json.loads(generated.stdout)["usage"]
    assert (usage["input_tokens"], usage["source"]) == (expected, "exact")


def test_llama3_template_trims_where_the_reference_does_not(family_models: dict[str, Path]) -> None:
    """The one documented difference: Meta's published template trims each message, ChatFormat keeps the
    whitespace. llmctl sends what the model's own template renders, i.e. the trimmed message."""
    padded = [("user", "  Hello there\n")]
    assert llmctl_prompt_ids(family_models["llama3"], padded) != llama3_reference(padded)
    assert llmctl_prompt_ids(family_models["llama3"], padded) == llama3_reference([("user", "Hello there")])


GEMMA_RENDERED = {
    "one-user-turn": "<bos><start_of_turn>user\nHello there<end_of_turn>\n<start_of_turn>model\n",
    # Gemma has no system role: llmctl's documented fallback puts it before the first user message.
    "system-and-user": (
        "<bos><start_of_turn>user\nBe brief.\n\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"
    ),
    "several-turns": (
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello! How can I help?<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"
    ),
    "system-and-several-turns": (
        "<bos><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\nHey.<end_of_turn>\n"
        "<start_of_turn>user\nName three rivers.<end_of_turn>\n<start_of_turn>model\nNile, Amazon, Yangtze."
        "<end_of_turn>\n<start_of_turn>user\nAnd two lakes?<end_of_turn>\n<start_of_turn>model\n"
    ),
}


@pytest.mark.parametrize("dialog", list(GEMMA_RENDERED))
def test_gemma_prompt_is_the_documented_format(family_models: dict[str, Path], dialog: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(family_models["gemma"])
    ids = llmctl_prompt_ids(family_models["gemma"], DIALOGS[dialog])
    assert tokenizer.decode(ids, skip_special_tokens=False) == GEMMA_RENDERED[dialog]


# Published architectures: the parameter counts their model cards give, to the parameter.
SIZES = {
    "llama-3-8b": (8_030_261_248, "8.03B"),
    "llama-3-70b": (70_553_706_496, "70.6B"),
    "mistral-7b-v0.3": (7_248_023_552, "7.25B"),
    "gemma-7b": (8_537_680_896, "8.54B"),
}


@pytest.mark.parametrize("name", list(SIZES))
def test_models_info_gives_the_real_size_from_config_alone(run_llmctl: Run, name: str) -> None:
    result = run_llmctl("models", "info", str(CONFIGS / name), "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    parameters, _ = SIZES[name]
    assert info["parameters"] == parameters
    fp16 = next(row for row in info["estimates"] if row["precision"] == "fp16/bf16")
    assert fp16["weights_bytes"] == parameters * 2
    ram = (info.get("hardware") or {}).get("ram_total_bytes")
    if ram is not None:
        assert fp16["fits"]["ram"] == (fp16["needed_bytes"] <= ram)


def test_the_guides_hardware_table(run_llmctl: Run) -> None:
    """Llama 3 8B ≈ 16 GB at fp16, 70B ≈ 140 GB, Mistral 7B within 8 GB at 8-bit."""

    def weights(name: str, precision: str) -> float:
        info = json.loads(run_llmctl("models", "info", str(CONFIGS / name), "--json").stdout)
        return next(row["weights_bytes"] for row in info["estimates"] if row["precision"] == precision) / 1e9

    assert 15.5 < weights("llama-3-8b", "fp16/bf16") < 16.5
    assert 139 < weights("llama-3-70b", "fp16/bf16") < 143
    assert weights("mistral-7b-v0.3", "8-bit") < 8


@pytest.mark.parametrize("name", list(SIZES))
def test_models_info_table_shows_the_count(run_llmctl: Run, name: str) -> None:
    result = run_llmctl("models", "info", str(CONFIGS / name))
    assert result.exit_code == 0, result.stderr
    assert SIZES[name][1] in result.stdout
