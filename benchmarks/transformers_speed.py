"""Decode speed of llmctl's transformers path against raw ``model.generate`` on the same weights (issue 16).

    .venv/bin/python benchmarks/transformers_speed.py                          # fp32, 5 rounds
    .venv/bin/python benchmarks/transformers_speed.py --dtype float32 --dtype bfloat16 --compile
    .venv/bin/python benchmarks/transformers_speed.py --model PATH             # any local model folder

Goal: llmctl >= 0.97x raw ``model.generate`` decode tokens/s, streaming on; each figure is also
set against this machine's memory-bandwidth limit, measured here (a large tensor copy).

The model (built in a temp folder unless ``--model``): a randomly initialised Llama of
SmolLM2-135M's shape (hidden 576, intermediate 1536, 30 layers, 9 heads, 3 KV heads, tied
embeddings), with a byte-level BPE tokenizer trained here to ``--vocab`` entries (49,152 like
SmolLM2's) on Python's standard-library sources, and a chat template; saved with
``save_pretrained`` and loaded the way a downloaded model is.

What runs, on the weights loaded once by llmctl (greedy, exactly ``--new-tokens`` new tokens:
``min_new_tokens`` on the model's generation config, so end-of-sequence cannot cut a run short):

- ``llmctl``: the real call path, ``services.calls.Call`` over the provider the registry opens for
  a config alias (``dtype`` from ``--dtype``): budget check, streaming, text decoding, usage
  (recording off). Decode tokens/s = (tokens - 1) / (end - first text);
- ``raw generate``: ``model.generate`` on the same templated prompt ids with a streamer that only
  timestamps each token (streaming on, at the least cost a streamer can have), on the main thread
  and on a worker thread (llmctl generates on one; OpenMP can spin-wait very differently there);
  the faster of the two in each round is the baseline;
- with ``--compile``: ``llmctl --compile`` (a provider for the same alias with ``compile = true``,
  sharing the loaded weights) and raw ``generate`` with the same static-cache/compile arguments.
  The first compiled call compiles; its time (torch's own compile timer) is reported, not mixed
  into the rounds.

Each round runs every variant once, in rotating order, after one warm-up round; verdicts use
per-round ratios (both sides from the same round), so load drift on a shared machine cancels.
CPU time per token (all threads of the process) is printed too: steadier than wall time when
other processes compete for the cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import describe, load_average, machine, table
from local_generation import PROMPT

GOAL = 0.97
SMOLLM2_135M = {"hidden": 576, "intermediate": 1536, "layers": 30, "heads": 9, "kv_heads": 3, "tie_embeddings": True}
CORPUS_BYTES = 12_000_000  # enough text for a 49k BPE vocabulary


def stdlib_corpus(limit: int = CORPUS_BYTES) -> list[str]:
    """Real text to train the tokenizer on, offline: Python's standard-library sources (code and prose)."""
    texts: list[str] = []
    size = 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        texts.append(text)
        size += len(text)
        if size >= limit:
            break
    return texts


def memory_bandwidth(megabytes: int = 512, repeats: int = 7) -> float:
    """Bytes per second one large tensor copy moves (read + write), the fastest of ``repeats``.

    The fastest, not the median: other processes can only slow a copy down, and the limit is
    what the memory can do. On a busy machine the model's decode gets a share of it too.
    """
    import torch

    count = megabytes * 2**20 // 4
    source = torch.ones(count, dtype=torch.float32)
    target = torch.empty_like(source)
    target.copy_(source)  # first touch: page faults are not bandwidth
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        target.copy_(source)
        times.append(time.perf_counter() - started)
    return 2 * source.numel() * source.element_size() / min(times)


