"""Count a prompt's tokens before sending it, as exactly as each kind of model allows.

* Local (Hugging Face) models: exact, with the model's own tokenizer and chat template
  (the same ``prompt_token_ids`` generation uses); only the tokenizer is loaded.
* OpenAI models: exact and offline with tiktoken's encodings as shipped by ``bpe-openai``
  (tiktoken itself would download them), plus the chat framing OpenAI documents
  (3 tokens per message and 3 to prime the reply). A model with no known encoding (an
  OpenAI-compatible server's own model) gets an estimate.
* Anthropic models: the API's count-tokens endpoint when a key is configured; otherwise
  (or when the call fails) an estimate, labelled as such.

Estimates use the o200k_base encoding as a proxy for a tokenizer nobody ships.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from llmctl.domain import CountSource, Message
from llmctl.errors import LlmctlError
from llmctl.providers.base import ResolvedModel

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


@dataclass(frozen=True)
class TokenCount:
    """How many tokens a prompt is for a model, where the count came from, and what fits."""

    model: str
    provider: str
    tokens: int
    source: CountSource  # exact | provider | estimate
    method: str  # how it was counted, in words
    context_window: int | None
    note: str | None = None  # why it is only an estimate

    @property
    def remaining(self) -> int | None:
        return None if self.context_window is None else self.context_window - self.tokens


def count_tokens(resolved: ResolvedModel, messages: Sequence[Message]) -> TokenCount:
    """Count the tokens ``messages`` take as ``resolved``'s input (see the module docstring)."""
    if resolved.kind == "huggingface":
        return _count_local(resolved, messages)
    if resolved.kind == "llamacpp":
        return _count_gguf(resolved, messages)
    window = context_window(resolved)
    if resolved.kind == "anthropic":
        counted, note = _count_anthropic(resolved, messages)
        if counted is not None:
            return _result(resolved, counted, CountSource.PROVIDER, "Anthropic count-tokens API", window)
        return _estimate(resolved, messages, window, note)
    encoding = openai_encoding_name(resolved.model_id)
    if encoding is None:
        note = f"no tokenizer is known for {resolved.model_id!r}"
        return _estimate(resolved, messages, window, note)
    tokens = _chat_tokens(encoding, messages)
    return _result(resolved, tokens, CountSource.EXACT, f"{encoding} (bpe-openai) with OpenAI's chat framing", window)


def context_window(resolved: ResolvedModel) -> int | None:
    """The config's ``context_window`` for the alias, else the one genai-prices lists for hosted models."""
    model = resolved.model_settings
    if model is not None and model.context_window is not None:
        return model.context_window
    from llmctl.services.usage.pricing import listed_model_info

    info = listed_model_info(resolved)
    window = getattr(info, "context_window", None)
    return window if isinstance(window, int) else None


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


def _chat_tokens(encoding_name: str, messages: Sequence[Message]) -> int:
    total = TOKENS_TO_PRIME_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE + text_tokens(encoding_name, message.role)
        total += text_tokens(encoding_name, message.content)
    return total


def _result(
    resolved: ResolvedModel,
    tokens: int,
    source: CountSource,
    method: str,
    window: int | None,
    note: str | None = None,
) -> TokenCount:
    return TokenCount(resolved.display_name, resolved.provider_name, tokens, source, method, window, note)


def _estimate(resolved: ResolvedModel, messages: Sequence[Message], window: int | None, note: str | None) -> TokenCount:
    tokens = _chat_tokens(PROXY_ENCODING, messages)
    return _result(resolved, tokens, CountSource.ESTIMATE, f"the {PROXY_ENCODING} encoding as a proxy", window, note)


def _count_local(resolved: ResolvedModel, messages: Sequence[Message]) -> TokenCount:
    from llmctl.providers.hf.loading import load_tokenizer
    from llmctl.providers.hf.prompt import prompt_token_ids

    loaded = load_tokenizer(resolved)
    template = "chat template" if getattr(loaded.tokenizer, "chat_template", None) else "plain transcript"
    tokens = len(prompt_token_ids(loaded.tokenizer, messages))
    return _result(resolved, tokens, CountSource.EXACT, f"the model's tokenizer and {template}", loaded.context_window)


def _count_gguf(resolved: ResolvedModel, messages: Sequence[Message]) -> TokenCount:
    from llmctl.providers.llamacpp.provider import LlamaCppProvider

    provider = LlamaCppProvider(resolved)
    try:
        tokens = provider.count_prompt_tokens(messages)
        template = "GGUF chat template" if provider.header().chat_template else "plain transcript"
        method = f"llama.cpp's tokenizer and the {template}"
        return _result(resolved, tokens, CountSource.EXACT, method, provider.context_window())
    finally:
        provider.close()


def _count_anthropic(resolved: ResolvedModel, messages: Sequence[Message]) -> tuple[int | None, str]:
    """The count from the API, or ``None`` and why not."""
    from llmctl.config import AnthropicProviderSettings
    from llmctl.providers.hosted.credentials import resolve_api_key, scrub

    settings = resolved.provider_settings
    if not isinstance(settings, AnthropicProviderSettings):
        return None, "not an Anthropic provider"
    try:
        key = resolve_api_key(resolved.provider_name, settings)
    except LlmctlError as exc:
        return None, f"no API key ({exc.message})"
    try:
        import anthropic
    except ImportError:
        return None, "the anthropic package is not installed (pip install 'llmctl[anthropic]')"
    from llmctl.providers.hosted.base import Endpoint

    system = "\n\n".join(m.content for m in messages if m.role == "system")
    body: dict[str, Any] = {
        "model": resolved.model_id,
        "messages": [{"role": m.role, "content": m.content} for m in messages if m.role != "system"],
    }
    if system:
        body["system"] = system
    endpoint = Endpoint(resolved.provider_name, settings, key)
    try:
        with anthropic.Anthropic(**endpoint.client_options()) as client:
            return int(client.messages.count_tokens(**body).input_tokens), ""
    except anthropic.AnthropicError as exc:
        return None, f"the count-tokens API failed: {scrub(str(exc), key)}"
