"""``llmctl models load``: load a local model for real, through the same path ``generate`` uses, and report.

Before loading, the weights are estimated from the safetensors headers and compared with the
memory the chosen device has free; a load that clearly cannot fit is refused with the numbers
and the quantization that would fit, instead of swapping the machine to a halt.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.config import Settings
from llmctl.domain import GenerationParams, GenerationRequest, Message, human_bytes
from llmctl.errors import ProviderError, UsageError
from llmctl.hub.weights import (
    checkpoint_dtype,
    dtype_bytes,
    estimate_weights,
    precision_for,
    tensor_stats,
)
from llmctl.provider_specs import DType, Quantization
from llmctl.providers.base import ResolvedModel
from llmctl.providers.hf.model_config import read_model_config
from llmctl.providers.registry import resolve
from llmctl.services.models import hardware as hw
from llmctl.services.models.info import locate_local

DEFAULT_TEST_PROMPT = "Say hello in one short sentence."
DEFAULT_TEST_TOKENS = 32


@dataclass(frozen=True)
class FitCheck:
    """The estimate a load is judged by, against what the target device has free."""

    precision: str
    weights_bytes: int
    target: str  # "RAM", "cuda:0", "GPUs + RAM"
    available_bytes: int | None

    @property
    def fits(self) -> bool:
        return self.available_bytes is None or self.weights_bytes <= self.available_bytes


@dataclass(frozen=True)
class LoadReport:
    name: str
    location: str
    load_seconds: float  # reading the weights into the model, libraries already imported
    import_seconds: float  # importing torch, transformers (and bitsandbytes), paid once per process
    dtype: str
    quantization: str | None
    device_map: dict[str, str] | None
    devices: dict[str, int]  # device -> parameters (stored elements) placed there
    footprint_bytes: int
    estimate: FitCheck | None
    prompt: str
    sample_text: str
    generated_tokens: int | None
    first_token_seconds: float | None
    generation_seconds: float

    @property
    def tokens_per_second(self) -> float | None:
        if not self.generated_tokens or self.generation_seconds <= 0:
            return None
        return self.generated_tokens / self.generation_seconds

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["estimate"] = None if self.estimate is None else dict(self.estimate.__dict__, fits=self.estimate.fits)
        data["tokens_per_second"] = self.tokens_per_second
        return data


def with_overrides(
    resolved: ResolvedModel, *, quantize: Quantization | None, dtype: DType | None, device: str | None
) -> ResolvedModel:
    """``resolved`` with command-line loading options over its alias and provider settings."""
    return resolved.with_load_options(quantization=quantize, dtype=dtype, device_map=device)


def _effective(resolved: ResolvedModel) -> tuple[Quantization | None, str, str]:
    from llmctl.providers.hf.loading import LoadOptions

    options = LoadOptions.for_model(resolved)
    return options.quantization, options.dtype, options.device_map


def check_fit(resolved: ResolvedModel, machine: hw.Hardware | None = None) -> FitCheck | None:
    """Estimate the load's weights and what its device has free; None when there is nothing to estimate."""
    folder = locate_local(resolved).folder
    stats = tensor_stats(folder)
    if stats is None:
        return None
    quantization, dtype, device_map = _effective(resolved)
    stored = checkpoint_dtype(read_model_config(folder), stats)
    precision = precision_for(quantization, dtype, stored)
    effective_dtype = dtype if dtype != "auto" else (stored or "bfloat16")
    rest = dtype_bytes(effective_dtype)
    weights = estimate_weights(stats, precision, rest_bytes=rest)
    machine = machine or hw.detect(include_gpus=device_map != "cpu", gpu_free=True)
    target, available = _capacity(device_map, machine)
    return FitCheck(precision, weights, target, available)


def _capacity(device_map: str, machine: hw.Hardware) -> tuple[str, int | None]:
    if device_map == "cpu":
        return "RAM", machine.ram_available_bytes
    if device_map.startswith("cuda"):
        index = int(device_map.partition(":")[2] or 0)
        gpu = next((g for g in machine.gpus if g.index == index), None)
        if gpu is None:
            raise UsageError(
                f"There is no GPU {device_map} on this machine ({machine.gpu_note or f'{len(machine.gpus)} GPUs'}).",
                hint="Use --device cpu, or --device auto to place the model where it fits.",
            )
        return device_map, gpu.free_bytes if gpu.free_bytes is not None else gpu.total_bytes
    if machine.gpus and machine.ram_available_bytes is not None:  # "auto": GPUs first, the rest in RAM
        free = sum(g.free_bytes if g.free_bytes is not None else g.total_bytes for g in machine.gpus)
        return "GPUs + RAM", free + machine.ram_available_bytes
    return "RAM", machine.ram_available_bytes


