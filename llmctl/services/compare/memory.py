"""Will a local model fit this machine? ``models info``'s estimate, at the precision it will load in."""

from __future__ import annotations

from dataclasses import dataclass

from llmctl.errors import LlmctlError
from llmctl.hub.weights import precision_for
from llmctl.provider_specs import dtype_of
from llmctl.providers.base import ResolvedModel
from llmctl.services.models import hardware
from llmctl.services.models.info import describe_local


@dataclass(frozen=True)
class MemoryFit:
    precision: str  # "fp32", "fp16/bf16", "8-bit", "4-bit"
    needed_bytes: int  # weights plus runtime headroom
    fits: bool | None  # on any device of this machine; None when the machine's memory is unknown
    devices: tuple[str, ...] = ()  # the devices it fits ("ram", "cuda:0")


def memory_fit(resolved: ResolvedModel, machine: hardware.Hardware | None = None) -> MemoryFit | None:
    """The estimate for a local model at its configured precision; ``None`` when it cannot be made."""
    try:
        details = describe_local(resolved, machine=machine or hardware.detect(include_gpus=True))
    except (LlmctlError, OSError, ValueError):
        return None  # the call itself will say what is wrong with the model
    model_dtype = resolved.model_settings.dtype if resolved.model_settings else None
    provider_dtype = dtype_of(resolved.provider_settings)
    precision = precision_for(details.configured_quantization, model_dtype or provider_dtype, details.checkpoint_dtype)
    for row in details.estimates:
        if row.precision == precision:
            devices = tuple(device for device, fits in row.fits.items() if fits)
            return MemoryFit(precision, row.needed_bytes, bool(devices) if row.fits else None, devices)
    return None
