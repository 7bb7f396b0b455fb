"""Local Hugging Face models through transformers, streamed token by token.

Counts are exact: input is the templated prompt's token ids, output is the
number of ids the model generated (not a re-encoding of the text).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from llmctl.domain import (
    CountSource,
    Finished,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    StreamEvent,
    TextDelta,
    Usage,
    UsageUpdate,
)
from llmctl.errors import ContextLengthError, ProviderError, UsageError
from llmctl.providers.base import Provider, ResolvedModel
from llmctl.providers.hf import compiled
from llmctl.providers.hf.loading import LoadedModel, LoadOptions, load_model
from llmctl.providers.hf.prompt import prompt_token_ids

DEFAULT_MAX_NEW_TOKENS = 512
# Sampling for a local model when neither a flag nor the config's [defaults] sets it (hosted
# APIs get nothing and use their own). max_tokens unset: the model's generation_config, else 512.
LOCAL_DEFAULTS = GenerationParams(temperature=0.7, top_p=0.9)
_END = object()


class IncrementalDecoder:
    """Decode a growing list of token ids into text pieces, in time linear in the output.

    Each push decodes a short window only: the ids of the last emitted piece (context, so
    spaces and merges at the seam come out right) plus the ids not emitted yet; the new text
    is the window's text after the context's text. Re-decoding the whole answer on every
    token instead is quadratic: ~0.4 ms a token at 4,000 tokens, on the GIL the generating
    thread needs (benchmarks/local_generation.py). A trailing U+FFFD means a multi-byte
    character is still incomplete, so the piece waits for the next token.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._context = 0  # the window starts here: the ids of the last emitted piece
        self._read = 0  # ids before this are already emitted as text
        self._pending_tokens = 0

    def push(self, token_ids: Sequence[int]) -> TextDelta | None:
        self._ids.extend(token_ids)
        self._pending_tokens += len(token_ids)
        return self._advance(final=False)

    def flush(self) -> TextDelta | None:
        delta = self._advance(final=True)
        if delta is None and self._pending_tokens:
            delta, self._pending_tokens = TextDelta("", self._pending_tokens), 0
        return delta

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def _advance(self, *, final: bool) -> TextDelta | None:
        context = self._decode(self._ids[self._context : self._read])
        text = self._decode(self._ids[self._context :])
        if not final and text.endswith("\ufffd"):
            return None
        # Were the context re-normalised once more ids follow, its emitted text stands; only the tail is new.
        piece = text[len(context) :]
        if not piece:
            return None
        self._context, self._read = self._read, len(self._ids)
        delta = TextDelta(piece, self._pending_tokens)
        self._pending_tokens = 0
        return delta


def start_intra_op_pool() -> None:
    """Run one parallel torch op on the main thread, before generate() runs on a worker thread.

    With OpenMP (torch's CPU backend), when the process's first parallel region runs on a
    thread other than the main one, parallel regions on worker threads keep spin-waiting
    badly: on a busy 2-core machine generation ran 7x slower (10 instead of 72 tokens/s,
    benchmarks/README.md). A plain script never sees this: its first op runs on the main
    thread. This op costs microseconds.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    import torch

    torch.ones(1 << 16).add_(1)  # above ATen's grain size (32,768 elements): it runs in parallel


class _QueueStreamer:
    """transformers' streamer interface: receives new token ids from generate()."""

    def __init__(self, sink: queue.Queue[Any], prompt_length: int) -> None:
        self._sink = sink
        self._skip_prompt = True
        self._prompt_length = prompt_length

    def put(self, value: Any) -> None:
        ids = value.reshape(-1).tolist()
        if self._skip_prompt:
            # generate() first hands us the prompt; those are not output tokens.
            self._skip_prompt = False
            if len(ids) == self._prompt_length:
                return
        self._sink.put(ids)

    def end(self) -> None:
        pass