def refusal(check: FitCheck, resolved: ResolvedModel, reference: str) -> ProviderError:
    """The error for a load that will not fit, naming a quantization that would."""
    folder = locate_local(resolved).folder
    stats = tensor_stats(folder)
    suggestion = None
    if stats is not None and check.available_bytes is not None:
        for precision, flag in (("8-bit", "8bit"), ("4-bit", "4bit")):
            needed = estimate_weights(stats, precision)
            if needed <= check.available_bytes and precision != check.precision:
                suggestion = (
                    f"{precision} needs about {human_bytes(needed)} and would fit: "
                    f"llmctl models load {reference} --quantize {flag}"
                )
                break
    hint = suggestion or "Not even 4-bit fits: free memory, use a machine with more, or pick a smaller model."
    return ProviderError(
        f"{reference} needs about {human_bytes(check.weights_bytes)} for its weights in {check.precision}, "
        f"but {check.target} has {human_bytes(check.available_bytes)} free.",
        hint=hint + " (--force tries anyway.)",
    )


def load_and_test(
    reference: str | None,
    settings: Settings,
    *,
    quantize: Quantization | None = None,
    dtype: DType | None = None,
    device: str | None = None,
    prompt: str = DEFAULT_TEST_PROMPT,
    max_new_tokens: int = DEFAULT_TEST_TOKENS,
    force: bool = False,
) -> LoadReport:
    """Load the model as ``generate`` would (with these overrides), measure it, and generate a few tokens."""
    resolved = resolve(reference, settings)
    if not resolved.spec.local:
        raise UsageError(
            f"{resolved.display_name} is a hosted model ({resolved.provider_name}); `models load` is for local models.",
            hint="Try it with: llmctl generate -m " + (reference or resolved.display_name) + ' "hello"',
        )
    if resolved.spec.model_files != "hf":
        raise UsageError(
            f"`models load` measures transformers models; {resolved.display_name} runs on {resolved.spec.label}.",
            hint=f"Time it with: llmctl bench {reference or resolved.display_name}",
        )
    resolved = with_overrides(resolved, quantize=quantize, dtype=dtype, device=device)
    name = reference or resolved.display_name
    started = time.perf_counter()
    check = check_fit(resolved)  # reads headers and (with GPUs possible) imports torch: before any weights
    if check is not None and not check.fits and not force:
        raise refusal(check, resolved, name)
    from llmctl.providers.hf.provider import HuggingFaceProvider
    from llmctl.services.generation import GenerationRun

    provider = HuggingFaceProvider(resolved)
    provider.preload_libraries()
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    provider.prepare()
    load_seconds = time.perf_counter() - started
    loaded = provider.loaded
    model = loaded.model
    device_map = getattr(model, "hf_device_map", None)  # set by accelerate when it spread the model
    devices: Counter[str] = Counter()
    for parameter in model.parameters():
        devices[str(parameter.device)] += parameter.numel()
    quantization, _, _ = _effective(resolved)
    footprint = int(model.get_memory_footprint())

    messages = (Message("user", prompt),)
    # One untimed token first: the first forward pass pays one-off costs (allocations, kernel selection).
    warmup = GenerationRun(provider, GenerationRequest(messages, GenerationParams(temperature=0.0, max_tokens=1)))
    "".join(warmup.deltas())
    request = GenerationRequest(messages, GenerationParams(temperature=0.0, max_tokens=max_new_tokens))
    run = GenerationRun(provider, request)
    text = "".join(run.deltas())
    result = run.result()
    provider.close()
    return LoadReport(
        name=name,
        location=str(Path(loaded.source)),
        load_seconds=load_seconds,
        import_seconds=import_seconds,
        dtype=str(getattr(model, "dtype", "unknown")).removeprefix("torch."),
        quantization=quantization,
        device_map={str(k): str(v) for k, v in device_map.items()} if isinstance(device_map, dict) else None,
        devices=dict(devices),
        footprint_bytes=footprint,
        estimate=check,
        prompt=prompt,
        sample_text=text,
        generated_tokens=result.completion.usage.output_tokens,
        first_token_seconds=result.timing.first_token_s,
        generation_seconds=result.timing.total_s,
    )
