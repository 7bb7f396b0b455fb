"""Tiny real transformers models, built offline, for the three architecture families we support.

Each is saved with ``save_pretrained`` (safetensors) together with a trained BPE
tokenizer and the family's chat template, so it loads through exactly the path
a downloaded model takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
# Gemma's real template refuses a system turn; llmctl must cope with that.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {
        "template": LLAMA3_TEMPLATE,
        "specials": ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"],
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
    },
    "mistral": {"template": MISTRAL_TEMPLATE, "specials": ["<s>", "</s>"], "bos": "<s>", "eos": "</s>"},
    "gemma": {
        "template": GEMMA_TEMPLATE,
        "specials": ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<pad>"],
        "bos": "<bos>",
        "eos": "<end_of_turn>",
    },
}

CORPUS = [
    "The capital of France is Paris.",
    "Hello there, how are you today? I am fine, thank you.",
    "Two plus two is four. Seven times six is forty-two.",
    "llmctl runs local and hosted language models from one command line.",
    "Ünïcödé text, emoji 🙂 and CJK 漢字 must survive a round trip.",
] * 4


def build_tokenizer(
    family: str, folder: Path, *, with_template: bool = True, vocab: int = 400, corpus: Sequence[str] = CORPUS
) -> Any:
    """A byte-level BPE tokenizer trained on ``corpus`` (at most ``vocab`` tokens), with the family's specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = FAMILIES[family]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=spec["specials"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=spec["bos"],
        eos_token=spec["eos"],
        pad_token=spec["eos"],
    )
    if with_template:
        fast.chat_template = spec["template"]
    fast.save_pretrained(folder)
    return fast


@dataclass(frozen=True)
class ModelSize:
    """How big a built model is. The default is the tests' (loads in well under a second); the
    benchmarks build wider and deeper ones, whose cost per token is more like a real model's."""

    hidden: int = 32
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int | None = None  # twice ``hidden`` when not given
    vocab: int = 400  # the most the tokenizer may learn; a small corpus yields fewer
    tie_embeddings: bool = False  # the output head shares the input embedding (SmolLM2 does); Llama only

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def build_tiny_model(
    family: str,
    folder: Path,
    *,
    with_template: bool = True,
    context: int = 256,
    never_stops: bool = False,
    size: ModelSize = ModelSize(),
    corpus: Sequence[str] = CORPUS,
) -> Path:
    """Save a randomly initialised ``family`` model of ``size`` with its tokenizer to ``folder``.

    ``never_stops`` declares an end-of-sequence id outside the vocabulary, so sampling can never
    end a reply early: tests that interrupt a long reply need it to still be running.
    """
    import torch
    from transformers import (
        GemmaConfig,
        GemmaForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
    )

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family, folder, with_template=with_template, vocab=size.vocab, corpus=corpus)
    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": size.hidden,
        "intermediate_size": size.intermediate or 2 * size.hidden,
        "num_hidden_layers": size.layers,
        "num_attention_heads": size.heads,
        "num_key_value_heads": size.kv_heads,
        "max_position_embeddings": context,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    torch.manual_seed(0)
    if family == "llama":
        model: Any = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=size.tie_embeddings))
    elif family == "mistral":
        model = MistralForCausalLM(MistralConfig(**common, sliding_window=None))
    else:
        model = GemmaForCausalLM(GemmaConfig(**common, head_dim=size.head_dim))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    if never_stops:
        model.config.eos_token_id = model.generation_config.eos_token_id = len(tokenizer) + 7
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    return folder