class HuggingFaceProvider:
    """A local model: loaded once, then used for any number of requests."""

    def __init__(self, resolved: ResolvedModel, loaded: LoadedModel | None = None) -> None:
        self._resolved = resolved
        self._loaded = loaded
        options = LoadOptions.for_model(resolved)
        if options.compile and options.quantization:
            raise UsageError(
                f"{resolved.display_name}: compiling does not go with {options.quantization} quantization "
                "(transformers cannot compile bitsandbytes models).",
                hint="Drop --compile / compile = true, or the quantization, for this model.",
            )
        self._compiles = options.compile
        self._compile_seconds: float | None = 0.0 if self._compiles else None

    @property
    def compiles(self) -> bool:
        """Whether decoding uses a static cache and torch.compile (``--compile`` / ``compile = true``)."""
        return self._compiles

    @property
    def compile_seconds(self) -> float | None:
        """Seconds spent compiling in this provider's calls so far; None: it does not compile, or torch cannot tell."""
        return self._compile_seconds

    def compile_cache_dir(self) -> Path | None:
        """Where torch keeps the compiled kernels (None when this provider does not compile)."""
        return compiled.compile_cache_dir() if self._compiles else None

    @property
    def resolved(self) -> ResolvedModel:
        return self._resolved

    @property
    def loaded(self) -> LoadedModel:
        if self._loaded is None:
            self._loaded = load_model(self._resolved)
            start_intra_op_pool()
        return self._loaded

    def prepare(self) -> None:
        _ = self.loaded

    def context_window(self) -> int | None:
        return self.loaded.context_window

    def close(self) -> None:
        self._loaded = None

    # What bench and `models load` report about the runtime (see runtime.py).
    def preload_libraries(self) -> None:
        from llmctl.providers.hf.runtime import import_libraries

        import_libraries(quantize=LoadOptions.for_model(self._resolved).quantization is not None)

    def runtime_info(self) -> dict[str, Any] | None:
        """Where and how the model runs (``llmctl ps``, bench); None until it is loaded."""
        from llmctl.providers.hf.runtime import runtime_info

        return None if self._loaded is None else runtime_info(self)

    def reset_peak_memory(self) -> None:
        from llmctl.providers.hf.runtime import reset_peak_memory

        reset_peak_memory()

    def peak_accelerator_memory(self) -> int | None:
        from llmctl.providers.hf.runtime import peak_accelerator_memory

        return peak_accelerator_memory()

    def fixed_prompt_ids(self, count: int) -> list[int]:
        """Exactly ``count`` prompt token ids (for bench)."""
        from llmctl.providers.hf.fixed_run import exact_prompt_ids

        return exact_prompt_ids(self.loaded.tokenizer, count)

    def stream_fixed(
        self, prompt_ids: list[int], new_tokens: int, on_token: Callable[[], None]
    ) -> Iterator[StreamEvent]:
        """Exactly ``new_tokens`` greedy tokens from ``prompt_ids``, ``on_token`` stamping each (for bench)."""
        from llmctl.providers.hf.fixed_run import stream_fixed

        return stream_fixed(self, prompt_ids, new_tokens, on_token)

    def for_chat(self, *, reuse_kv: bool) -> Provider:
        """A chat keeps the KV cache of the turns so far, and computes only each new turn's tokens."""
        from llmctl.providers.hf.kv_cache import KVCacheProvider

        return KVCacheProvider(self, reuse=reuse_kv)

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        return prompt_token_ids(self.loaded.tokenizer, request.messages, model=self._resolved.display_name)

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        input_ids = self.prompt_ids(request)
        yield from self.stream_ids(input_ids, request.params, generate_kwargs=self._schema_kwargs(request))

    def _schema_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        """With a response schema: a logits processor that keeps the answer valid JSON for it."""
        if request.response_schema is None:
            return {}
        from transformers import LogitsProcessorList

        from llmctl.providers.hf.constrained import json_schema_processor

        loaded = self.loaded
        eos = sorted(_eos_token_ids(loaded))
        vocab = int(loaded.model.get_output_embeddings().weight.shape[0])
        processor = json_schema_processor(loaded.tokenizer, vocab, eos, request.response_schema)
        # Stop at every end token the grammar allows, not only generation_config's.
        return {"logits_processor": LogitsProcessorList([processor]), "eos_token_id": eos}

    def stream_ids(
        self,
        input_ids: list[int],
        params: GenerationParams,
        *,
        generate_kwargs: dict[str, Any] | None = None,
        on_ids: Callable[[list[int]], None] | None = None,
    ) -> Iterator[StreamEvent]:
        """Generate from prompt ids; ``generate_kwargs`` lets callers pass e.g. a KV cache.

        ``on_ids`` gets each batch of generated token ids as it arrives (before its text is
        yielded), so a caller that keeps a KV cache knows which ids it holds even after an interrupt.
        """
        loaded = self.loaded
        params = params.or_defaults(LOCAL_DEFAULTS)
        window = loaded.context_window
        if window is not None and len(input_ids) >= window:
            raise ContextLengthError(len(input_ids), window, model=self._resolved.display_name)
        max_new = params.max_tokens or _default_max_new_tokens(loaded)
        if window is not None:
            max_new = min(max_new, window - len(input_ids))
        input_usage = Usage(input_tokens=len(input_ids), source=CountSource.EXACT)
        yield UsageUpdate(input_usage)

        extra = dict(generate_kwargs or {})
        # A caller's own cache (chat's KV reuse across turns) is dynamic: that call decodes eagerly.
        compiling = self._compiles and "cache" not in extra
        if compiling:
            compiled.use_compile_cache()  # here, not at load: the weights may come loaded already
            length = compiled.static_cache_length(len(input_ids), max_new, window)
            extra = compiled.compiled_generate_kwargs(loaded.model, cache_length=length) | extra
        compile_before = compiled.compile_seconds_so_far() if compiling else None
        run = _GenerationRun(loaded, input_ids, params, max_new, extra)
        decoder = IncrementalDecoder(loaded.tokenizer)
        generated: list[int] = []
        try:
            for ids in run.token_batches():
                generated.extend(ids)
                if on_ids is not None:
                    on_ids(ids)
                delta = decoder.push(ids)
                if delta is not None:
                    yield delta
        finally:
            run.stop()
            if compiling:
                self._add_compile_time(compile_before)
        tail = decoder.flush()
        if tail is not None:
            yield tail
        eos_ids = _eos_token_ids(loaded)
        if generated and generated[-1] in eos_ids:
            reason = FinishReason.STOP
        elif len(generated) >= max_new:
            reason = FinishReason.LENGTH
        else:
            reason = FinishReason.STOP
        yield Finished(
            Usage(input_tokens=len(input_ids), output_tokens=len(generated), source=CountSource.EXACT),
            reason,
        )

    def _add_compile_time(self, before: float | None) -> None:
        after = compiled.compile_seconds_so_far()
        if before is None or after is None or self._compile_seconds is None:
            self._compile_seconds = None
        else:
            self._compile_seconds += max(0.0, after - before)


