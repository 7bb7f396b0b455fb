"""Opening a GGUF file with llama-cpp-python: the options it gets, its log kept (not printed), its vocabulary."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import MissingDependencyError, ProviderError
from llmctl.provider_specs import LlamaCppProviderSettings
from llmctl.providers.base import ResolvedModel
from llmctl.providers.llamacpp.gguf_file import GgufHeader
from llmctl.providers.llamacpp.machine import physical_cores

DEFAULT_N_CTX = 4096  # the model's own window when smaller; more costs KV-cache memory on every load
GGML_LOG_LEVEL_ERROR = 4  # ggml.h


@dataclass(frozen=True)
class LlamaCppOptions:
    threads: int
    n_ctx: int
    n_gpu_layers: int
    n_batch: int

    @classmethod
    def for_model(cls, resolved: ResolvedModel, header: GgufHeader) -> LlamaCppOptions:
        settings = resolved.provider_settings
        if not isinstance(settings, LlamaCppProviderSettings):
            raise TypeError("LlamaCppOptions are for llamacpp providers")
        alias_window = resolved.model_settings.context_window if resolved.model_settings else None
        trained = header.context_length
        n_ctx = settings.n_ctx or alias_window or min(trained or DEFAULT_N_CTX, DEFAULT_N_CTX)
        return cls(
            threads=settings.threads or physical_cores(),
            n_ctx=n_ctx,
            n_gpu_layers=settings.n_gpu_layers,
            n_batch=settings.n_batch,
        )


def llama_cpp_module() -> Any:
    """llama-cpp-python, imported on first use (``models info`` reads GGUF headers without it)."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependencyError(
            f"GGUF models need llama-cpp-python, which is not installed ({exc.name or exc}).",
            hint="Install it with: pip install 'llmctl[gguf]' (it compiles llama.cpp; see the README).",
        ) from None
    return llama_cpp


class _LlamaLog:
    """llama.cpp's log, kept instead of printed: its errors become the message of one ProviderError."""

    errors: list[str] = []  # noqa: RUF012 - one log per process, as llama.cpp has
    callback: Any = None

    @classmethod
    def install(cls) -> None:
        import llama_cpp

        if cls.callback is not None:
            return

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def keep(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
            if level == GGML_LOG_LEVEL_ERROR:
                cls.errors.append(text.decode("utf-8", errors="replace").strip())
                del cls.errors[:-20]

        cls.callback = keep  # a reference, or ctypes frees the callback llama.cpp still calls
        llama_cpp.llama_log_set(keep, ctypes.c_void_p(0))

    @classmethod
    def first_error(cls) -> str | None:
        """The first error since the last call, without its C function's name: the cause, not the aftermath
        ("unknown model architecture: 'x'", not "failed to load model")."""
        found = [line for line in cls.errors if line]
        cls.errors.clear()
        return found[0].split(": ", 1)[-1].removeprefix("error loading model: ") if found else None


class Vocab:
    """The tokenizer side of a loaded model, with the decode() IncrementalDecoder expects."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp

        self._llm = llm
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._is_eog = llama_cpp.llama_vocab_is_eog

    def token_text(self, token: int) -> str:
        import llama_cpp

        if token < 0:
            return ""
        return bytes(llama_cpp.llama_vocab_get_text(self._vocab, token)).decode("utf-8", errors="replace")

    def is_end(self, token: int) -> bool:
        return bool(self._is_eog(self._vocab, token))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        text: bytes = self._llm.detokenize(list(ids), special=not skip_special_tokens)
        return text.decode("utf-8", errors="replace")


def open_llama(path: Path, options: LlamaCppOptions, *, vocab_only: bool, name: str) -> Any:
    llama_cpp = llama_cpp_module()
    _LlamaLog.install()
    _LlamaLog.first_error()  # forget what an earlier load logged
    try:
        return llama_cpp.Llama(
            str(path),
            n_ctx=options.n_ctx,
            n_threads=options.threads,
            n_threads_batch=options.threads,
            n_gpu_layers=options.n_gpu_layers,
            n_batch=options.n_batch,
            vocab_only=vocab_only,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        reason = _LlamaLog.first_error() or str(exc)
        raise ProviderError(
            f"llama.cpp cannot load {name}: {reason}",
            hint="A file from an older or newer llama.cpp may need `pip install -U llama-cpp-python`.",
        ) from None


def warm_up(llm: Any) -> None:
    """One decode before the first request, as llama.cpp's own tools do: the first one in a process costs
    far more than the rest (thread pool, first touch of the mapped weights), and belongs to loading."""
    bos = llm.token_bos()
    llm.eval([bos if bos >= 0 else 0])
    llm.reset()
