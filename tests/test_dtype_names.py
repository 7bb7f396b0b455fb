"""A dtype is one fact whichever way it is named: torch's (``bfloat16``, as config.json and --dtype say it)
or safetensors' (``BF16``, as the headers do)."""

from __future__ import annotations

import pytest

from llmctl.hub.weights import TORCH_NAMES, TensorStats, checkpoint_dtype, dtype_bytes, precision_for


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("float64", 8), ("F64", 8), ("float32", 4), ("F32", 4), ("float16", 2), ("F16", 2),
        ("bfloat16", 2), ("BF16", 2), ("F8_E4M3", 1), ("I8", 1), ("F4", 0.5), ("I64", 8),
        ("no-such-dtype", 2),
    ],
)  # fmt: skip
def test_bytes_per_parameter(name: str, size: float) -> None:
    assert dtype_bytes(name) == size


@pytest.mark.parametrize(("safetensors_name", "torch_name"), TORCH_NAMES.items())
def test_both_names_of_a_dtype_agree(safetensors_name: str, torch_name: str) -> None:
    assert dtype_bytes(safetensors_name) == dtype_bytes(torch_name)
    assert precision_for(None, torch_name, None) == precision_for(None, None, safetensors_name)


@pytest.mark.parametrize(
    ("quantization", "dtype", "stored", "precision"),
    [
        ("8bit", "float32", "F32", "8-bit"),
        ("4bit", None, None, "4-bit"),
        (None, "float32", "BF16", "fp32"),
        (None, "auto", "F32", "fp32"),
        (None, "auto", "float64", "fp32"),
        (None, None, "bfloat16", "fp16/bf16"),
        (None, "auto", None, "fp16/bf16"),
        (None, "auto", "I32", "fp16/bf16"),
    ],
)
def test_precision_of_a_load(quantization: str | None, dtype: str | None, stored: str | None, precision: str) -> None:
    assert precision_for(quantization, dtype, stored) == precision


def test_the_headers_dtype_is_reported_in_torchs_name() -> None:
    stats = TensorStats(parameters=10, quantizable=8, by_dtype={"BF16": 8, "F32": 2})
    assert checkpoint_dtype({}, stats) == "bfloat16"
    assert checkpoint_dtype({"torch_dtype": "float16"}, stats) == "float16"
