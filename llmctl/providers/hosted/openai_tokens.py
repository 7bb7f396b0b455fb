"""OpenAI token counts, exact and offline: tiktoken's encodings as ``bpe-openai`` ships them.

tiktoken itself would download its encodings at first use. The chat framing is the one OpenAI
documents (3 tokens per message and 3 to prime the reply). Imports no OpenAI SDK: counting is not
a call, and ``llmctl tokens count`` stays fast.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from llmctl.domain import CountSource, Message
from llmctl.providers.base import PromptTokens, ResolvedModel, Uncountable

# OpenAI's documented chat framing for gpt-3.5-turbo and later chat models.
TOKENS_PER_MESSAGE = 3
TOKENS_TO_PRIME_REPLY = 3
PROXY_ENCODING = "o200k_base"

# bpe-openai knows exact names; these prefixes cover dated and newer variants (longest first wins).
_ENCODING_PREFIXES = (
    ("chatgpt-4o", "o200k_base"),
    ("ft:gpt-4o", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("ft:gpt-4", "cl100k_base"),
    ("ft:gpt-3.5", "cl100k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
)


def openai_encoding_name(model_id: str) -> str | None:
    """The tiktoken encoding an OpenAI model uses, when known."""
    bpe_openai = _bpe_openai()
    name = model_id.lower()
    try:
        with _quiet_bpe_openai():
            return str(bpe_openai.encoding_name_for_model(name))
    except (KeyError, LookupError, bpe_openai.UnsupportedModelError):
        pass
    for prefix, encoding in _ENCODING_PREFIXES:
        if name.startswith(prefix):
            return encoding
    return None


@contextmanager
def _quiet_bpe_openai() -> Iterator[None]:
    # bpe-openai 0.1 reads its data with a deprecated importlib.resources call.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _bpe_openai() -> Any:
    with _quiet_bpe_openai():
        import bpe_openai
    return bpe_openai


@functools.cache
def _encoding(encoding_name: str) -> Any:
    with _quiet_bpe_openai():
        return _bpe_openai().get_encoding(encoding_name)


def text_tokens(encoding_name: str, text: str) -> int:
    """Tokens of plain ``text`` in a tiktoken encoding (offline, through bpe-openai)."""
    return len(_encoding(encoding_name).encode_ordinary(text))


def chat_tokens(encoding_name: str, messages: Sequence[Message]) -> int:
    total = TOKENS_TO_PRIME_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE + text_tokens(encoding_name, message.role)
        total += text_tokens(encoding_name, message.content)
    return total


def count_prompt_tokens(resolved: ResolvedModel, messages: Sequence[Message]) -> PromptTokens | Uncountable:
    """Exact for a model whose encoding is known; an OpenAI-compatible server's own model is not."""
    encoding = openai_encoding_name(resolved.model_id)
    if encoding is None:
        return Uncountable(f"no tokenizer is known for {resolved.model_id!r}")
    method = f"{encoding} (bpe-openai) with OpenAI's chat framing"
    return PromptTokens(chat_tokens(encoding, messages), CountSource.EXACT, method)
