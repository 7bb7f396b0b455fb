"""``models info`` figures checked against the tiny models themselves (no mocks of what is measured)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmctl.config import Settings, parse_settings
from llmctl.errors import ModelNotFoundError
from llmctl.hub.download import download, plan_download
from llmctl.hub.weights import (
    SafetensorsHeaderError,
    TensorStats,
    estimate_weights,
    read_safetensors_header,
    tensor_stats,
)
from llmctl.services.models.hardware import Gpu, Hardware, ram
from llmctl.services.models.info import describe, estimate_rows
from tests.model_hub import hub, hub_cache, hub_home, serve_model
from tests.wire.hub_server import HubServer

__all__ = ["hub", "hub_cache", "hub_home"]  # fixtures

TINY_MACHINE = Hardware(ram_total_bytes=8 * 10**9, ram_available_bytes=4 * 10**9)


def _truth(folder: Path) -> tuple[int, int]:
    """(parameters, weights of the linear layers bitsandbytes would quantize), counted by PyTorch."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    output_head = model.get_output_embeddings()
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not output_head)
    return sum(p.numel() for p in model.parameters()), linear


@pytest.mark.parametrize("family", ["llama", "mistral", "gemma"])
def test_parameter_counts_from_headers_match_pytorch(tiny_models: dict[str, Path], family: str) -> None:
    stats = tensor_stats(tiny_models[family])
    parameters, linear = _truth(tiny_models[family])
    assert stats is not None
    assert stats.parameters == parameters  # gemma ties its embeddings: stored and counted once
    assert stats.quantizable == linear
    assert stats.by_dtype == {"F32": parameters}


def test_memory_estimates_follow_what_bitsandbytes_quantizes(tiny_models: dict[str, Path]) -> None:
    stats = tensor_stats(tiny_models["llama"])
    assert stats is not None
    rest = stats.parameters - stats.quantizable
    assert estimate_weights(stats, "fp32") == 4 * stats.parameters
    assert estimate_weights(stats, "fp16/bf16") == 2 * stats.parameters
    assert estimate_weights(stats, "8-bit") == stats.quantizable + 2 * rest
    assert estimate_weights(stats, "4-bit") == int(stats.quantizable / 2 + stats.quantizable / 16 + 2 * rest)
    sizes = [estimate_weights(stats, p) for p in ("fp32", "fp16/bf16", "8-bit", "4-bit")]
    assert sizes == sorted(sizes, reverse=True)


def test_fits_is_judged_per_device_with_headroom() -> None:
    stats = TensorStats(parameters=7_000_000_000, quantizable=6_500_000_000)
    machine = Hardware(
        ram_total_bytes=16 * 10**9,
        ram_available_bytes=10 * 10**9,
        gpus=(Gpu(0, "big", 80 * 10**9), Gpu(1, "small", 8 * 10**9)),
    )
    rows = {r.precision: r for r in estimate_rows(stats, machine)}
    assert rows["fp32"].fits == {"ram": False, "cuda:0": True, "cuda:1": False, "all gpus": True}
    assert rows["fp16/bf16"].fits["ram"] is False  # 14 GB of weights + 20% = 16.8 GB > 16 GB
    assert rows["8-bit"].fits == {"ram": True, "cuda:0": True, "cuda:1": False, "all gpus": True}  # 7.5 GB + 20%
    assert rows["4-bit"].fits == {"ram": True, "cuda:0": True, "cuda:1": True, "all gpus": True}
    assert rows["fp16/bf16"].needed_bytes == int(rows["fp16/bf16"].weights_bytes * 1.2)


def test_describe_a_local_folder(tiny_models: dict[str, Path]) -> None:
    details = describe(str(tiny_models["mistral"]), Settings(), machine=TINY_MACHINE)
    parameters, _ = _truth(tiny_models["mistral"])
    assert details.source == "folder" and details.location == str(tiny_models["mistral"])
    assert details.architecture == "MistralForCausalLM" and details.model_type == "mistral"
    assert details.parameters == parameters
    assert details.context_window == 256
    assert details.has_chat_template and details.chat_template_source == "chat_template.jinja"
    assert details.checkpoint_dtype == "float32"
    names = {p for p, _ in details.files}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert details.size_bytes == sum((tiny_models["mistral"] / p).stat().st_size for p in names)
    assert [r.precision for r in details.estimates] == ["fp32", "fp16/bf16", "8-bit", "4-bit"]
    assert all(r.fits == {"ram": True} for r in details.estimates)
    data = details.to_json()
    assert data["parameters"] == parameters and data["estimates"][0]["weights_bytes"] == 4 * parameters


def test_a_model_without_chat_template_says_so(tiny_models: dict[str, Path]) -> None:
    details = describe(str(tiny_models["no-template"]), Settings(), machine=TINY_MACHINE)
    assert details.has_chat_template is False and details.chat_template_source is None


def test_describe_an_alias_with_configured_quantization(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    text = (
        f'[models.tiny]\nprovider = "hf"\nid = "{tiny_models["gemma"]}"\nquantization = "4bit"\ncontext_window = 128\n'
    )
    settings = parse_settings(text, tmp_path / "config.toml")
    details = describe("tiny", settings, machine=TINY_MACHINE)
    assert details.name == "tiny" and details.configured_quantization == "4bit"
    assert details.context_window == 128  # the alias overrides the config.json value
    assert details.parameters == _truth(tiny_models["gemma"])[0]


def test_describe_a_downloaded_repo(hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]) -> None:
    repo = serve_model(hub, "org/tiny-llama", tiny_models["llama"])
    download(plan_download("org/tiny-llama", cache_dir=hub_cache))

    details = describe("hf/org/tiny-llama", Settings(), machine=TINY_MACHINE)

    assert details.source == "hf-cache" and details.repo_id == "org/tiny-llama"
    assert details.revision == repo.revisions["main"].commit_sha
    assert details.parameters == _truth(tiny_models["llama"])[0]
    assert "pytorch_model.bin" not in {p for p, _ in details.files}


def test_a_repo_that_is_not_downloaded_says_how_to_get_it() -> None:
    with pytest.raises(ModelNotFoundError) as error:
        describe("hf/org/not-here", Settings(), machine=TINY_MACHINE)
    assert error.value.hint == "Download it with: llmctl models download org/not-here"


def test_describe_a_hosted_alias_gives_its_configured_price(tmp_path: Path) -> None:
    text = (
        '[providers.local-vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[models.fast]\nprovider = "local-vllm"\nid = "qwen"\ninput_price_per_mtok = 0.5\n'
        "output_price_per_mtok = 1.5\ncontext_window = 32768\n"
    )
    details = describe("fast", parse_settings(text, tmp_path / "config.toml"))
    assert details.source == "hosted" and details.kind == "openai"
    assert (details.input_price_per_mtok, details.output_price_per_mtok) == (0.5, 1.5)
    assert details.context_window == 32768 and details.location == "http://127.0.0.1:9/v1"


def test_garbage_is_not_a_safetensors_header(tmp_path: Path) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\xff" * 8 + b"not json")
    with pytest.raises(SafetensorsHeaderError):
        read_safetensors_header(bad)
    assert tensor_stats(tmp_path) is None


def test_ram_is_read_from_this_machine() -> None:
    total, available = ram()
    assert total is not None and available is not None
    assert 0 < available <= total
