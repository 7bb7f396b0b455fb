"""Fixtures for model-management tests: the loopback Hub serving tiny models built offline.

Import the fixtures into a test module (``from tests.model_hub import hub, hub_cache``); see
``tests/wire/hub_server.py`` for why the client must be pointed at the server this way.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.wire.hub_server import HubRepo, HubServer, configure_huggingface_hub

# What a real repo often ships besides what llmctl loads: none of it is downloaded by default.
EXTRA_FILES: dict[str, bytes] = {
    "pytorch_model.bin": b"pickled weights llmctl never loads by default",
    "README.md": b"# tiny model\n",
    "onnx/model.onnx": b"an onnx graph",
    "model.gguf": b"GGUF weights",
    ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
}
BIG = random.Random(0).randbytes(2 * 1024 * 1024)


@pytest.fixture
def hub_home(tmp_path: Path) -> Path:
    return tmp_path / "hf-home"  # the HF_HOME conftest's isolated_home sets


@pytest.fixture
def hub_cache(hub_home: Path) -> Path:
    return hub_home / "hub"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, hub_home: Path) -> Iterator[HubServer]:
    """A running fake Hub that huggingface_hub (already imported, offline by default here) talks to."""
    import huggingface_hub

    with HubServer() as server:
        configure_huggingface_hub(monkeypatch, server.url, hub_home)
        yield server
        huggingface_hub.close_session()
        assert server.errors == []


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record, instead of sleeping, the 1 s pauses huggingface_hub takes before retrying a dropped transfer."""
    from huggingface_hub import file_download

    sleeps: list[float] = []
    monkeypatch.setattr(file_download, "time", SimpleNamespace(sleep=sleeps.append))
    return sleeps


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def serve_model(
    hub: HubServer, repo_id: str, folder: Path, *, extra: dict[str, bytes] | None = None, **kwargs: Any
) -> HubRepo:
    """Serve a saved tiny model plus the usual extra files of a Hub repo."""
    files = {**folder_files(folder), **(EXTRA_FILES if extra is None else extra)}
    return hub.add_repo(repo_id, files, **kwargs)


def true_parameter_count(folder: Path) -> int:
    """What PyTorch counts once the model is built (shared tensors counted once)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    return sum(p.numel() for p in model.parameters())


def build_quantizable_llama(folder: Path) -> Path:
    """A tiny Llama big enough that 8-bit and 4-bit visibly shrink it (hidden 256, 4 layers)."""
    from tests.tiny_models import ModelSize, build_tiny_model

    if (folder / "config.json").exists():
        return folder
    return build_tiny_model("llama", folder, size=ModelSize(hidden=256, layers=4, intermediate=512))
