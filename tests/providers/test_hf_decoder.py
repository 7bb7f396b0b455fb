"""The streaming decoder: its pieces add up to the whole decode, token counts included, in linear time."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from llmctl.domain import TextDelta
from llmctl.providers.hf.provider import IncrementalDecoder
from tests.tiny_models import CORPUS


def stream(tokenizer: Any, ids: list[int], batch: int = 1) -> list[TextDelta]:
    decoder = IncrementalDecoder(tokenizer)
    deltas = [decoder.push(ids[i : i + batch]) for i in range(0, len(ids), batch)]
    deltas.append(decoder.flush())
    return [d for d in deltas if d is not None]


def metaspace_tokenizer() -> Any:
    """A SentencePiece-style tokenizer (▁ for spaces, stripped at the start of a decode)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    raw.pre_tokenizer = pre_tokenizers.Metaspace()
    raw.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace()])
    alphabet = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>", "<s>", "</s>", *alphabet])
    raw.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def tokenizers(tiny_models: dict[str, Path]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    found = {name: AutoTokenizer.from_pretrained(tiny_models[name]) for name in ("llama", "gemma")}
    found["metaspace"] = metaspace_tokenizer()
    return found


@pytest.mark.parametrize("name", ["llama", "gemma", "metaspace"])
@pytest.mark.parametrize("batch", [1, 3])
def test_pieces_add_up_to_the_whole_decode(name: str, batch: int, tokenizers: dict[str, Any]) -> None:
    tokenizer = tokenizers[name]
    rng = random.Random(7)
    text_ids = tokenizer.encode(" ".join(CORPUS[:5]), add_special_tokens=False)
    for ids in (text_ids, [rng.randrange(len(tokenizer)) for _ in range(300)]):
        deltas = stream(tokenizer, ids, batch)
        assert "".join(d.text for d in deltas) == tokenizer.decode(ids, skip_special_tokens=True)
        assert sum(d.tokens or 0 for d in deltas) == len(ids)


def test_a_split_multibyte_character_waits_for_its_last_byte(tokenizers: dict[str, Any]) -> None:
    tokenizer = tokenizers["llama"]
    ids = tokenizer.encode("🚀", add_special_tokens=False)  # not in the corpus: split into byte-level tokens
    assert len(ids) >= 2
    decoder = IncrementalDecoder(tokenizer)
    head = tokenizer.encode("go", add_special_tokens=False)
    assert decoder.push(head) == TextDelta("go", len(head))
    assert [decoder.push([i]) for i in ids[:-1]] == [None] * (len(ids) - 1)
    assert decoder.push([ids[-1]]) == TextDelta("🚀", len(ids))
    assert decoder.flush() is None


def test_each_push_decodes_a_short_window_not_the_whole_answer(tokenizers: dict[str, Any]) -> None:
    class Counting:
        def __init__(self, inner: Any) -> None:
            self.inner, self.longest = inner, 0

        def decode(self, ids: list[int], **kwargs: Any) -> str:
            self.longest = max(self.longest, len(ids))
            return str(self.inner.decode(ids, **kwargs))

    counting = Counting(tokenizers["llama"])
    ids = tokenizers["llama"].encode(" ".join(CORPUS * 3), add_special_tokens=False)
    assert len(ids) > 1000
    stream(counting, ids)
    assert counting.longest < 20
