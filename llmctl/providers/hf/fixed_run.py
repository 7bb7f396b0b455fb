"""A benchmark's run on a local model: an exact prompt length in, exactly N tokens out, each token stamped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from llmctl.domain import GenerationParams, StreamEvent
from llmctl.errors import UsageError

if TYPE_CHECKING:
    from llmctl.providers.hf.provider import HuggingFaceProvider

FILLER = (
    "The committee met on a grey Tuesday morning to review the harbour expansion plans. Engineers described "
    "the new breakwater, the dredging schedule and the cost of steel, while residents asked about noise, "
    "traffic and the old lighthouse that had guided fishing boats for more than a century. After lunch the "
    "discussion turned to tides, insurance, the migratory birds on the northern spit and the budget for "
    "the coming decade. "
)


def exact_prompt_ids(tokenizer: Any, count: int, text: str = FILLER) -> list[int]:
    """Exactly ``count`` token ids: BOS (when the model has one), then prose, cut at ``count``.

    Repeating the *ids* of one encoded passage (not the text) keeps the count exact
    whatever the tokenizer merges at the seams.
    """
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    body: list[int] = list(tokenizer.encode(text, add_special_tokens=False))
    if not body:
        raise UsageError("The model's tokenizer turns the benchmark prompt into no tokens.")
    ids = list(head)
    while len(ids) < count:
        ids.extend(body)
    return ids[:count]


def stream_fixed(
    provider: HuggingFaceProvider, prompt_ids: list[int], new_tokens: int, on_token: Callable[[], None]
) -> Iterator[StreamEvent]:
    """Greedy generation of exactly ``new_tokens`` (EOS does not stop it); ``on_token`` runs as each token's
    logits exist, on generate()'s thread, so first-token time is not delayed by decoding or streaming."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class StepClock(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            on_token()
            return scores

    params = GenerationParams(temperature=0, max_tokens=new_tokens)
    extra = {"min_new_tokens": new_tokens, "logits_processor": LogitsProcessorList([StepClock()])}
    return provider.stream_ids(prompt_ids, params, generate_kwargs=extra)
