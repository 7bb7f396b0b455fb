"""``llmctl models info``: what a model is and what it needs, without loading its weights."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.config import DEMO_MODEL_ALIAS, Settings
from llmctl.errors import ModelNotFoundError
from llmctl.hub.cache import cached_snapshot, folder_file_sizes, hub_cache_dir
from llmctl.hub.weights import (
    PRECISIONS,
    TensorStats,
    checkpoint_dtype,
    estimate_weights,
    tensor_stats,
)
from llmctl.paths import demo_model_dir
from llmctl.provider_specs import cache_dir_of, quantization_of
from llmctl.providers.base import ResolvedModel
from llmctl.providers.hf.folder import missing_weights
from llmctl.providers.hf.model_config import (
    architecture_from_config,
    checkpoint_quantization,
    context_window_from_config,
    read_json,
    read_model_config,
)
from llmctl.providers.registry import resolve
from llmctl.redaction import redact
from llmctl.services.models import hardware as hw
from llmctl.services.models.precision import cpu_flags, precision_advice

CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def chat_template_source(folder: Path) -> str | None:
    """Where the model's chat template lives, or None when it has none."""
    for name in CHAT_TEMPLATE_FILES:
        if (folder / name).is_file():
            return name
    if (folder / "additional_chat_templates").is_dir():
        return "additional_chat_templates/"
    if read_json(folder / "tokenizer_config.json").get("chat_template"):
        return "tokenizer_config.json"
    return None


@dataclass(frozen=True)
class EstimateRow:
    precision: str
    weights_bytes: int
    needed_bytes: int  # weights plus runtime headroom
    fits: dict[str, bool]  # device ("ram", "cuda:0", ...) -> does it fit that device's total memory

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def estimate_rows(stats: TensorStats, machine: hw.Hardware | None) -> list[EstimateRow]:
    from llmctl.hub.weights import RUNTIME_OVERHEAD

    rows = []
    for precision in PRECISIONS:
        weights = estimate_weights(stats, precision)
        needed = int(weights * RUNTIME_OVERHEAD)
        fits: dict[str, bool] = {}
        if machine is not None:
            if machine.ram_total_bytes is not None:
                fits["ram"] = needed <= machine.ram_total_bytes
            for gpu in machine.gpus:
                fits[gpu.device] = needed <= gpu.total_bytes
            if len(machine.gpus) > 1:
                fits["all gpus"] = needed <= sum(g.total_bytes for g in machine.gpus)
        rows.append(EstimateRow(precision, weights, needed, fits))
    return rows


@dataclass(frozen=True)
class ModelDetails:
    """Everything ``models info`` shows; unknown values are None."""

    name: str
    provider: str
    kind: str
    model_id: str
    source: str  # built-in | folder | hf-cache | hosted
    location: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    architecture: str | None = None
    model_type: str | None = None
    parameters: int | None = None
    quantizable_parameters: int | None = None
    parameters_by_dtype: dict[str, int] = field(default_factory=dict)
    checkpoint_dtype: str | None = None
    checkpoint_quantization: str | None = None
    configured_quantization: str | None = None
    context_window: int | None = None
    has_chat_template: bool | None = None
    chat_template_source: str | None = None
    files: list[tuple[str, int]] = field(default_factory=list)
    size_bytes: int | None = None
    estimates: list[EstimateRow] = field(default_factory=list)
    hardware: hw.Hardware | None = None
    input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None
    notes: list[str] = field(default_factory=list)
    precision_here: str | None = None  # the precision this machine's hardware favours, and why

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["files"] = [{"path": p, "size_bytes": s} for p, s in self.files]
        data["estimates"] = [e.to_json() for e in self.estimates]
        data["hardware"] = self.hardware.to_json() if self.hardware else None
        return data


@dataclass(frozen=True)
class LocalModel:
    """A Hugging Face model's folder on disk and how it got there."""

    folder: Path
    source: str  # built-in | folder | hf-cache
    repo_id: str | None = None
    revision: str | None = None


def locate_local(resolved: ResolvedModel) -> LocalModel:
    """The folder of a local model: the demo, a folder, or a downloaded repo's snapshot."""
    if resolved.alias == DEMO_MODEL_ALIAS and resolved.model_settings is None:
        return LocalModel(demo_model_dir(), "built-in")
    folder = resolved.local_folder
    if folder is not None:
        return LocalModel(folder, "folder")
    snapshot = cached_snapshot(hub_cache_dir(cache_dir_of(resolved.provider_settings)), resolved.model_id)
    return LocalModel(snapshot, "hf-cache", resolved.model_id, snapshot.name)


def configured_quantization(resolved: ResolvedModel) -> str | None:
    model_q = resolved.model_settings.quantization if resolved.model_settings else None
    return model_q or quantization_of(resolved.provider_settings)


