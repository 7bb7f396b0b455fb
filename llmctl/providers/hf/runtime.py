"""What a loaded transformers model runs on, for bench and `models load`: the torch side of those reports."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmctl.providers.hf.provider import HuggingFaceProvider


def import_libraries(*, quantize: bool = False) -> None:
    """Import the local-model stack now, so that a load timed next times only the load."""
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # it warns at import about optional CPU kernels
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401

        if quantize:
            import bitsandbytes  # noqa: F401
    except ImportError:
        pass  # load_model says which package is missing and how to install it


def runtime_info(provider: HuggingFaceProvider) -> dict[str, Any]:
    """Device (with the GPU's name), dtype, quantization, memory, window and torch's threads of a loaded model."""
    import torch

    from llmctl.providers.hf.loading import LoadOptions

    loaded = provider.loaded
    model = loaded.model
    device_map = getattr(model, "hf_device_map", None)
    devices = sorted({str(d) for d in device_map.values()}) if isinstance(device_map, dict) else []
    device = ", ".join(devices) if len(devices) > 1 else str(model.device)
    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"{device} ({torch.cuda.get_device_name(model.device)})"
    footprint = getattr(model, "get_memory_footprint", None)
    return {
        "device": device,
        "dtype": str(model.dtype).removeprefix("torch."),
        "quantization": LoadOptions.for_model(provider.resolved).quantization,
        "memory_bytes": int(footprint()) if callable(footprint) else None,
        "context_window": loaded.context_window,
        "threads": torch.get_num_threads(),
    }


def reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_accelerator_memory() -> int | None:
    """Bytes the GPU held at most since the last reset; None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    peak = int(torch.cuda.max_memory_allocated())
    return peak or None
