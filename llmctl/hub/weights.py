"""What a model's weights hold and need, read from safetensors headers (no torch, no weights loaded).

A safetensors file starts with an 8-byte little-endian header length and a JSON header that
gives every tensor's dtype and shape, so the parameter count of a 70B model is a few
kilobytes of reading. Memory estimates follow what transformers + bitsandbytes actually do:
8-bit and 4-bit quantize the linear layers only; embeddings, the output head and norms
stay in 16-bit.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"

DTYPE_BYTES: dict[str, float] = {
    "F64": 8, "I64": 8, "U64": 8,
    "F32": 4, "I32": 4, "U32": 4,
    "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
    "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1,
    "F6_E2M3": 0.75, "F6_E3M2": 0.75, "F4": 0.5,
}  # fmt: skip
# torch's names (what a config.json's "dtype"/"torch_dtype" and --dtype say) for the safetensors ones.
TORCH_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}
_SAFETENSORS_NAMES = {torch_name: name for name, torch_name in TORCH_NAMES.items()}

# Tensors bitsandbytes leaves alone: embeddings and the output head (transformers keeps them unquantized).
_UNQUANTIZED_MARKERS = ("embed", "wte", "wpe", "lm_head", "embed_out", "tok_embeddings", "shared.weight")
# Runtime headroom over the weights (activations, KV cache at a moderate context, allocator slack).
RUNTIME_OVERHEAD = 1.2
BNB_4BIT_BLOCK = 64  # one fp32 absmax per 64 weights (nf4 without double quantization)


class SafetensorsHeaderError(ValueError):
    """A file that is not a readable safetensors file."""


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file: tensor name -> {dtype, shape, data_offsets}."""
    try:
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) != 8:
                raise SafetensorsHeaderError(f"{path.name}: too short to be a safetensors file")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES:
                raise SafetensorsHeaderError(f"{path.name}: header of {length} bytes is not plausible")
            raw = handle.read(length)
    except OSError as exc:
        raise SafetensorsHeaderError(f"{path.name}: {exc}") from exc
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise SafetensorsHeaderError(f"{path.name}: header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise SafetensorsHeaderError(f"{path.name}: header is not a JSON object")
    return header


def is_quantizable(name: str, shape: list[int]) -> bool:
    """Would bitsandbytes quantize this tensor? (A linear layer's weight matrix.)"""
    if len(shape) < 2 or not name.endswith(".weight"):
        return False
    lowered = name.lower()
    return not any(marker in lowered for marker in _UNQUANTIZED_MARKERS)


@dataclass(frozen=True)
class TensorStats:
    """Parameter counts of one checkpoint, from its headers."""

    parameters: int
    quantizable: int  # in linear weight matrices (what 8-bit / 4-bit shrink)
    by_dtype: Mapping[str, int] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    @property
    def main_dtype(self) -> str | None:
        return max(self.by_dtype, key=lambda k: self.by_dtype[k]) if self.by_dtype else None

    @classmethod
    def from_headers(cls, headers: Mapping[str, Mapping[str, Any]]) -> TensorStats:
        """From file name -> header dicts (local files, or headers fetched from the Hub)."""
        total = quantizable = 0
        by_dtype: dict[str, int] = {}
        for header in headers.values():
            for name, info in header.items():
                if name == "__metadata__" or not isinstance(info, Mapping):
                    continue
                shape = [int(d) for d in info.get("shape", [])]
                count = math.prod(shape)
                dtype = str(info.get("dtype", "?"))
                total += count
                by_dtype[dtype] = by_dtype.get(dtype, 0) + count
                if is_quantizable(name, shape):
                    quantizable += count
        return cls(total, quantizable, by_dtype, tuple(sorted(headers)))


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files transformers would load from ``folder`` (index first, then the single file)."""
    index = folder / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        except (OSError, ValueError, AttributeError):
            weight_map = {}
        shards = sorted({str(v) for v in weight_map.values()})
        if shards:
            return [folder / s for s in shards]
    if (folder / SINGLE_FILE).is_file():
        return [folder / SINGLE_FILE]
    return sorted(folder.glob("*.safetensors"))


def tensor_stats(folder: Path) -> TensorStats | None:
    """Parameter counts of the model in ``folder``; None when it has no readable safetensors weights."""
    files = [f for f in weight_files(folder) if f.is_file()]
    if not files:
        return None
    try:
        return TensorStats.from_headers({f.name: read_safetensors_header(f) for f in files})
    except SafetensorsHeaderError:
        return None


# -- memory estimates ----------------------------------------------------------------------------------------

PRECISIONS = ("fp32", "fp16/bf16", "8-bit", "4-bit")


def estimate_weights(stats: TensorStats, precision: str, *, rest_bytes: float = 2) -> int:
    """Bytes of weights once loaded at ``precision``; ``rest_bytes`` per unquantized parameter."""
    if precision == "fp32":
        return stats.parameters * 4
    if precision == "fp16/bf16":
        return stats.parameters * 2
    rest = (stats.parameters - stats.quantizable) * rest_bytes
    if precision == "8-bit":
        return int(stats.quantizable * 1 + rest)
    if precision == "4-bit":
        absmax = stats.quantizable / BNB_4BIT_BLOCK * 4
        return int(stats.quantizable * 0.5 + absmax + rest)
    raise ValueError(f"unknown precision {precision!r}")


def dtype_bytes(name: str) -> float:
    """Bytes per parameter of a dtype named either way (``float16`` or ``F16``); 2 when unknown."""
    return DTYPE_BYTES.get(_SAFETENSORS_NAMES.get(name, name), 2)


def precision_for(quantization: str | None, dtype: str | None, checkpoint_dtype: str | None) -> str:
    """The precision a load with these options ends up in."""
    if quantization == "8bit":
        return "8-bit"
    if quantization == "4bit":
        return "4-bit"
    effective = dtype if dtype and dtype != "auto" else checkpoint_dtype
    stored_as = _SAFETENSORS_NAMES.get(effective, effective) if effective else None
    return "fp32" if stored_as in ("F32", "F64") else "fp16/bf16"


def checkpoint_dtype(config: Mapping[str, Any], stats: TensorStats | None) -> str | None:
    """The dtype the weights are stored in: the config's word for it, else the headers' main dtype."""
    for key in ("dtype", "torch_dtype"):
        value = config.get(key)
        if isinstance(value, str):
            return value
    text = config.get("text_config")
    if isinstance(text, Mapping):
        return checkpoint_dtype(text, None) or (stats.main_dtype if stats else None)
    main = stats.main_dtype if stats else None
    return TORCH_NAMES.get(main, main) if main else None