def describe_local(resolved: ResolvedModel, *, machine: hw.Hardware | None) -> ModelDetails:
    local = locate_local(resolved)
    folder = local.folder
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(
            f"{folder} has no config.json: it is not a Hugging Face model folder"
            + (" (or its download is incomplete)." if local.source == "hf-cache" else "."),
            hint=f"Run `llmctl models download {local.repo_id}` to finish it." if local.repo_id else None,
        )
    config = read_model_config(folder)
    stats = tensor_stats(folder)
    files = folder_file_sizes(folder)
    notes = []
    missing = missing_weights(folder)
    if missing:
        shown = ", ".join(missing[:3])
        notes.append(
            f"Incomplete download: {shown} missing; run `llmctl models download {local.repo_id}` again."
            if local.repo_id
            else f"No model weights in the folder ({shown} missing)."
        )
    quantized_checkpoint = checkpoint_quantization(config)
    if stats is None:
        stats = architecture_stats(folder, config)
        pickles = [p for p, _ in files if p.endswith((".bin", ".pt", ".pth"))]
        weights_note = f" (pickle weights: {', '.join(pickles[:3])})" if pickles else ""
        if stats is None:
            notes.append(f"No safetensors weights{weights_note}: parameter count and memory estimates unknown.")
        else:
            notes.append(
                f"No safetensors weights{weights_note}: the parameter count is the architecture's, "
                "built from config.json on the meta device (no weights read)."
            )
    elif quantized_checkpoint:
        notes.append(
            f"The checkpoint is already quantized ({quantized_checkpoint}): the parameter count is of the stored "
            "(packed) tensors and the estimates below are rough."
        )
    template = chat_template_source(folder)
    window = resolved.model_settings.context_window if resolved.model_settings else None
    return ModelDetails(
        name=resolved.display_name,
        provider=resolved.provider_name,
        kind=resolved.kind,
        model_id=local.repo_id or str(folder),
        source=local.source,
        location=str(folder),
        repo_id=local.repo_id,
        revision=local.revision,
        architecture=architecture_from_config(config),
        model_type=config.get("model_type"),
        parameters=stats.parameters if stats else None,
        quantizable_parameters=stats.quantizable if stats else None,
        parameters_by_dtype=dict(stats.by_dtype) if stats else {},
        checkpoint_dtype=checkpoint_dtype(config, stats),
        checkpoint_quantization=quantized_checkpoint,
        configured_quantization=configured_quantization(resolved),
        context_window=window or context_window_from_config(config),
        has_chat_template=template is not None,
        chat_template_source=template,
        files=files,
        size_bytes=sum(size for _, size in files),
        estimates=estimate_rows(stats, machine) if stats else [],
        hardware=machine,
        notes=notes,
        precision_here=precision_advice(machine, cpu_flags(), resolved.display_name),
    )


# The config's word for a dtype -> the safetensors header's, so both sources count alike.
_HEADER_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64"}


def architecture_stats(folder: Path, config: Mapping[str, Any]) -> TensorStats | None:
    """Parameter counts from the architecture alone, when the folder has no readable weights."""
    from llmctl.providers.hf.architecture import parameter_shapes

    shapes = parameter_shapes(folder)
    if not shapes:
        return None
    dtype = _HEADER_DTYPES.get(str(checkpoint_dtype(config, None)), "BF16")
    header = {name: {"shape": shape, "dtype": dtype} for name, shape in shapes.items()}
    stats = TensorStats.from_headers({"config.json": header})
    return TensorStats(stats.parameters, stats.quantizable, stats.by_dtype, files=())


def describe_hosted(resolved: ResolvedModel) -> ModelDetails:
    from llmctl.services.token_counting import context_window
    from llmctl.services.usage.pricing import price_for

    price = price_for(resolved)
    window = context_window(resolved)  # the config's, else the one genai-prices lists (as `tokens count` uses)
    base_url = getattr(resolved.provider_settings, "base_url", None)
    return ModelDetails(
        name=resolved.display_name,
        provider=resolved.provider_name,
        kind=resolved.kind,
        model_id=resolved.model_id,
        source="hosted",
        location=redact(base_url) if base_url else None,
        context_window=window,
        input_price_per_mtok=price.input_per_mtok if price else None,
        output_price_per_mtok=price.output_per_mtok if price else None,
        notes=[] if price else ["Price unknown: set input_price_per_mtok / output_price_per_mtok in the config."],
    )


def describe(reference: str | None, settings: Settings, *, machine: hw.Hardware | None = None) -> ModelDetails:
    """Details of the model ``reference`` names (alias, demo, folder, hf/ORG/NAME, or a hosted model)."""
    resolved = resolve(reference, settings)
    if resolved.spec.model_files is None:
        return describe_hosted(resolved)
    if resolved.spec.model_files == "gguf":
        from llmctl.services.models.gguf import describe_gguf

        return describe_gguf(resolved, machine=machine if machine is not None else hw.detect())
    return describe_local(resolved, machine=machine if machine is not None else hw.detect())