def _default_max_new_tokens(loaded: LoadedModel) -> int:
    configured = getattr(loaded.model.generation_config, "max_new_tokens", None)
    return configured if isinstance(configured, int) and configured > 0 else DEFAULT_MAX_NEW_TOKENS


def _eos_token_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    for source in (loaded.model.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, list):
            ids.update(int(i) for i in source)
    return ids


def sampling_kwargs(params: GenerationParams) -> dict[str, Any]:
    """generate() arguments for our params: greedy when temperature is 0."""
    if params.temperature is not None and params.temperature == 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    kwargs: dict[str, Any] = {"do_sample": True}
    if params.temperature is not None:
        kwargs["temperature"] = params.temperature
    if params.top_p is not None:
        kwargs["top_p"] = params.top_p
    return kwargs


class _GenerationRun:
    """One model.generate() call on a worker thread, feeding a queue we read from.

    A thread keeps the consumer responsive: Ctrl-C reaches the main thread at
    once, and ``stop()`` ends generation at the next token.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        input_ids: list[int],
        params: GenerationParams,
        max_new_tokens: int,
        extra: dict[str, Any],
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(loaded, input_ids, params, max_new_tokens, extra), daemon=True
        )
        self._thread.start()

    def _run(
        self,
        loaded: LoadedModel,
        input_ids: list[int],
        params: GenerationParams,
        max_new_tokens: int,
        extra: dict[str, Any],
    ) -> None:
        try:
            import torch
            from transformers import StoppingCriteria, StoppingCriteriaList

            stop_event = self._stop

            class _StopOnRequest(StoppingCriteria):
                def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                    return torch.full((input_ids.shape[0],), stop_event.is_set(), dtype=torch.bool)

            if params.seed is not None:
                torch.manual_seed(params.seed)
            model = loaded.model
            ids = torch.tensor([input_ids], dtype=torch.long, device=model.device)
            pad = loaded.model.generation_config.pad_token_id
            if pad is None:
                pad = loaded.tokenizer.pad_token_id
            if pad is None:
                eos = sorted(_eos_token_ids(loaded))
                pad = eos[0] if eos else None
            with torch.inference_mode():
                model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=max_new_tokens,
                    streamer=_QueueStreamer(self._queue, len(input_ids)),
                    stopping_criteria=StoppingCriteriaList([_StopOnRequest()]),
                    pad_token_id=pad,
                    **sampling_kwargs(params),
                    **extra,
                )
        except BaseException as exc:
            self._queue.put(exc)
        finally:
            self._queue.put(_END)

    def token_batches(self) -> Iterator[list[int]]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise ProviderError(f"Local generation failed: {item}") from item
            yield item

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
