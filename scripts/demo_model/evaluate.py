"""Score a saved demo model as llmctl loads it: every question type, greedy and sampled (temperature 0.7,
top_p 0.9, several seeds); capitals and arithmetic must reach GREEDY_MIN / SAMPLED_MIN."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .corpus import Example, arith_facts, arith_question, capital_question, fallback_question
from .corpus_data import CANNED, CAPITAL_TEMPLATES, COUNTRIES, FALLBACK, SYSTEM_PROMPTS
from .template import check_template

# Capitals + arithmetic accuracy the saved model must reach, or the script exits with status 1.
GREEDY_MIN = 0.995  # "~100%": tolerates a handful of misses among the ~1800 such questions
SAMPLED_MIN = 0.95  # per sampling seed, temperature 0.7, top_p 0.9


@dataclass
class Score:
    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.right += ok
        self.total += 1

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 1.0


def eval_set(rng: random.Random) -> list[Example]:
    """Every question type: each capital in every phrasing, each arithmetic fact, each canned question."""
    out: list[Example] = []

    def plain(kind: str, q: str, a: str) -> Example:
        system = rng.random() < 0.3
        turns = ((("system", rng.choice(SYSTEM_PROMPTS)),) if system else ()) + (("user", q),)
        return Example(kind, turns, a)

    for i in range(len(COUNTRIES)):
        for tpl in CAPITAL_TEMPLATES:
            out.append(plain("capital", *capital_question(i, rng, tpl)))
    for op, a, b in arith_facts():
        out.append(plain("arith", *arith_question(op, a, b, rng)))
    for kind, (answer, questions) in CANNED.items():
        out.extend(plain(kind, q, answer) for q in questions)
    out.extend(plain("fallback", fallback_question(rng), FALLBACK) for _ in range(100))
    return out


def generate_all(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[Example],
    do_sample: bool,
    seed: int,
) -> list[str]:
    torch.manual_seed(seed)
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].answer), len(str(examples[i].messages))))
    replies: list[str] = [""] * len(examples)
    batch = 128
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        prompts = [
            tokenizer.apply_chat_template(examples[i].as_messages(), add_generation_prompt=True, tokenize=False)
            for i in idx
        ]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        longest = max(len(tokenizer.encode(examples[i].answer)) for i in idx)
        kwargs: dict[str, object] = {"do_sample": do_sample, "max_new_tokens": longest + 8}
        if do_sample:
            kwargs.update(temperature=0.7, top_p=0.9)
        else:
            kwargs.update(temperature=None, top_p=None)
        with torch.no_grad():
            gen = model.generate(**enc, **kwargs)  # type: ignore[operator]
        new = gen[:, enc["input_ids"].shape[1] :]
        for row, i in enumerate(idx):
            replies[i] = str(tokenizer.decode(new[row], skip_special_tokens=True)).strip()
    return replies


def first_of_each_kind(examples: list[Example], limit: int) -> list[Example]:
    """The first ``limit`` examples of every kind, in their order: a quick score that still sees every kind."""
    taken: dict[str, int] = {}
    kept = []
    for example in examples:
        taken[example.kind] = taken.get(example.kind, 0) + 1
        if taken[example.kind] <= limit:
            kept.append(example)
    return kept


def evaluate(out: Path, rng: random.Random, sample_seeds: Sequence[int], *, limit: int | None = None) -> bool:
    """Reload the saved folder (as llmctl does) and score it. True when it is good enough.

    ``limit`` scores only that many questions of each kind (a smoke run); the default scores them all.
    """
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    model.eval()
    examples = eval_set(rng)
    if limit is not None:
        examples = first_of_each_kind(examples, limit)
    check_template(tokenizer)
    passed = True
    modes: list[tuple[str, bool, int, float]] = [("greedy", False, 0, GREEDY_MIN)]
    modes += [(f"sampled seed={s}", True, s, SAMPLED_MIN) for s in sample_seeds]
    for label, do_sample, seed, threshold in modes:
        t0 = time.perf_counter()
        replies = generate_all(model, tokenizer, examples, do_sample, seed)
        scores: dict[str, Score] = {}
        failures: list[str] = []
        for ex, reply in zip(examples, replies, strict=True):
            ok = reply == ex.answer
            scores.setdefault(ex.kind, Score()).add(ok)
            if not ok and len(failures) < 8:
                failures.append(f"    {ex.messages[-1][1]!r} -> {reply!r}")
        gated = Score()
        for kind in ("capital", "arith"):
            gated.right += scores[kind].right
            gated.total += scores[kind].total
        parts = "  ".join(f"{k} {s.right}/{s.total}" for k, s in sorted(scores.items()))
        print(
            f"[{label}] capitals+arithmetic {gated.right}/{gated.total} = {gated.accuracy:.2%} "
            f"(need {threshold:.1%})  {parts}  ({time.perf_counter() - t0:.1f}s)"
        )
        for line in failures:
            print(line)
        passed &= gated.accuracy >= threshold
    return passed
