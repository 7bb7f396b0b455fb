"""``python -m scripts.demo_model``: build the tokenizer, train, save, reload and score the demo model."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .corpus import corpus_epoch
from .evaluate import evaluate
from .template import IM_END, check_template, render_chat, train_tokenizer
from .train import DEFAULT_STEPS, NUM_THREADS, SEED, build_model, save, train

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "llmctl" / "demo_model"


def file_report(out: Path) -> None:
    for path in sorted(out.iterdir()):
        print(f"  {path.name:28s} {path.stat().st_size:>10,d} bytes")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.demo_model",
        description="Train llmctl's built-in demo model, deterministically, and score it.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: llmctl/demo_model)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default: {DEFAULT_STEPS})")
    parser.add_argument("--sample-seeds", type=int, default=5, help="sampled evaluation passes (default: 5)")
    parser.add_argument(
        "--eval-limit", type=int, metavar="N", help="score only the first N questions of each kind (a smoke run)"
    )
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    torch.set_num_threads(NUM_THREADS)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)

    corpus_rng = random.Random(SEED + 1)
    tokenizer_texts = (
        render_chat(ex.as_messages(), True) + ex.answer + IM_END + "\n"
        for _ in range(3)
        for ex in corpus_epoch(corpus_rng)
    )
    tokenizer = train_tokenizer(tokenizer_texts)
    check_template(tokenizer)
    print(f"tokenizer: {len(tokenizer)} tokens  ({time.perf_counter() - t_start:.1f}s)")

    model = build_model(tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,d} parameters")
    t_train = time.perf_counter()
    train(model, tokenizer, args.steps, rng)
    train_s = time.perf_counter() - t_train

    save(model, tokenizer, args.out)
    print(f"saved to {args.out}")
    file_report(args.out)

    t_eval = time.perf_counter()
    seeds = [SEED + 10 + i for i in range(args.sample_seeds)]
    ok = evaluate(args.out, random.Random(SEED + 2), seeds, limit=args.eval_limit)
    eval_s = time.perf_counter() - t_eval
    total_s = time.perf_counter() - t_start
    print(f"time: train {train_s:.1f}s  eval {eval_s:.1f}s  total {total_s:.1f}s")
    print("PASS" if ok else "FAIL: accuracy below threshold")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
