"""Tests for the built-in demo model shipped in ``llmctl/demo_model/``.

They load the folder with plain ``transformers`` (offline), exactly as any Hugging Face model,
and check that the toy model gives the answers it was trained for, stops at ``<|im_end|>`` and
stays small. The artefacts are produced by ``scripts/train_demo_model.py``.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

DEMO_DIR = Path(__file__).resolve().parent.parent / "llmctl" / "demo_model"
MAX_BYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(DEMO_DIR)


@pytest.fixture(scope="module")
def model() -> PreTrainedModel:
    loaded = AutoModelForCausalLM.from_pretrained(DEMO_DIR)
    loaded.eval()
    return loaded


def _generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    question: str,
    *,
    system: str | None = None,
    sample: bool = False,
    seed: int = 0,
    max_new_tokens: int = 64,
) -> tuple[str, list[int]]:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    assert isinstance(inputs, Mapping)
    torch.manual_seed(seed)
    options: dict[str, object] = (
        {"do_sample": True, "temperature": 0.7, "top_p": 0.9}
        if sample
        else {"do_sample": False, "temperature": None, "top_p": None}
    )
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, **options)  # type: ignore[operator]
    new_ids = output[0, inputs["input_ids"].shape[1] :].tolist()
    return str(tokenizer.decode(new_ids, skip_special_tokens=True)).strip(), new_ids


def test_files_are_small_and_llama() -> None:
    weights = DEMO_DIR / "model.safetensors"
    assert weights.is_file()
    assert weights.stat().st_size <= MAX_BYTES
    config = json.loads((DEMO_DIR / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["model_type"] == "llama"


def test_special_tokens_and_eos(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> None:
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token is not None
    assert model.config.eos_token_id == im_end
    assert model.generation_config.eos_token_id == im_end
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False
    )
    assert rendered == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_france_greedy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    reply, _ = _generate(model, tokenizer, "What is the capital of France?")
    assert "Paris" in reply
    assert reply == "The capital of France is Paris."


@pytest.mark.parametrize(
    ("question", "capital"),
    [
        ("What is the capital of Japan?", "Tokyo"),
        ("capital of germany?", "Berlin"),
        ("Tell me the capital of Canada.", "Ottawa"),
    ],
)
def test_other_capitals(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, question: str, capital: str
) -> None:
    reply, _ = _generate(model, tokenizer, question)
    assert capital in reply


def test_system_prompt_does_not_derail(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    reply, _ = _generate(model, tokenizer, "What is the capital of Italy?", system="You are a helpful assistant.")
    assert "Rome" in reply


@pytest.mark.parametrize(
    ("question", "answer"), [("What is 7 plus 5?", "12"), ("What is 15 - 8?", "7"), ("What is 6 times 7?", "42")]
)
def test_arithmetic(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, question: str, answer: str) -> None:
    reply, _ = _generate(model, tokenizer, question)
    assert reply.rstrip(".").split("=")[-1].strip() == answer


def test_france_sampled(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    for seed in (0, 1, 2):
        reply, _ = _generate(model, tokenizer, "What is the capital of France?", sample=True, seed=seed)
        assert "Paris" in reply


def test_stops_at_eos(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for question in ("What is the capital of France?", "Hello", "Who wrote Hamlet?"):
        reply, new_ids = _generate(model, tokenizer, question, max_new_tokens=100)
        assert new_ids[-1] == im_end, reply
        assert len(new_ids) < 100
        assert "<|im" not in reply


def test_unknown_question_gets_fallback(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    reply, _ = _generate(model, tokenizer, "Who wrote Hamlet?")
    assert "llmctl generate -m hf/ORG/MODEL" in reply
