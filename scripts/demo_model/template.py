"""The demo model's chat format (ChatML) and tokenizer: the Jinja template, its Python twin, and the check
that the two and the token ids agree."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

VOCAB_SIZE = 2048
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]

# ChatML. The optional system message is simply the first message; content is trimmed.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] | trim) + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

Message = dict[str, str]


class TemplateMismatch(Exception):
    """The tokenizer's chat template, its Python twin and the token ids disagree: training would learn a
    format that llmctl never sends."""


def render_chat(messages: Sequence[Message], add_generation_prompt: bool) -> str:
    """Python twin of CHAT_TEMPLATE (check_template holds the two together)."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content'].strip()}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def train_tokenizer(texts: Iterator[str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with the ChatML specials (``<|im_end|>`` is EOS) and CHAT_TEMPLATE."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        bos_token=None,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


def token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    value = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(value, int):
        raise TemplateMismatch(f"the tokenizer has no single id for {token!r}")
    return value


def check_template(tokenizer: PreTrainedTokenizerBase) -> None:
    """The Jinja template, the Python twin used for training and the ids must all agree; raises TemplateMismatch."""
    messages: list[Message] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    for msgs in (messages, messages[1:]):
        rendered = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        expected = render_chat(msgs, True)
        if rendered != expected:
            raise TemplateMismatch(f"the chat template renders {rendered!r}; render_chat gives {expected!r}")
        encoded = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_dict=True)
        if not isinstance(encoded, Mapping):
            raise TemplateMismatch(f"apply_chat_template(return_dict=True) returned a {type(encoded).__name__}")
        by_template = list(encoded["input_ids"])
        by_text = tokenizer.encode(str(rendered), add_special_tokens=False)
        if by_template != by_text:
            raise TemplateMismatch(f"the template's ids {by_template} are not the rendered text's {by_text}")
    text = "The capital of France is Paris."
    decoded = tokenizer.decode(tokenizer.encode(text, add_special_tokens=False))
    if decoded != text:
        raise TemplateMismatch(f"{text!r} comes back from the tokenizer as {decoded!r}")
