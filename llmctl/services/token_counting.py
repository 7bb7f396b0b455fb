"""Count a prompt's tokens before sending it, as exactly as each kind of model allows.

Each backend declares its counter in its spec (``prompt_counter``); what it cannot count is estimated
here, and labelled so. The counters today:

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

from collections.abc import Sequence
from dataclasses import dataclass

from llmctl.domain import CountSource, Message
from llmctl.providers.base import PromptTokens, ResolvedModel, Uncountable
from llmctl.providers.hosted.openai_tokens import PROXY_ENCODING, chat_tokens
from llmctl.providers.registry import import_target


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
    counted = _counted_by_backend(resolved, messages)
    if isinstance(counted, PromptTokens):
        window = counted.context_window if counted.context_window is not None else context_window(resolved)
        return _result(resolved, counted.tokens, counted.source, counted.method, window)
    return _estimate(resolved, messages, context_window(resolved), counted.reason)


def _counted_by_backend(resolved: ResolvedModel, messages: Sequence[Message]) -> PromptTokens | Uncountable:
    """The count the backend's declared counter gives; it is imported only now (it may need its SDK)."""
    target = resolved.spec.prompt_counter
    if target is None:
        return Uncountable(f"{resolved.spec.label} cannot count tokens")
    try:
        counter = import_target(target)
    except ImportError as exc:
        return Uncountable(f"{exc.name or exc} is not installed (pip install 'llmctl[{resolved.spec.extra}]')")
    counted: PromptTokens | Uncountable = counter(resolved, messages)
    return counted


def context_window(resolved: ResolvedModel) -> int | None:
    """The config's ``context_window`` for the alias, else the one genai-prices lists for hosted models."""
    model = resolved.model_settings
    if model is not None and model.context_window is not None:
        return model.context_window
    from llmctl.services.usage.pricing import listed_model_info

    info = listed_model_info(resolved)
    window = getattr(info, "context_window", None)
    return window if isinstance(window, int) else None


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
    tokens = chat_tokens(PROXY_ENCODING, messages)
    return _result(resolved, tokens, CountSource.ESTIMATE, f"the {PROXY_ENCODING} encoding as a proxy", window, note)