class TimingStreamer:
    """transformers' streamer interface, doing nothing but stamping each new token."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True  # generate() hands the prompt first
            return
        self.stamps.append(time.perf_counter())

    def end(self) -> None:
        pass


@dataclass
class Variant:
    name: str
    run: Callable[[], tuple[int, float]]  # -> (new tokens, decode seconds after the first token)
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    counts: set[int] = field(default_factory=set)


def in_thread(work: Callable[[], tuple[int, float]]) -> tuple[int, float]:
    result: list[tuple[int, float]] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


def bench_dtype(folder: Path, dtype: str, args: argparse.Namespace, *, compile_too: bool) -> dict[str, Any]:
    import torch

    from llmctl.config import Settings
    from llmctl.domain import GenerationParams, GenerationRequest, Message
    from llmctl.providers.hf.compiled import compiled_generate_kwargs, static_cache_length
    from llmctl.providers.hf.provider import HuggingFaceProvider
    from llmctl.providers.registry import open_provider, resolve
    from llmctl.services.calls import Call

    alias = {"provider": "hf", "path": str(folder), "dtype": dtype}
    settings = Settings.model_validate({"models": {"bench": alias, "bench-compiled": alias | {"compile": True}}})
    provider = open_provider(resolve("bench", settings))
    assert isinstance(provider, HuggingFaceProvider)
    loaded_started = time.perf_counter()
    provider.prepare()
    load_s = time.perf_counter() - loaded_started
    model = provider.loaded.model
    new_tokens = args.new_tokens
    model.generation_config.min_new_tokens = new_tokens  # every variant decodes exactly new_tokens
    request = GenerationRequest((Message("user", PROMPT),), GenerationParams(temperature=0, max_tokens=new_tokens))
    prompt_ids = provider.prompt_ids(request)
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=model.device)
    raw_kwargs: dict[str, Any] = {
        "attention_mask": torch.ones_like(ids),
        "max_new_tokens": new_tokens,
        "do_sample": False,
        "temperature": None,
        "top_p": None,
        "top_k": None,
        "pad_token_id": model.generation_config.pad_token_id,
    }

    def raw(extra: dict[str, Any]) -> tuple[int, float]:
        streamer = TimingStreamer()
        with torch.inference_mode():
            model.generate(ids, streamer=streamer, **raw_kwargs, **extra)
        return len(streamer.stamps), streamer.stamps[-1] - streamer.stamps[0]

    def through_llmctl(chosen: HuggingFaceProvider) -> tuple[int, float]:
        call = Call(chosen, request, settings=settings, command="bench", record=False)
        sink = io.StringIO()
        with call:
            for piece in call.run.deltas():
                sink.write(piece)
        result = call.outcome.result
        first, total = result.timing.first_token_s, result.timing.total_s
        assert first is not None
        return result.completion.usage.output_tokens or 0, total - first

    variants = [
        Variant("raw generate (main thread)", lambda: raw({})),
        Variant("raw generate (worker thread)", lambda: in_thread(lambda: raw({}))),
        Variant("llmctl", lambda: through_llmctl(provider)),
    ]
    compile_facts: dict[str, Any] | None = None
    if compile_too:
        fast = HuggingFaceProvider(resolve("bench-compiled", settings), loaded=provider.loaded)  # same weights
        length = static_cache_length(len(prompt_ids), new_tokens, provider.loaded.context_window)
        static = compiled_generate_kwargs(model, cache_length=length)
        started = time.perf_counter()
        through_llmctl(fast)  # the first compiled call compiles
        compile_facts = {
            "first_call_s": time.perf_counter() - started,
            "compile_s": fast.compile_seconds,
            "cache_dir": str(fast.compile_cache_dir()),
            "static_cache_length": length,
        }
        variants += [
            Variant("raw generate + static cache + compile (worker)", lambda: in_thread(lambda: raw(static))),
            Variant("llmctl --compile", lambda: through_llmctl(fast)),
        ]
    for round_index in range(args.rounds + 1):
        shift = round_index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            cpu_started = time.process_time()
            tokens, decode_s = variant.run()
            cpu = time.process_time() - cpu_started
            if round_index == 0:
                continue  # warm-up round
            variant.counts.add(tokens)
            variant.rates.append((tokens - 1) / decode_s)
            variant.cpu_ms.append(cpu / tokens * 1000)
    weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    result = {
        "dtype": str(model.dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights_bytes": weights_bytes,
        "vocab": int(model.config.vocab_size),
        "load_s": load_s,
        "torch_threads": torch.get_num_threads(),
        "prompt_tokens": len(prompt_ids),
        "new_tokens": new_tokens,
        "rounds": args.rounds,
        "compile": compile_facts,
        "variants": {v.name: {"rates": v.rates, "cpu_ms": v.cpu_ms, "counts": sorted(v.counts)} for v in variants},
    }
    provider.close()
    return result


def paired(result: dict[str, Any], numerator: str, denominators: list[str]) -> float:
    """Median over rounds of numerator / (the best of the denominators in that round)."""
    every = result["variants"]
    best = [max(values) for values in zip(*(every[name]["rates"] for name in denominators), strict=True)]
    return statistics.median(n / b for n, b in zip(every[numerator]["rates"], best, strict=True))


def report(result: dict[str, Any], bandwidth: float) -> list[tuple[str, bool]]:
    limit = bandwidth / result["weights_bytes"]
    every = result["variants"]
    raw_names = ["raw generate (main thread)", "raw generate (worker thread)"]
    best_raw = statistics.median(max(pair) for pair in zip(*(every[n]["rates"] for n in raw_names), strict=True))
    print(
        f"\n{result['dtype']}: {result['parameters'] / 1e6:.1f}M parameters ({result['weights_bytes'] / 1e6:.0f} MB, "
        f"vocab {result['vocab']:,}), {result['torch_threads']} torch threads, {result['prompt_tokens']} prompt "
        f"tokens -> {result['new_tokens']} new, median of {result['rounds']} rounds; "
        f"bandwidth limit {limit:.1f} tokens/s ({bandwidth / 1e9:.1f} GB/s / {result['weights_bytes'] / 1e6:.0f} MB)"
    )
    rows = []
    for name, data in every.items():
        rate = statistics.median(data["rates"])
        rows.append(
            [
                name,
                f"{rate:.1f}",
                f"{min(data['rates']):.1f}-{max(data['rates']):.1f}",
                f"{rate / best_raw:.3f}x",
                f"{rate / limit:.0%}",
                f"{statistics.median(data['cpu_ms']):.1f}",
            ]
        )
        if data["counts"] != [result["new_tokens"]]:
            print(f"  note: {name} produced {data['counts']} tokens, not {result['new_tokens']}")
    headers = ["variant", "decode tok/s (median)", "range", "vs best raw", "of bandwidth limit", "CPU ms/token"]
    print(table(headers, rows))
    vs_raw = paired(result, "llmctl", raw_names)
    print(f"  paired per round (median): llmctl / best raw {vs_raw:.3f}x")
    verdicts = [(f"{result['dtype']}: llmctl >= {GOAL}x raw generate (paired {vs_raw:.3f}x)", vs_raw >= GOAL)]
    facts = result["compile"]
    if facts is not None:
        compiled_vs_raw = paired(result, "llmctl --compile", ["raw generate + static cache + compile (worker)"])
        compiled_vs_eager = paired(result, "llmctl --compile", ["llmctl"])
        compile_s = "unknown" if facts["compile_s"] is None else f"{facts['compile_s']:.1f} s"
        print(
            f"  --compile: first call {facts['first_call_s']:.1f} s, of which compiling {compile_s} (torch's timer); "
            f"static cache {facts['static_cache_length']} tokens; kernels cached in {facts['cache_dir']}"
        )
        print(f"  paired: llmctl --compile / llmctl eager {compiled_vs_eager:.3f}x")
        verdicts.append(
            (
                f"{result['dtype']}: llmctl --compile >= {GOAL}x raw compiled generate (paired {compiled_vs_raw:.3f}x)",
                compiled_vs_raw >= GOAL,
            )
        )
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a local model folder instead of the built one")
    parser.add_argument("--dtype", action="append", choices=["float32", "bfloat16", "float16"], help="repeatable")
    parser.add_argument(
        "--compile",
        nargs="*",
        metavar="DTYPE",
        help="also static cache + torch.compile (slow to compile), for these dtypes (none named: every --dtype)",
    )
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=49152, help="BPE vocabulary of the built model")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="llmctl-speed-") as tmp:
        folder = args.model
        if folder is None:
            started = time.perf_counter()
            target = Path(tmp) / "smollm2-shape"
            corpus = stdlib_corpus()
            from tests.tiny_models import ModelSize, build_tiny_model

            size = ModelSize(vocab=args.vocab, **SMOLLM2_135M)
            folder = build_tiny_model("llama", target, context=8192, size=size, corpus=corpus)
            print(f"Built the model in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        bandwidth = memory_bandwidth()
        print(f"Machine: {describe(info)}; torch {torch.__version__}")
        print(f"Memory bandwidth (tensor copy, read + write): {bandwidth / 1e9:.1f} GB/s")
        dtypes = args.dtype or ["float32"]
        compiled = [] if args.compile is None else (args.compile or dtypes)
        verdicts = []
        for dtype in dtypes:
            results.append(bench_dtype(folder, dtype, args, compile_too=dtype in compiled))
            verdicts.extend(report(results[-1], bandwidth))  # printed as it comes: a slow run still shows some
            sys.stdout.flush()
    info["load_average_after"] = load_average()
    info["torch"] = torch.__version__
    print(f"\nLoad average after: {info['load_average_after']}")
    for label, ok in verdicts:
        print(f"{'MET ' if ok else 'MISS'}  {label}")
    if args.json:
        print(json.dumps({"machine": info, "bandwidth_bytes_per_s": bandwidth, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
