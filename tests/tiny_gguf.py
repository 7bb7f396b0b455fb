"""GGUF files written offline from a saved Hugging Face Llama (tests/tiny_models.py, or a benchmark's).

Written with the ``gguf`` package's writer, doing what llama.cpp's ``convert_hf_to_gguf.py``
does for a Llama: the same tensor names (gguf's own name map), Q/K rows permuted for
llama.cpp's rotary layout, norms kept in f32, and the byte-level BPE vocabulary with its merges
and chat template in the metadata. The converter itself refuses a tokenizer it has no
pre-tokenizer hash for (any tokenizer trained in a fixture); its byte-level regex is GPT-2's,
which is what ``tokenizer.ggml.pre = "gpt-2"`` names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUTTYPES = ("f32", "f16", "q8_0")


def _permute(weights: Any, n_head: int) -> Any:
    """HF's rotary halves -> llama.cpp's interleaved pairs (convert_hf_to_gguf.py's LlamaModel.permute)."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _vocabulary(folder: Path) -> tuple[list[str], list[int], list[str], dict[str, Any]]:
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    specials = {t["content"]: t["id"] for t in tokenizer.get("added_tokens", [])}
    size = max([*vocab.values(), *specials.values()]) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [1] * size  # NORMAL
    for text, index in vocab.items():
        tokens[index] = text
    for text, index in specials.items():
        tokens[index], types[index] = text, 3  # CONTROL
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    return tokens, types, merges, config


def write_gguf(
    folder: Path,
    out: Path,
    outtype: str = "f32",
    *,
    with_template: bool = True,
    template: str | None = None,
    eos_token_id: int | None = None,
    context: int | None = None,
) -> Path:
    """Write the Llama saved in ``folder`` as one GGUF file at ``out`` (``outtype``: f32, f16 or q8_0).

    ``template`` replaces the model's chat template, ``eos_token_id`` its end token, ``context`` its
    declared context length.
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    if outtype not in OUTTYPES:
        raise ValueError(f"outtype must be one of {OUTTYPES}")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    weights = load_file(str(folder / "model.safetensors"))
    n_head, n_kv = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    layers, hidden = config["num_hidden_layers"], config["hidden_size"]
    file_type = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[outtype]

    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(folder.name)
    writer.add_context_length(context or config["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(hidden // n_head)
    writer.add_rope_freq_base(float(config.get("rope_theta") or 10000.0))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_file_type(file_type)

    tokens, types, merges, tokenizer_config = _vocabulary(folder)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"] if eos_token_id is None else eos_token_id)
    writer.add_add_bos_token(False)  # like the HF tokenizer: the chat template writes bos_token itself
    template = template or tokenizer_config.get("chat_template")
    if template is None and (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if with_template and template:
        writer.add_chat_template(template)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
    for hf_name, tensor in weights.items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"no GGUF name for tensor {hf_name}")
        data = tensor.astype(np.float32)
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, n_head)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, n_kv)
        if data.ndim == 1 or outtype == "f32":
            writer.add_tensor(name, data)
        elif outtype == "f16":
            writer.add_tensor(name, data.astype(np.float16))
        else:
            quantized = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
