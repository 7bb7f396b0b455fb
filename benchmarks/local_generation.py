"""Local generation through llmctl against a plain ``model.generate`` on the same model, in the same run.

    .venv/bin/python benchmarks/local_generation.py                    # a 512-wide, 8-layer Llama built here
    .venv/bin/python benchmarks/local_generation.py --new-tokens 256 --rounds 7
    .venv/bin/python benchmarks/local_generation.py --model PATH       # any local model folder

Goal (issue 7): llmctl's streaming generation at >= 0.95x the raw tokens/s, and streaming no
slower than llmctl's non-streaming path.

What runs, on one loaded model, with one prompt and the same parameters (greedy, exactly
``--new-tokens`` new tokens: ``min_new_tokens`` is set on the model's generation config, so
end-of-sequence cannot cut a run short):

- ``raw generate``: ``model.generate(input_ids, ...)`` returning all ids at once, called on the
  main thread and on a worker thread (llmctl generates on a worker thread, and OpenMP's
  spin-waiting can make the main thread several times slower on a busy machine); the faster
  of the two is the baseline;
- ``raw + TextIteratorStreamer``: transformers' own streaming recipe (thread + text streamer),
  for reference;
- ``llmctl stream``: ``HuggingFaceProvider.stream(request)``, each text delta written out as it
  comes (what ``llmctl generate`` does on a pipe);
- ``llmctl non-stream``: the same stream collected into one text (what ``--no-stream`` does);
- ``llmctl bench`` in a fresh process (no warm-up run; median over its runs): catches
  costs that depend on process state, which the warmed-up process above cannot see.

Each round runs every variant once, in rotating order, after one warm-up round; a variant's
figure is the median over rounds of new tokens / wall time of the whole call (prefill included:
the prompt is short); the verdicts use per-round ratios (both sides from the same round). CPU
time per token (all threads of the process) is printed too: on a busy machine it shows real
overhead far more steadily than wall time. The prompt goes through the model's chat template once, and the raw
variants get exactly those ids. The built model is random (its text is noise) but has a real
BPE tokenizer, so decoding ids to text costs what it costs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the repository: tests.tiny_models builds the model

from _common import describe, load_average, machine, table

GOAL = 0.95
PROMPT = "Write a long story about a harbour town, its lighthouse keeper and the storm of the century."
CORPUS = [
    "The committee met on a grey Tuesday morning to review the harbour expansion plans.",
    "Engineers described the new breakwater, the dredging schedule and the cost of steel.",
    "Residents asked about noise, traffic and the old lighthouse that guided fishing boats.",
    "After lunch the discussion turned to tides, insurance and the migratory birds.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000; punctuation: , . ; : ! ? ( ) [ ] { } ' \" - _",
    "Ünïcödé, emoji 🙂 and CJK 漢字 must survive a round trip through the tokenizer.",
] * 50


def build_model(folder: Path, *, hidden: int, layers: int, vocab: int) -> Path:
    """A randomly initialised Llama with a byte-level BPE tokenizer trained on CORPUS and a chat template:
    the tests' tiny-model builder, at a size whose cost per token is more like a real model's."""
    from tests.tiny_models import ModelSize, build_tiny_model

    size = ModelSize(hidden=hidden, layers=layers, heads=8, kv_heads=4, intermediate=hidden * 3, vocab=vocab)
    return build_tiny_model("llama", folder, context=4096, size=size, corpus=CORPUS)


def bench_model(folder: Path, *, new_tokens: int, rounds: int, label: str) -> dict[str, Any]:
    import torch
    from transformers import TextIteratorStreamer

    from llmctl.config import Settings
    from llmctl.domain import GenerationParams, GenerationRequest, Message, TextDelta, collect
    from llmctl.providers.hf.provider import HuggingFaceProvider
    from llmctl.providers.registry import open_provider, resolve

    provider = open_provider(resolve(str(folder), Settings()))
    assert isinstance(provider, HuggingFaceProvider)
    provider.prepare()
    model, tokenizer = provider.loaded.model, provider.loaded.tokenizer
    # Forces exactly new_tokens in every variant alike: EOS is suppressed until then.
    model.generation_config.min_new_tokens = new_tokens
    request = GenerationRequest((Message("user", PROMPT),), GenerationParams(temperature=0, max_tokens=new_tokens))
    prompt_ids = provider.prompt_ids(request)
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=model.device)
    pad = model.generation_config.pad_token_id
    raw_kwargs: dict[str, Any] = {
        "attention_mask": torch.ones_like(ids),
        "max_new_tokens": new_tokens,
        "do_sample": False,
        "temperature": None,
        "top_p": None,
        "top_k": None,
        "pad_token_id": pad,
    }

    def raw() -> int:
        with torch.inference_mode():
            out = model.generate(ids, **raw_kwargs)
        return int(out.shape[1] - ids.shape[1])

    def raw_in_thread() -> int:
        # llmctl generates on a worker thread; OpenMP can behave very differently there than on the
        # main thread (spin-waiting under load), so the baseline is the faster of the two.
        import threading

        produced: list[int] = []
        thread = threading.Thread(target=lambda: produced.append(raw()))
        thread.start()
        thread.join()
        return produced[0]

    def raw_streamer() -> int:
        import threading

        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)

        def work() -> None:
            with torch.inference_mode():
                model.generate(ids, streamer=streamer, **raw_kwargs)

        thread = threading.Thread(target=work)
        thread.start()
        sink = io.StringIO()
        for text in streamer:
            sink.write(text)
        thread.join()
        return new_tokens  # min_new_tokens = max_new_tokens: the streamer's text has no count of its own

    def llmctl_stream() -> int:
        sink = io.StringIO()
        tokens = 0
        for event in provider.stream(request):
            if isinstance(event, TextDelta):
                sink.write(event.text)
                sink.flush()
                tokens += event.tokens or 0
        return tokens

    def llmctl_non_stream() -> int:
        completion = collect(provider.stream(request))
        return completion.usage.output_tokens or 0

    variants: dict[str, Callable[[], int]] = {
        "raw generate (main thread)": raw,
        "raw generate (worker thread)": raw_in_thread,
        "raw + TextIteratorStreamer": raw_streamer,
        "llmctl stream": llmctl_stream,
        "llmctl non-stream": llmctl_non_stream,
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu_ms: dict[str, list[float]] = {name: [] for name in variants}
    counts: dict[str, set[int]] = {name: set() for name in variants}
    names = list(variants)
    for round_index in range(rounds + 1):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            started, cpu_started = time.perf_counter(), time.process_time()
            produced = variants[name]()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            if round_index == 0:
                continue  # warm-up round
            counts[name].add(produced)
            rates[name].append(produced / elapsed)
            cpu_ms[name].append(cpu / produced * 1000)
    params = sum(p.numel() for p in model.parameters())
    result = {
        "model": label,
        "parameters": params,
        "dtype": str(model.dtype).removeprefix("torch."),
        "torch_threads": torch.get_num_threads(),
        "prompt_tokens": len(prompt_ids),
        "new_tokens": new_tokens,
        "rounds": rounds,
        "tokens_per_s": {name: statistics.median(values) for name, values in rates.items()},
        "tokens_per_s_all": rates,
        "cpu_ms_per_token": {name: statistics.median(values) for name, values in cpu_ms.items()},
        "token_counts": {name: sorted(c) for name, c in counts.items()},
    }
    provider.close()
    return result


def decoder_cost(folder: Path, lengths: tuple[int, ...] = (128, 1024, 4096)) -> dict[int, dict[str, float]]:
    """Microseconds per token to turn streamed ids into text: llmctl's decoder vs re-decoding it all.

    Re-decoding the whole answer on every token (the simple way, and llmctl's before issue 7)
    is quadratic; llmctl decodes a short window. Random ids, one at a time, like a stream.
    """
    import random

    from transformers import AutoTokenizer

    from llmctl.providers.hf.provider import IncrementalDecoder

    tokenizer = AutoTokenizer.from_pretrained(folder)
    rng = random.Random(0)
    costs: dict[int, dict[str, float]] = {}
    for n in lengths:
        ids = [rng.randrange(len(tokenizer)) for _ in range(n)]
        started = time.perf_counter()
        decoder = IncrementalDecoder(tokenizer)
        for token in ids:
            decoder.push([token])
        decoder.flush()
        windowed = time.perf_counter() - started
        started = time.perf_counter()
        for end in range(1, n + 1):
            tokenizer.decode(ids[:end], skip_special_tokens=True)
        full = time.perf_counter() - started
        costs[n] = {"llmctl_us_per_token": windowed / n * 1e6, "full_redecode_us_per_token": full / n * 1e6}
    return costs


def fresh_process_rate(folder: Path, *, prompt_tokens: int, new_tokens: int, runs: int, threads: int | None) -> float:
    """Tokens/s (whole call) of ``llmctl bench`` in a new process: what a user's first command gets.

    The in-process variants share one warmed-up process; a problem that depends on process
    state (which thread touched torch first, say) shows only here.
    """
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    argv = [sys.executable, "-m", "llmctl", "bench", str(folder), "--json", "--warmup", "0"]
    argv += ["--runs", str(runs), "--prompt-tokens", str(prompt_tokens), "--max-tokens", str(new_tokens)]
    completed = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    runs_data = json.loads(completed.stdout)["runs"]
    return statistics.median(r["output_tokens"] / r["total_s"] for r in runs_data)


def targets_label(results: list[dict[str, Any]]) -> str:
    return str(results[0]["model"])


def report(result: dict[str, Any]) -> list[tuple[str, bool]]:
    rates = result["tokens_per_s"]
    base = max(rates["raw generate (main thread)"], rates["raw generate (worker thread)"])
    print(
        f"\n{result['model']}: {result['parameters'] / 1e6:.1f}M parameters, {result['dtype']}, "
        f"{result['torch_threads']} torch threads, {result['prompt_tokens']} prompt tokens → "
        f"{result['new_tokens']} new, median of {result['rounds']} rounds"
    )
    rows = []
    for name, rate in rates.items():
        spread = result["tokens_per_s_all"][name]
        cpu = result["cpu_ms_per_token"][name]
        rows.append([name, f"{rate:.1f}", f"{min(spread):.1f}-{max(spread):.1f}", f"{rate / base:.3f}x", f"{cpu:.2f}"])
    print(table(["variant", "tokens/s (median)", "range", "vs best raw", "CPU ms/token (all threads)"], rows))
    for name, counts in result["token_counts"].items():
        if counts != [result["new_tokens"]] and name != "raw + TextIteratorStreamer":
            print(f"  note: {name} produced {counts} tokens, not {result['new_tokens']}")
    # Paired per round: both figures of a ratio come from the same round, so load drift cancels.
    every = result["tokens_per_s_all"]
    main_raw, worker_raw = every["raw generate (main thread)"], every["raw generate (worker thread)"]
    best_raw = [max(a, b) for a, b in zip(main_raw, worker_raw, strict=True)]
    vs_raw = statistics.median(s / b for s, b in zip(every["llmctl stream"], best_raw, strict=True))
    vs_non_stream = statistics.median(
        s / n for s, n in zip(every["llmctl stream"], every["llmctl non-stream"], strict=True)
    )
    print(f"  paired per round (median): stream/raw {vs_raw:.3f}x, stream/non-stream {vs_non_stream:.3f}x")
    fresh = result["fresh_process_tokens_per_s"] / base
    print(
        f"  llmctl bench in a fresh process (no warm-up run): "
        f"{result['fresh_process_tokens_per_s']:.1f} tokens/s, {fresh:.3f}x best raw"
    )
    return [
        (f"{result['model']}: llmctl stream >= {GOAL}x raw (paired {vs_raw:.3f}x)", vs_raw >= GOAL),
        (f"{result['model']}: llmctl in a fresh process >= {GOAL}x raw ({fresh:.3f}x)", fresh >= GOAL),
        (
            f"{result['model']}: streaming within noise of non-streaming, >= {GOAL}x (paired {vs_non_stream:.3f}x)",
            vs_non_stream >= GOAL,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", help="a local model folder (repeatable)")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=512, help="width of the built Llama (default 512)")
    parser.add_argument("--layers", type=int, default=8, help="layers of the built Llama (default 8)")
    parser.add_argument("--vocab", type=int, default=4096, help="BPE vocabulary of the built Llama")
    parser.add_argument("--no-demo", action="store_true", help="skip the shipped demo model")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from llmctl.paths import demo_model_dir

    info = machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="llmctl-localgen-") as tmp:
        targets: list[tuple[Path, str]] = [(p, str(p)) for p in args.model or []]
        if not args.model:
            folder = build_model(Path(tmp) / "llama", hidden=args.hidden, layers=args.layers, vocab=args.vocab)
            targets.append((folder, f"llama h{args.hidden} x{args.layers}"))
            demo = demo_model_dir()
            if not args.no_demo and (demo / "config.json").exists():
                targets.append((demo, "demo model"))
        for folder, label in targets:
            result = bench_model(folder, new_tokens=args.new_tokens, rounds=args.rounds, label=label)
            result["fresh_process_tokens_per_s"] = fresh_process_rate(
                folder,
                prompt_tokens=result["prompt_tokens"],
                new_tokens=args.new_tokens,
                runs=args.rounds,
                threads=args.threads,
            )
            results.append(result)
        decoding = decoder_cost(targets[0][0])
    info["load_average_after"] = load_average()
    print(f"Machine: {describe(info)}; load average after: {info['load_average_after']}")
    verdicts = []
    for result in results:
        verdicts.extend(report(result))
    print(f"\nStreaming text decoding, {targets_label(results)} tokenizer, µs per token:")
    rows = [
        [str(n), f"{c['llmctl_us_per_token']:.1f}", f"{c['full_redecode_us_per_token']:.1f}"]
        for n, c in decoding.items()
    ]
    print(table(["answer tokens", "llmctl (window)", "re-decode all (baseline)"], rows))
    print()
    for label, ok in verdicts:
        print(f"{'MET ' if ok else 'MISS'}  {label}")
    if args.json:
        print(json.dumps({"machine": info, "results": results, "decoding": decoding}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
