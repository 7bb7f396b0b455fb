"""GGUF models through llama.cpp (llama-cpp-python), in this process, streamed token by token.

Counts are exact: input is the templated prompt's token ids from llama.cpp's own tokenizer,
output the number of tokens sampled. Generation runs on the calling thread, one ``llama_decode``
per token, so Ctrl-C (raised between two tokens) stops it at once and leaves the KV cache
consistent with ``n_tokens``.

A provider made ``for_chat`` keeps the KV cache between turns: each turn's prompt is matched
token by token against what the cache holds, the cache is cut where they differ and only the
rest is processed (``Usage.cached_input_tokens`` says how many were reused). The plain provider
processes every prompt whole, so ``bench`` and ``generate`` time the same work each run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.domain import (
    CountSource,
    Finished,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    Message,
    StreamEvent,
    Usage,
    UsageUpdate,
)
from llmctl.errors import ContextLengthError, MissingDependencyError
from llmctl.provider_specs import LlamaCppProviderSettings
from llmctl.providers.base import PromptTokens, ResolvedModel, Uncountable
from llmctl.providers.hf.kv_cache import common_prefix_length
from llmctl.providers.hf.provider import DEFAULT_MAX_NEW_TOKENS, LOCAL_DEFAULTS, IncrementalDecoder
from llmctl.providers.llamacpp import files
from llmctl.providers.llamacpp.gguf_file import GgufHeader, read_gguf_header
from llmctl.providers.llamacpp.llama import LlamaCppOptions, Vocab, open_llama, warm_up
from llmctl.providers.llamacpp.machine import available_memory, check_memory
from llmctl.providers.llamacpp.template import prompt_text

RANDOM_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: llama.cpp seeds the sampler at random


@dataclass
class _Loaded:
    llm: Any  # llama_cpp.Llama
    vocab: Vocab
    header: GgufHeader
    options: LlamaCppOptions
    vocab_only: bool


def count_prompt_tokens(resolved: ResolvedModel, messages: Sequence[Message]) -> PromptTokens | Uncountable:
    """The spec's counter (``tokens count``, ``compare``'s estimates): the vocabulary only, no weights."""
    provider = LlamaCppProvider(resolved)
    try:
        return provider.count_prompt_tokens(messages)
    except MissingDependencyError as exc:
        return Uncountable(exc.message)
    finally:
        provider.close()


class LlamaCppProvider:
    """One GGUF model, loaded once, for any number of requests."""

    unsupported_params: frozenset[str] = frozenset()
    accepts_images = False

    def __init__(self, resolved: ResolvedModel, *, reuse_kv: bool = False, shared: LlamaCppProvider | None = None):
        self._resolved = resolved
        self._reuse_kv = reuse_kv
        self._shared = shared  # a chat's provider uses (and loads) its parent's model
        self._loaded: _Loaded | None = None
        self._path: Path | None = None

    @property
    def resolved(self) -> ResolvedModel:
        return self._resolved

    def for_chat(self, *, reuse_kv: bool) -> LlamaCppProvider:
        """A provider for one conversation: the same model, the KV cache kept between turns when ``reuse_kv``."""
        return LlamaCppProvider(self._resolved, reuse_kv=reuse_kv, shared=self)

    @property
    def path(self) -> Path:
        if self._shared is not None:
            return self._shared.path
        if self._path is None:
            settings = self._resolved.provider_settings
            cache_dir = settings.cache_dir if isinstance(settings, LlamaCppProviderSettings) else None
            self._path = files.locate(self._resolved.model_id, cache_dir)
        return self._path

    def header(self) -> GgufHeader:
        if self._shared is not None:
            return self._shared.header()
        if self._loaded is not None:
            return self._loaded.header
        return read_gguf_header(self.path)

    def _load(self, *, vocab_only: bool = False) -> _Loaded:
        if self._shared is not None:
            return self._shared._load(vocab_only=vocab_only)
        if self._loaded is not None and (vocab_only or not self._loaded.vocab_only):
            return self._loaded
        header = read_gguf_header(self.path)
        options = LlamaCppOptions.for_model(self._resolved, header)
        name = self._resolved.display_name
        if not vocab_only and options.n_gpu_layers == 0:
            check_memory(name, header.tensor_bytes + header.kv_cache_bytes(options.n_ctx), available_memory())
        llm = open_llama(self.path, options, vocab_only=vocab_only, name=name)
        if not vocab_only:
            warm_up(llm)
        if self._loaded is not None:
            self._loaded.llm.close()
        self._loaded = _Loaded(llm, Vocab(llm), header, options, vocab_only)
        return self._loaded

    def prepare(self) -> None:
        self._load()

    def context_window(self) -> int | None:
        if self._shared is not None:
            return self._shared.context_window()
        if self._loaded is not None:
            return self._loaded.options.n_ctx
        return LlamaCppOptions.for_model(self._resolved, self.header()).n_ctx

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            return
        if self._loaded is not None:
            self._loaded.llm.close()
            self._loaded = None

    def prompt_ids(self, messages: Sequence[Message], *, vocab_only: bool = False) -> list[int]:
        loaded = self._load(vocab_only=vocab_only)
        vocab = loaded.vocab
        prompt = prompt_text(
            loaded.header.chat_template,
            messages,
            bos_token=vocab.token_text(loaded.llm.token_bos()),
            eos_token=vocab.token_text(loaded.llm.token_eos()),
            model=self._resolved.display_name,
        )
        # A template writes bos_token itself (transformers tokenizes its output without special tokens).
        ids: list[int] = loaded.llm.tokenize(prompt.text.encode("utf-8"), add_bos=not prompt.templated, special=True)
        return ids

    def count_prompt_tokens(self, messages: Sequence[Message]) -> PromptTokens:
        """Exact: the templated prompt's length with llama.cpp's tokenizer (the vocabulary alone is loaded
        when the weights are not)."""
        tokens = len(self.prompt_ids(messages, vocab_only=True))
        template = "GGUF chat template" if self.header().chat_template else "plain transcript"
        return PromptTokens(
            tokens, CountSource.EXACT, f"llama.cpp's tokenizer and the {template}", self.context_window()
        )

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        input_ids = self.prompt_ids(request.messages)
        yield from self.stream_ids(input_ids, request.params, schema=request.response_schema)

    def fixed_prompt_ids(self, count: int) -> list[int]:
        """Exactly ``count`` token ids (BOS, then prose's ids repeated): ``bench``'s prompt."""
        from llmctl.providers.hf.fixed_run import FILLER

        llm = self._load().llm
        body: list[int] = llm.tokenize(FILLER.encode("utf-8"), add_bos=False, special=False)
        ids = [llm.token_bos()] if llm.token_bos() >= 0 else []
        while body and len(ids) < count:
            ids.extend(body)
        return ids[:count]

    def stream_fixed(
        self, prompt_ids: list[int], new_tokens: int, on_token: Callable[[], None]
    ) -> Iterator[StreamEvent]:
        """Exactly ``new_tokens`` greedy tokens (past end tokens), ``on_token`` stamping each when sampled."""
        params = GenerationParams(temperature=0, max_tokens=new_tokens)
        return self.stream_ids(prompt_ids, params, until_max_tokens=True, on_token=on_token)

    def runtime_info(self) -> dict[str, str | int | None] | None:
        """Where and how the model runs (``llmctl ps``, bench); None until it is loaded."""
        if self._loaded is None:
            return None
        loaded = self._loaded
        options = loaded.options
        device = "cpu" if not options.n_gpu_layers else f"cpu + GPU ({options.n_gpu_layers} layers offloaded)"
        return {"device": f"{device}, llama.cpp", "dtype": loaded.header.quantization, "threads": options.threads}

    def stream_ids(
        self,
        input_ids: list[int],
        params: GenerationParams,
        *,
        schema: Mapping[str, Any] | None = None,
        until_max_tokens: bool = False,
        on_token: Callable[[], None] | None = None,
    ) -> Iterator[StreamEvent]:
        """Generate from prompt ids. ``until_max_tokens`` runs past end tokens (``bench`` times a fixed
        length); ``on_token`` hears each token the moment it is sampled, before it is decoded to text."""
        loaded = self._load()
        window = loaded.options.n_ctx
        if len(input_ids) >= window:
            raise ContextLengthError(
                len(input_ids),
                window,
                model=self._resolved.display_name,
                hint="Shorten the input, or raise n_ctx in [providers.llamacpp] (the model's own window is "
                f"{loaded.header.context_length or 'unknown'}).",
            )
        params = params.or_defaults(LOCAL_DEFAULTS)
        max_new = min(params.max_tokens or DEFAULT_MAX_NEW_TOKENS, window - len(input_ids))
        reused = self._reuse_prefix(loaded.llm, input_ids)
        cached = reused if self._reuse_kv else None
        yield UsageUpdate(Usage(len(input_ids), None, CountSource.EXACT, cached_input_tokens=cached))

        llm, vocab = loaded.llm, loaded.vocab
        llm.set_seed(params.seed % 2**32 if params.seed is not None else RANDOM_SEED)
        tokens = llm.generate(input_ids[reused:], reset=False, **_sampling(params, schema))
        decoder = IncrementalDecoder(vocab)
        generated = 0
        reason = FinishReason.LENGTH
        try:
            for token in tokens:
                if on_token is not None:
                    on_token()
                if vocab.is_end(token) and not until_max_tokens:
                    reason = FinishReason.STOP
                    break
                generated += 1
                delta = decoder.push([token])
                if delta is not None:
                    yield delta
                if generated >= max_new:
                    break
        except BaseException:
            tokens.close()
            if not self._reuse_kv:
                llm.reset()
            raise
        tokens.close()
        tail = decoder.flush()
        if tail is not None:
            yield tail
        yield Finished(Usage(len(input_ids), generated, CountSource.EXACT, cached_input_tokens=cached), reason)

    def _reuse_prefix(self, llm: Any, input_ids: list[int]) -> int:
        """Keep the cached tokens this prompt starts with (a chat's earlier turns); return how many.

        At least one prompt token is always processed: sampling needs the logits it produces.
        """
        import llama_cpp

        keep = 0
        if self._reuse_kv:
            held = llm.input_ids[: llm.n_tokens].tolist()
            keep = min(common_prefix_length(held, input_ids), len(input_ids) - 1)
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if keep < llm.n_tokens and (memory is None or not llama_cpp.llama_memory_seq_rm(memory, -1, keep, -1)):
            keep = 0  # a cache that cannot be cut (a recurrent model's): start clean
            llm.reset()
        llm.n_tokens = keep
        return keep


def _sampling(params: GenerationParams, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """llama.cpp's sampler doing what the params say and nothing more: greedy at temperature 0, else
    top-p then temperature (its default top-k 40 and min-p 0.05 are off, as in transformers' path)."""
    kwargs: dict[str, Any] = {"top_k": 0, "min_p": 0.0, "typical_p": 1.0, "repeat_penalty": 1.0}
    kwargs["temp"] = params.temperature if params.temperature is not None else 0.7
    kwargs["top_p"] = params.top_p if params.top_p is not None else 1.0
    if schema is not None:
        from llama_cpp.llama_grammar import LlamaGrammar

        kwargs["grammar"] = LlamaGrammar.from_json_schema(json.dumps(dict(schema)), verbose=False)
    return kwargs
