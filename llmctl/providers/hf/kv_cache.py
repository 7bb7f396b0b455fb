"""A local model that keeps its KV cache between the turns of a conversation.

Every turn the whole conversation is templated to token ids (so a changed system
prompt, a retried reply or turns dropped to fit the context all just work); the
longest common prefix with the ids the cache already holds is kept, the cache is
cropped there, and ``generate`` processes only the tail. Matching on ids rather
than on messages also absorbs templating quirks: a reply re-templated is often
not token-for-token what the model generated (a re-tokenised word, the EOS
token, a trimmed newline), and the match simply stops where they differ.

With greedy decoding the replies are the same as without the cache; only the
work differs. ``Usage.cached_input_tokens`` reports how many prompt tokens were
reused (``input_tokens`` stays the whole prompt).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from llmctl.domain import CountSource, Finished, GenerationRequest, Message, StreamEvent, Usage, UsageUpdate
from llmctl.providers.base import PromptTokens, ResolvedModel
from llmctl.providers.hf.provider import HuggingFaceProvider


@dataclass(frozen=True)
class PrefillStats:
    """How a turn's prompt was processed: ``reused`` tokens came from the cache, ``processed`` were computed."""

    reused: int
    processed: int


def common_prefix_length(held: Sequence[int], wanted: Sequence[int]) -> int:
    n = 0
    for a, b in zip(held, wanted, strict=False):
        if a != b:
            break
        n += 1
    return n


class KVCacheProvider:
    """A HuggingFaceProvider for one conversation: same protocol, plus a KV cache kept across turns."""

    def __init__(self, inner: HuggingFaceProvider, *, reuse: bool = True) -> None:
        self._inner = inner
        self._reuse = reuse
        self._cache: Any = None  # transformers.DynamicCache
        self._held: list[int] = []  # the token ids whose keys/values the cache holds, in order
        self.last_prefill: PrefillStats | None = None

    @classmethod
    def open(cls, resolved: ResolvedModel, *, reuse: bool = True) -> KVCacheProvider:
        return cls(HuggingFaceProvider(resolved), reuse=reuse)

    @property
    def resolved(self) -> ResolvedModel:
        return self._inner.resolved

    @property
    def inner(self) -> HuggingFaceProvider:
        return self._inner

    @property
    def cached_tokens(self) -> int:
        """How many token ids the cache holds now."""
        return len(self._held)

    def prepare(self) -> None:
        self._inner.prepare()

    def context_window(self) -> int | None:
        return self._inner.context_window()

    def count_prompt_tokens(self, messages: Sequence[Message]) -> PromptTokens:
        """Exact: the templated prompt's length with the model's own tokenizer."""
        tokens = len(self._inner.prompt_ids(GenerationRequest(tuple(messages))))
        return PromptTokens(tokens, CountSource.EXACT, "the model's tokenizer and chat template")

    def close(self) -> None:
        self.reset()
        self._inner.close()

    def reset(self) -> None:
        """Forget the cache (the next turn processes its whole prompt)."""
        self._cache = None
        self._held = []

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        input_ids = self._inner.prompt_ids(request)
        if not self._reuse:
            self.last_prefill = PrefillStats(0, len(input_ids))
            yield from self._inner.stream_ids(input_ids, request.params)
            return

        try:
            reused = self._reuse_prefix(input_ids)
        except BaseException:
            self.reset()
            raise
        self.last_prefill = PrefillStats(reused, len(input_ids) - reused)
        generated: list[int] = []
        finished = False
        try:
            for event in self._inner.stream_ids(
                input_ids, request.params, generate_kwargs={"cache": self._cache}, on_ids=generated.extend
            ):
                if isinstance(event, UsageUpdate):
                    event = UsageUpdate(_with_reuse(event.usage, reused))
                elif isinstance(event, Finished):
                    event = Finished(_with_reuse(event.usage, reused), event.finish_reason)
                    finished = True
                yield event
        except (GeneratorExit, KeyboardInterrupt):
            # Interrupted: generation has stopped (stream_ids joins its thread); keep what the cache holds.
            self._settle(input_ids, generated)
            raise
        except BaseException:
            # A failed generate() may have left the cache half-updated; start clean next turn.
            self.reset()
            raise
        else:
            if finished:
                self._settle(input_ids, generated)
            else:
                self.reset()

    def _reuse_prefix(self, input_ids: list[int]) -> int:
        """Crop the cache to the longest prefix it shares with ``input_ids``; return that length.

        At least one token is always left to process: generate() needs input to produce the
        first logits from.
        """
        if self._cache is not None and self._cache.get_seq_length() != len(self._held):
            # Out of step (a generation stopped by a second Ctrl-C may have added a token late): start clean.
            self.reset()
        keep = min(common_prefix_length(self._held, input_ids), len(input_ids) - 1)
        if self._cache is not None and 0 < keep < len(self._held):
            keep = keep if self._crop(keep - len(self._held)) else 0
        if self._cache is None or keep == 0:
            self._cache = self._new_cache()
            keep = 0
        self._held = input_ids[:keep]
        return keep

    def _settle(self, input_ids: list[int], generated: list[int]) -> None:
        """After a turn: record which ids the cache now holds.

        generate() never runs the last sampled token through the model, so the cache is one
        short of prompt + output; after an interrupt it may hold ids we never received (they
        were still queued), so it is cropped back to what we know.
        """
        if self._cache is None:
            return
        known = [*input_ids, *generated]
        length = self._cache.get_seq_length()
        if length > len(known):
            if not self._crop(len(known) - length):
                self.reset()
                return
            length = len(known)
        self._held = known[:length]

    def _crop(self, tokens_to_remove: int) -> bool:
        """Drop the last ``-tokens_to_remove`` cached tokens; False when this cache cannot be rewound.

        Recurrent (linear-attention) states cannot be rewound at all, and a sliding-window layer
        not once it has slid past its window: then the caller starts from an empty cache.
        """
        if not getattr(self._cache, "is_croppable", True):
            return False
        try:
            self._cache.crop(tokens_to_remove)
        except (RuntimeError, ValueError):
            return False
        return True

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=self._inner.loaded.model.config)


def _with_reuse(usage: Usage, reused: int) -> Usage:
    return replace(usage, cached_input_tokens=reused)
