"""GGUF models on llama.cpp through llmctl, against llama-cpp-python called directly and against llmctl's
transformers path on the same weights, each against this machine's memory-bandwidth limit, in one run.

    .venv/bin/python benchmarks/gguf_speed.py                  # a ~109M Llama (SmolLM2-135M's shape) built here
    .venv/bin/python benchmarks/gguf_speed.py --rounds 5 --new-tokens 256

Goals (issue 16): llmctl-GGUF >= 0.95x llama-cpp-python direct; llmctl-GGUF q8_0 >= 5x
llmctl-transformers fp32 on the same weights.

The model: a random-init Llama of SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads, 3 KV
heads, MLP 1536) with a byte-level BPE tokenizer trained here and a Llama-3 chat template, saved
with ``save_pretrained`` and written to GGUF (f32 and q8_0) by ``tests/tiny_gguf.py``.

What runs, greedy, one chat prompt, up to ``--new-tokens`` new tokens:

- ``direct <type>``: ``llama_cpp.Llama.generate`` on the prompt's ids (tokenized by llama.cpp from
  the same templated text), stopping at an end token: the baseline for llmctl's engine;
- ``llmctl gguf <type>``: ``LlamaCppProvider.stream(request)`` (what ``llmctl generate -m x.gguf``
  runs), text deltas consumed as they come;
- ``llmctl transformers fp32``: ``HuggingFaceProvider.stream(request)`` on the saved folder.

Every figure is decode tokens/s: tokens after the first / time from the first to the last (the
prompt's prefill is left out; it is short). Each round runs every variant once, in rotating order,
after one warm-up round; figures are medians over rounds, with min-max; the ratios are per round
(both sides from the same round), then the median. The bandwidth limit is measured here (numpy
copies of a 512 MiB array: bytes read + written / time, best of 5) and divided by the bytes a
token reads (the weights: GGUF tensor bytes, or 4 bytes a parameter for fp32).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo: llmctl, tests.tiny_gguf

from _common import describe, load_average, machine, table
from local_generation import CORPUS

from tests.tiny_models import LLAMA3_TEMPLATE

GOAL_VS_DIRECT = 0.95
GOAL_Q8_VS_TRANSFORMERS = 5.0
PROMPT = "Write a long story about a harbour town, its lighthouse keeper and the storm of the century."


def build_model(folder: Path) -> Path:
    """SmolLM2-135M's shape, random weights, a tokenizer trained on CORPUS."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=specials[0], eos_token=specials[1], pad_token=specials[1]
    )
    tokenizer.chat_template = LLAMA3_TEMPLATE
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def bandwidth_gbps(size_mib: int = 512, repeats: int = 5) -> float:
    """Memory bandwidth: bytes read + written by a large array copy, best of ``repeats``."""
    import numpy as np

    source = np.ones(size_mib * 2**20 // 8, dtype=np.float64)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best / 1e9


def decode_rate(token_times: list[tuple[float, int]]) -> tuple[float, int]:
    """(tokens/s after the first token, tokens generated) from (time, tokens so far) marks."""
    if len(token_times) < 2:
        return float("nan"), token_times[-1][1] if token_times else 0
    (t0, n0), (t1, n1) = token_times[0], token_times[-1]
    return (n1 - n0) / (t1 - t0), n1


def direct_runner(path: Path, prompt_text: str, new_tokens: int, threads: int) -> Callable[[], tuple[float, int]]:
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    ids = llm.tokenize(prompt_text.encode(), add_bos=False, special=True)

    def run() -> tuple[float, int]:
        llm.reset()
        marks: list[tuple[float, int]] = []
        for token in llm.generate(ids, temp=0.0, top_k=0, min_p=0.0, repeat_penalty=1.0):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            llm.detokenize([token])  # what any streaming caller pays to show the token
            marks.append((time.perf_counter(), len(marks) + 1))
            if len(marks) >= new_tokens:
                break
        return decode_rate(marks)

    return run


def provider_runner(provider: Any, new_tokens: int) -> Callable[[], tuple[float, int]]:
    from llmctl.domain import GenerationParams, GenerationRequest, Message, TextDelta

    request = GenerationRequest((Message("user", PROMPT),), GenerationParams(temperature=0, max_tokens=new_tokens))
    provider.prepare()

    def run() -> tuple[float, int]:
        marks: list[tuple[float, int]] = []
        count = 0
        for event in provider.stream(request):
            if isinstance(event, TextDelta):
                count += event.tokens or 0
                sys.stdout.write("")  # the text goes nowhere; llmctl writes it to a pipe
                marks.append((time.perf_counter(), count))
        return decode_rate(marks)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    from llmctl.config import Settings
    from llmctl.providers.hf.provider import HuggingFaceProvider
    from llmctl.providers.llamacpp.gguf_file import read_gguf_header
    from llmctl.providers.llamacpp.machine import physical_cores
    from llmctl.providers.llamacpp.provider import LlamaCppProvider
    from llmctl.providers.llamacpp.template import render
    from llmctl.providers.registry import resolve
    from tests.tiny_gguf import write_gguf

    info = machine()
    print(f"Machine: {describe(info)}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    work = Path(tempfile.mkdtemp(prefix="gguf-speed-"))
    started = time.perf_counter()
    folder = build_model(work / "smollm2-shape")
    files = {t: write_gguf(folder, work / f"model-{t}.gguf", t) for t in ("f32", "q8_0")}
    print(f"Built the model and its GGUF files in {time.perf_counter() - started:.0f} s ({work})")

    settings = Settings()
    threads = physical_cores()
    header = {t: read_gguf_header(p) for t, p in files.items()}
    parameters = header["f32"].parameters
    template = header["q8_0"].chat_template or ""
    from llmctl.domain import Message

    prompt_text = render(template, [Message("user", PROMPT)], bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    runners: dict[str, Callable[[], tuple[float, int]]] = {}
    weight_bytes: dict[str, int] = {}
    for t, path in files.items():
        runners[f"direct {t}"] = direct_runner(path, prompt_text, args.new_tokens, threads)
        runners[f"llmctl gguf {t}"] = provider_runner(LlamaCppProvider(resolve(str(path), settings)), args.new_tokens)
        weight_bytes[f"direct {t}"] = weight_bytes[f"llmctl gguf {t}"] = header[t].tensor_bytes
    runners["llmctl transformers fp32"] = provider_runner(
        HuggingFaceProvider(resolve(str(folder), settings)), args.new_tokens
    )
    weight_bytes["llmctl transformers fp32"] = 4 * parameters

    names = list(runners)
    for name in names:  # warm-up round
        runners[name]()
    rates: dict[str, list[float]] = {n: [] for n in names}
    produced: dict[str, list[int]] = {n: [] for n in names}
    bandwidths: list[float] = []
    for round_index in range(args.rounds):
        bandwidths.append(bandwidth_gbps())
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            rate, count = runners[name]()
            rates[name].append(rate)
            produced[name].append(count)
        print(f"round {round_index + 1}/{args.rounds} done, load average {load_average()}")

    bandwidth = max(bandwidths)
    rows = []
    for name in names:
        limit = bandwidth * 1e9 / weight_bytes[name]
        median = statistics.median(rates[name])
        rows.append(
            [
                name,
                f"{median:.1f}",
                f"{min(rates[name]):.1f}-{max(rates[name]):.1f}",
                f"{weight_bytes[name] / 1e6:.0f}",
                f"{limit:.0f}",
                f"{median / limit:.0%}",
                f"{min(produced[name])}-{max(produced[name])}",
            ]
        )
    print(f"\n{parameters / 1e6:.1f}M parameters, {threads} threads (physical cores), greedy, {args.rounds} rounds")
    print(f"Memory bandwidth (copy): {bandwidth:.1f} GB/s (rounds: {', '.join(f'{b:.1f}' for b in bandwidths)})\n")
    print(table(["variant", "tok/s", "min-max", "weights MB", "limit tok/s", "of limit", "tokens"], rows))

    def ratios(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rates[a], rates[b], strict=True)]

    verdicts = {
        "llmctl gguf q8_0 / direct q8_0": (ratios("llmctl gguf q8_0", "direct q8_0"), GOAL_VS_DIRECT),
        "llmctl gguf f32 / direct f32": (ratios("llmctl gguf f32", "direct f32"), GOAL_VS_DIRECT),
        "llmctl gguf q8_0 / llmctl transformers fp32": (
            ratios("llmctl gguf q8_0", "llmctl transformers fp32"),
            GOAL_Q8_VS_TRANSFORMERS,
        ),
        "llmctl gguf f32 / llmctl transformers fp32": (ratios("llmctl gguf f32", "llmctl transformers fp32"), None),
    }
    print()
    for label, (values, goal) in verdicts.items():
        median = statistics.median(values)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        verdict = "" if goal is None else f" (goal >= {goal}: {'met' if median >= goal else 'NOT met'})"
        print(f"{label}: {median:.2f}x, per round {spread}{verdict}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "parameters": parameters,
                    "bandwidth_gbps": bandwidths,
                    "rates": rates,
                    "tokens": produced,
                    "ratios": {k: v for k, (v, _) in verdicts.items()},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
