"""Opt-in faster decoding: a static KV cache and ``torch.compile`` (``--compile`` / ``compile = true``).

transformers compiles the model's forward pass for the decode steps when the cache is static
(prefill stays eager, so prompts of any length cost no recompilation). Three choices here:

- The static cache is sized in buckets of ``CACHE_BUCKET`` tokens, not to each call's exact
  length: a compiled graph is specialised to the cache's shape, so calls whose prompt plus
  answer fit the same bucket reuse it instead of compiling again. A bigger bucket would mean
  fewer compiles but more memory read per decoded token (attention reads the whole cache).
- On a CPU transformers does not compile by itself; ``_compile_all_devices`` asks it to, with
  inductor's default mode (``reduce-overhead`` means CUDA graphs, which a CPU has not).
- Compiled code is cached on disk by torch (inductor's FX-graph and AOT caches) in
  ``$TORCHINDUCTOR_CACHE_DIR``; unless the user set that, llmctl points it at
  ``$LLMCTL_HOME/torch-compile`` instead of torch's default in the temp folder, which a reboot empties.
  A later process with the same model and shapes compiles again, but much faster, from that cache.

Compile time is read from torch's own timer of frame compilation (dynamo + inductor), so what
is reported is the compiling, not the generating.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llmctl.paths import data_home

CACHE_BUCKET = 256
INDUCTOR_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"


def compile_cache_dir() -> Path:
    """Where compiled kernels are kept: ``$TORCHINDUCTOR_CACHE_DIR`` if the user set it, else in ``$LLMCTL_HOME``."""
    configured = os.environ.get(INDUCTOR_CACHE_ENV)
    if configured and configured != _torch_default_cache_dir():
        return Path(configured).expanduser()
    return data_home() / "torch-compile"


def use_compile_cache() -> Path:
    """Point torch's inductor cache at ``compile_cache_dir()``; torch reads the variable whenever it compiles.

    Importing ``torch._inductor.config`` writes torch's default (the temp folder) into the variable,
    so that value is taken for unset, not for the user's choice.
    """
    folder = compile_cache_dir()
    os.environ[INDUCTOR_CACHE_ENV] = str(folder)
    return folder


def _torch_default_cache_dir() -> str | None:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:
        return None
    return os.path.abspath(default_cache_dir())


def static_cache_length(prompt_tokens: int, max_new_tokens: int, context_window: int | None) -> int:
    """The static cache's length: what the call needs, rounded up to a bucket, within the context window."""
    needed = prompt_tokens + max_new_tokens
    bucketed = -(-needed // CACHE_BUCKET) * CACHE_BUCKET
    if context_window is not None:
        bucketed = min(bucketed, max(context_window, needed))
    return bucketed


def compiled_generate_kwargs(model: Any, *, cache_length: int) -> dict[str, Any]:
    """generate() arguments for static-cache, compiled decoding of ``model``."""
    from transformers import CompileConfig

    on_cuda = model.device.type == "cuda"
    config = CompileConfig(fullgraph=False, mode="reduce-overhead" if on_cuda else "default")
    if not on_cuda:
        config._compile_all_devices = True  # type: ignore[assignment]  # transformers' switch for other devices
    return {"cache_implementation": "static", "compile_config": config, "max_cache_len": cache_length}


def compile_seconds_so_far() -> float | None:
    """Seconds this process has spent compiling with torch.compile, by torch's own timer; None if unknown."""
    try:
        from torch._dynamo.utils import calculate_time_spent
    except ImportError:
        return None
    try:
        return float(calculate_time_spent().get("entire_frame_compile", 0.0))
    except Exception:  # a private API: if its shape changes, the figure is unknown, never wrong
        return None
