"""Train the demo model: a small LlamaForCausalLM from scratch, in plain PyTorch (AdamW, warm-up + cosine decay,
batches of similar length, loss on the assistant answer only, cheap hard-example mining), then save it."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from .corpus import HARD_LOSS, Example, corpus_epoch
from .template import IM_END, PAD, render_chat, token_id

SEED = 1234
NUM_THREADS = 2
DEFAULT_STEPS = 2000
BATCH_SIZE = 32
PEAK_LR = 2e-3
WARMUP_STEPS = 30
MAX_NEW_TOKENS = 128
HIDDEN_SIZE = 128
INTERMEDIATE_SIZE = 384
NUM_LAYERS = 4
NUM_HEADS = 4


def encode_example(tokenizer: PreTrainedTokenizerBase, ex: Example) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 everywhere but the assistant answer and its <|im_end|>)."""
    prompt = tokenizer.encode(render_chat(ex.as_messages(), True), add_special_tokens=False)
    answer = tokenizer.encode(ex.answer + IM_END, add_special_tokens=False)
    return prompt + answer, [-100] * len(prompt) + answer


def build_model(tokenizer: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=token_id(tokenizer, IM_END),
        pad_token_id=token_id(tokenizer, PAD),
        initializer_range=0.02,
    )
    return LlamaForCausalLM(config)


@dataclass
class Batch:
    input_ids: torch.Tensor
    labels: torch.Tensor
    answers: list[str]


def make_batches(examples: list[Example], tokenizer: PreTrainedTokenizerBase, rng: random.Random) -> list[Batch]:
    """Group examples of similar length (less padding), right-pad, shuffle the batch order."""
    pad_id = token_id(tokenizer, PAD)
    encoded = [(*encode_example(tokenizer, ex), ex.answer) for ex in examples]
    batches: list[Batch] = []
    chunk = BATCH_SIZE * 16
    for start in range(0, len(encoded), chunk):
        group = sorted(encoded[start : start + chunk], key=lambda e: len(e[0]))
        for b in range(0, len(group), BATCH_SIZE):
            items = group[b : b + BATCH_SIZE]
            width = max(len(ids) for ids, _, _ in items)
            ids_t = torch.full((len(items), width), pad_id, dtype=torch.long)
            lab_t = torch.full((len(items), width), -100, dtype=torch.long)
            for row, (ids, labels, _) in enumerate(items):
                ids_t[row, : len(ids)] = torch.tensor(ids)
                lab_t[row, : len(labels)] = torch.tensor(labels)
            batches.append(Batch(ids_t, lab_t, [answer for _, _, answer in items]))
    rng.shuffle(batches)
    return batches


def lr_at(step: int, total: int) -> float:
    if step < WARMUP_STEPS:
        return PEAK_LR * (step + 1) / WARMUP_STEPS
    progress = (step - WARMUP_STEPS) / max(1, total - WARMUP_STEPS)
    return PEAK_LR * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerBase,
    steps: int,
    rng: random.Random,
    hook: Callable[[int], None] | None = None,
) -> None:
    """AdamW with warm-up and cosine decay; loss on the assistant answer (+ ``<|im_end|>``) only."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=PEAK_LR,
        betas=(0.9, 0.98),
    )
    model.train()
    batches: list[Batch] = []
    hard: dict[str, float] = {}
    start = time.perf_counter()
    running = 0.0
    for step in range(steps):
        if not batches:
            batches = make_batches(corpus_epoch(rng, hard), tokenizer, rng)
            hard = {}
        batch = batches.pop()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps)
        logits = model(input_ids=batch.input_ids).logits[:, :-1]
        targets = batch.labels[:, 1:]
        token_loss = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="none")
        loss = token_loss.sum() / (targets != -100).sum()
        worst = token_loss.detach().max(dim=1).values.tolist()
        for answer, value in zip(batch.answers, worst, strict=True):
            hard[answer] = max(value, hard.get(answer, 0.0))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        running = loss.item() if step == 0 else 0.9 * running + 0.1 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            n_hard = sum(v > HARD_LOSS for v in hard.values())
            print(
                f"step {step:4d}/{steps}  loss {running:.4f}  lr {lr_at(step, steps):.2e}  "
                f"hard {n_hard:4d}  {time.perf_counter() - start:6.1f}s",
                flush=True,
            )
        if hook is not None:
            hook(step + 1)


def save(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("model.safetensors", "pytorch_model.bin", "chat_template.jinja", "chat_template.json"):
        (out / stale).unlink(missing_ok=True)
    eos_id = token_id(tokenizer, IM_END)
    pad_id = token_id(tokenizer, PAD)
    model.generation_config = GenerationConfig(
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        do_sample=True,
        temperature=0.7,
        top_p=0.9,
        max_new_tokens=MAX_NEW_TOKENS,
    )
    model.config.architectures = ["LlamaForCausalLM"]
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
