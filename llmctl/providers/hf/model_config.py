"""Facts a Hugging Face model's ``config.json`` states: context window, architecture, checkpoint quantization.

The one reader of them: loading a model (a transformers config object), ``models info`` and
``models list`` (the parsed file) all ask here, so they agree on every model. Nothing here
imports transformers: a config object is read by attribute, a parsed file by key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Where families keep the context window, most common first: Llama/Mistral/Gemma/Qwen, GPT-2 style,
# a few long-context ones, ChatGLM/Qwen-1, GPT-2's n_ctx.
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
# Multimodal models (Gemma 3, Llava, Qwen2-VL's newer files) keep the language model's settings here.
TEXT_CONFIG_KEY = "text_config"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file; {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_model_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json``; {} when there is none."""
    return read_json(folder / "config.json")


def _field(config: Mapping[str, Any] | object, key: str) -> Any:
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)


def context_window_from_config(config: Mapping[str, Any] | object) -> int | None:
    """The context window a config states (a parsed config.json or a transformers config); None if none.

    Only a positive integer counts (JSON's ``true`` is not one).
    """
    for key in CONTEXT_KEYS:
        value = _field(config, key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    text = _field(config, TEXT_CONFIG_KEY)
    if text is None or text is config or isinstance(text, (str, bytes, int, float, list)):
        return None
    return context_window_from_config(text)


def architecture_from_config(config: Mapping[str, Any]) -> str | None:
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures:
        return str(architectures[0])
    model_type = config.get("model_type")
    return str(model_type) if model_type else None


def quantization_method(config: Mapping[str, Any]) -> str | None:
    """How a pre-quantized checkpoint was quantized, in one word (gptq, awq, bitsandbytes, fp8 ...)."""
    quant = config.get("quantization_config")
    return str(quant.get("quant_method") or "quantized") if isinstance(quant, Mapping) else None


def checkpoint_quantization(config: Mapping[str, Any]) -> str | None:
    """The quantization method with its bits when the config says them (``gptq 4-bit``)."""
    method = quantization_method(config)
    if method is None:
        return None
    quant = config["quantization_config"]
    bits = quant.get("bits")
    if quant.get("load_in_4bit"):
        bits = 4
    elif quant.get("load_in_8bit"):
        bits = 8
    return f"{method} {bits}-bit" if bits else method
