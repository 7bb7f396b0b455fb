"""Test models that carry the vendors' real tokenizers and chat formats (random weights, one layer).

- Llama 3: Meta's tiktoken BPE file shipped in ``llama-models``, converted to a Hugging Face
  ``tokenizer.json`` with transformers' own ``TikTokenConverter``, and Meta's published
  Llama 3 Instruct chat template.
- Mistral: Mistral AI's v3 SentencePiece model shipped in ``mistral-common``, converted with
  transformers' Llama converter (control pieces such as ``[INST]`` kept as special tokens, as
  in the published ``tokenizer.json``), and the published Mistral-7B-Instruct-v0.3 template.
- Gemma: its tokenizer is not on PyPI, so a small trained BPE carries Gemma's special tokens
  and Google's published Gemma Instruct template; Gemma is checked on the rendered format.

Each is saved with ``save_pretrained`` and loaded by llmctl through the same path a
downloaded model takes. The vocabularies are the real sizes (128,256 and 32,768).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Meta's Llama 3 Instruct template, as published with Meta-Llama-3-8B-Instruct.
LLAMA3_INSTRUCT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Mistral-7B-Instruct-v0.3's published template (its tool-calling branches left out: llmctl sends
# no tools). The system prompt goes before the *last* user message, as mistral-common does.
MISTRAL_V3_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.last and system_message is defined %}"
    "{{- '[INST] ' + system_message + '\n\n' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + message['content']|trim + eos_token }}"
    "{%- else %}{{- raise_exception('Only user and assistant roles are supported, with the exception of "
    "an initial optional system message!') }}"
    "{%- endif %}"
    "{%- endfor %}"
)

# Google's Gemma Instruct template (gemma-7b-it): no system role, "model" for the assistant.
GEMMA_INSTRUCT_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)


def _save_model(architecture: str, tokenizer: Any, folder: Path, **extra: Any) -> Path:
    import torch
    from transformers import (
        GemmaConfig,
        GemmaForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
    )

    classes = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "mistral": (MistralConfig, MistralForCausalLM),
        "gemma": (GemmaConfig, GemmaForCausalLM),
    }
    config_class, model_class = classes[architecture]
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )
    torch.manual_seed(0)
    model = model_class(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def build_llama3(folder: Path) -> Path:
    from llama_models.llama3.tokenizer import Tokenizer as MetaTokenizer
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    meta = MetaTokenizer.get_instance()
    model_file = Path(__import__("llama_models.llama3", fromlist=["x"]).__file__).parent / "tokenizer.model"
    specials = sorted(meta.special_tokens, key=meta.special_tokens.__getitem__)
    converted = TikTokenConverter(
        vocab_file=str(model_file), pattern=MetaTokenizer.pat_str, extra_special_tokens=specials
    ).converted()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=converted,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
        chat_template=LLAMA3_INSTRUCT_TEMPLATE,
    )
    return _save_model("llama", tokenizer, folder)


MISTRAL_V3_FILE = "mistral_instruct_tokenizer_240323.model.v3"  # what MistralTokenizer.v3() loads


def mistral_v3_model_file() -> Path:
    import mistral_common

    return Path(mistral_common.__file__).parent / "data" / MISTRAL_V3_FILE


def build_mistral_v3(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import SentencePieceExtractor

    # transformers' non-legacy Llama conversion: byte fallback, a metaspace before the first word
    # only, SentencePiece control pieces ([INST], [/INST], ...) as special tokens.
    extracted = SentencePieceExtractor(str(mistral_v3_model_file())).extract(BPE)
    converted = Tokenizer(
        BPE(extracted["vocab"], extracted["merges"], unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    )
    converted.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    converted.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(content=" ", left=1)]
    )
    converted.add_special_tokens(extracted["additional_special_tokens"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=converted,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        chat_template=MISTRAL_V3_TEMPLATE,
    )
    return _save_model("mistral", tokenizer, folder, sliding_window=None)


def build_gemma(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tests.tiny_models import CORPUS

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        chat_template=GEMMA_INSTRUCT_TEMPLATE,
    )
    return _save_model("gemma", fast, folder, head_dim=8)
