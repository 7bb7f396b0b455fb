"""Constrained decoding for local models: every sampled token keeps the answer valid for a JSON schema.

llguidance (Microsoft's grammar engine, a Rust core with no Python dependencies) compiles
the schema to a grammar over the model's own tokenizer; before each step a logits
processor masks every token that would leave the grammar, so the model can only write
JSON that validates. xgrammar needs triton (hundreds of MB) and outlines a dozen packages;
llguidance is one 3 MB wheel and works on the CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmctl.errors import ProviderError, UsageError


def json_schema_processor(tokenizer: Any, vocab_size: int, eos_ids: Sequence[int], schema: Mapping[str, Any]) -> Any:
    """A transformers ``LogitsProcessor`` that only lets through tokens ``schema`` allows."""
    try:
        import llguidance
        import llguidance.hf
        import llguidance.torch
    except ImportError:
        raise UsageError(
            "--schema on a local model needs llguidance.", hint="pip install 'llmctl[local]' (it includes llguidance)."
        ) from None
    import torch
    from transformers import LogitsProcessor

    # Plain JSON as json.dumps writes it: no runs of tabs and newlines between tokens.
    layout: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
    grammar = llguidance.LLMatcher.grammar_from_json_schema(dict(schema), defaults=layout)
    ll_tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=list(eos_ids))
    matcher = llguidance.LLMatcher(ll_tokenizer, grammar, log_level=0)
    if matcher.is_error():
        raise UsageError(f"The JSON schema cannot be used for constrained decoding: {matcher.get_error()}")
    bitmask = llguidance.torch.allocate_token_bitmask(1, ll_tokenizer.vocab_size)

    class JsonSchemaLogits(LogitsProcessor):
        def __init__(self) -> None:
            self._prompt_length: int | None = None

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if self._prompt_length is None:
                self._prompt_length = int(input_ids.shape[1])
            elif not matcher.consume_token(int(input_ids[0, -1])):
                raise ProviderError(f"Constrained decoding went off the schema: {matcher.get_error()}")
            llguidance.torch.fill_next_token_bitmask(matcher, bitmask, 0)
            masked = scores.to(torch.float32)
            llguidance.torch.apply_token_bitmask_inplace(masked, bitmask.to(masked.device))
            return masked.to(scores.dtype)

    return JsonSchemaLogits()
