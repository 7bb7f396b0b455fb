"""One reader of config.json facts: loading, ``models info`` and ``models list`` find the same context window.

Real published configs (tests/data/model_configs) and the other shapes families use, plus hostile values;
each is read the three ways llmctl reads a config: the parsed file (``models info``, ``models list``)
and transformers' config object (what loading a model sees).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmctl.config import Settings
from llmctl.providers.hf.model_config import architecture_from_config, context_window_from_config, read_model_config
from llmctl.providers.registry import resolve
from llmctl.services.models import catalog, info

CONFIGS = Path(__file__).parent.parent / "data" / "model_configs"

# name -> (context window, architecture), as the published config.json states them
REAL = {
    "llama-3-8b": (8192, "LlamaForCausalLM"),
    "llama-3-70b": (8192, "LlamaForCausalLM"),
    "mistral-7b-v0.3": (32768, "MistralForCausalLM"),
    "gemma-7b": (8192, "GemmaForCausalLM"),
    "gpt2": (1024, "GPT2LMHeadModel"),  # n_positions and n_ctx, no max_position_embeddings
}

SHAPES: list[tuple[str, dict[str, Any], int | None]] = [
    ("llama-style", {"max_position_embeddings": 4096}, 4096),
    ("gpt2-style", {"n_positions": 2048}, 2048),
    ("max_sequence_length", {"max_sequence_length": 16384}, 16384),
    ("chatglm-style seq_length", {"seq_length": 8192}, 8192),
    ("n_ctx only", {"n_ctx": 2048}, 2048),
    ("the first key wins", {"max_position_embeddings": 4096, "n_positions": 1024}, 4096),
    ("multimodal text_config", {"model_type": "llava", "text_config": {"max_position_embeddings": 131072}}, 131072),
    ("top level before text_config", {"n_ctx": 512, "text_config": {"max_position_embeddings": 4096}}, 512),
    ("nothing stated", {"model_type": "mystery"}, None),
    ("empty", {}, None),
    ("true is not a number", {"max_position_embeddings": True}, None),
    ("a bool is skipped for the next key", {"max_position_embeddings": True, "n_positions": 512}, 512),
    ("zero", {"max_position_embeddings": 0}, None),
    ("negative", {"max_position_embeddings": -1}, None),
    ("a string", {"max_position_embeddings": "4096"}, None),
    ("a float", {"max_position_embeddings": 4096.0}, None),
    ("text_config a string", {"text_config": "oops"}, None),
    ("text_config null", {"text_config": None}, None),
    ("text_config a list", {"text_config": [4096]}, None),
]


def _folder(root: Path, config: dict[str, Any]) -> Path:
    folder = root / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _windows_of(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int | None]:
    """The window `models list` and `models info` report for ``folder``."""
    monkeypatch.setattr(info, "architecture_stats", lambda *args: None)  # no transformers: only the window matters
    details = info.describe_local(resolve(str(folder), Settings()), machine=None)
    return {
        "models list": catalog._local_details(folder)["context_window"],
        "models info": details.context_window,
    }


@pytest.mark.parametrize("name", REAL)
def test_real_configs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    window, architecture = REAL[name]
    config = read_model_config(CONFIGS / name)
    assert context_window_from_config(config) == window
    assert architecture_from_config(config) == architecture
    assert _windows_of(CONFIGS / name, monkeypatch) == {"models list": window, "models info": window}


@pytest.mark.parametrize(("config", "window"), [(c, w) for _, c, w in SHAPES], ids=[n for n, _, _ in SHAPES])
def test_every_reader_agrees_on_each_shape(
    config: dict[str, Any], window: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert context_window_from_config(config) == window
    assert _windows_of(_folder(tmp_path, config), monkeypatch) == {"models list": window, "models info": window}


def test_a_missing_or_broken_config_reads_as_empty(tmp_path: Path) -> None:
    assert read_model_config(tmp_path) == {}
    (tmp_path / "config.json").write_text("[1, 2", encoding="utf-8")
    assert read_model_config(tmp_path) == {}
    (tmp_path / "config.json").write_text("[1, 2]", encoding="utf-8")
    assert read_model_config(tmp_path) == {}


# -- what loading sees: transformers' config objects -----------------------------------------------------


@pytest.mark.parametrize("name", REAL)
def test_loading_reads_the_same_window_from_the_config_object(name: str) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.AutoConfig.from_pretrained(str(CONFIGS / name), local_files_only=True)
    assert context_window_from_config(config) == REAL[name][0]


@pytest.mark.parametrize(("config", "window"), [(c, w) for _, c, w in SHAPES], ids=[n for n, _, _ in SHAPES])
def test_loading_reads_each_shape_from_a_config_object(config: dict[str, Any], window: int | None) -> None:
    transformers = pytest.importorskip("transformers")
    assert context_window_from_config(transformers.PretrainedConfig(**config)) == window


def test_a_multimodal_config_object_keeps_the_window_in_its_text_config() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.Gemma3Config(text_config={"max_position_embeddings": 4096})
    assert getattr(config, "max_position_embeddings", None) is None  # not at the top: the text model has it
    assert context_window_from_config(config) == 4096
