"""KV-cache reuse in ``llmctl chat``: a 10-turn local chat with the cache kept between turns and without.

    .venv/bin/python benchmarks/chat_kv_reuse.py                   # a 512-wide, 8-layer Llama built here
    .venv/bin/python benchmarks/chat_kv_reuse.py --rounds 5 --reply-tokens 48
    .venv/bin/python benchmarks/chat_kv_reuse.py --model PATH      # any local model folder (e.g. the demo)

Goal (issue 4): with reuse, turn 10 costs at most 1.3x turn 1.

Two chat sessions (``ChatSession``, the service ``llmctl chat`` runs) share one loaded model:
one wraps it in ``KVCacheProvider(reuse=True)``, the other in ``reuse=False`` (what
``--no-kv-cache`` does: every turn processes the whole templated history). Both get the same
10 user messages, greedy, with replies of exactly ``--reply-tokens`` tokens (``min_new_tokens``
on the model's generation config keeps end-of-sequence from cutting a reply short), so both
see the same prompts; the script checks that their replies are identical.

Turns run interleaved (turn i with reuse, turn i without, order alternating), so a busy
machine slows both alike; each figure is the median over ``--rounds`` whole conversations,
after a warm-up conversation. Per turn it prints the prompt length, the prompt tokens
actually processed (prefill), the time to the first token (mostly prefill) and the latency
of the whole turn.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import describe, load_average, machine, table
from local_generation import build_model

GOAL = 1.3
MESSAGES = [
    "Tell me about the harbour committee meeting on that grey Tuesday morning and who was there.",
    "What did the engineers say about the new breakwater, the dredging schedule and the steel?",
    "How did the residents feel about the noise, the traffic and the old lighthouse by the rocks?",
    "After lunch they talked about tides and insurance; summarise the main worries in a few lines.",
    "Which of the migratory birds were mentioned, and why did they matter to the harbour plans?",
    "List the numbers that came up: 0 1 2 3 4 5 6 7 8 9 10 100 1000, and what each one counted.",
    "Who objected most strongly, and what compromise did the chair propose before the vote?",
    "Describe the storm that hit the town the following week and what it did to the old pier.",
    "How did the lighthouse keeper guide the fishing boats home through the worst of the storm?",
    "Finally, write a short closing paragraph for the committee's report on the whole affair.",
]


def run_conversations(folder: Path, *, turns: int, reply_tokens: int, rounds: int, label: str) -> dict[str, Any]:
    from llmctl.config import Settings
    from llmctl.domain import GenerationParams
    from llmctl.providers.hf.kv_cache import KVCacheProvider
    from llmctl.providers.hf.loading import load_model
    from llmctl.providers.hf.provider import HuggingFaceProvider
    from llmctl.providers.registry import resolve
    from llmctl.services.chat.session import ChatSession

    settings = Settings()
    resolved = resolve(str(folder), settings)
    loaded = load_model(resolved)
    # Exactly reply_tokens per reply in both sessions: EOS is suppressed until then.
    loaded.model.generation_config.min_new_tokens = reply_tokens
    params = GenerationParams(temperature=0, max_tokens=reply_tokens)

    def session(reuse: bool) -> ChatSession:
        def opener(r: Any) -> KVCacheProvider:
            return KVCacheProvider(HuggingFaceProvider(r, loaded=loaded), reuse=reuse)

        return ChatSession(
            settings,
            str(folder),
            params=params,
            system="You are a careful assistant who answers in plain prose.",
            opener=opener,
            record_usage=False,
        )

    def one_turn(chat: ChatSession, text: str) -> dict[str, Any]:
        turn = chat.start_turn(text)
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in turn.deltas():
            pass
        latency, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        outcome = turn.finish()
        usage = outcome.turn.usage
        reused = usage.cached_input_tokens or 0
        return {
            "prompt": usage.input_tokens,
            "prefill": (usage.input_tokens or 0) - reused,
            "reused": reused,
            "output": usage.output_tokens,
            "ttft_s": outcome.result.timing.first_token_s,
            "latency_s": latency,
            "cpu_s": cpu,
            "reply": outcome.turn.reply,
        }

    messages = [MESSAGES[i % len(MESSAGES)] for i in range(turns)]
    samples: dict[bool, list[list[dict[str, Any]]]] = {True: [], False: []}
    identical = True
    for round_index in range(rounds + 1):
        chats = {True: session(True), False: session(False)}
        results: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for i, text in enumerate(messages):
            order = (True, False) if (i + round_index) % 2 == 0 else (False, True)
            for reuse in order:
                results[reuse].append(one_turn(chats[reuse], text))
        identical &= [r["reply"] for r in results[True]] == [r["reply"] for r in results[False]]
        if round_index > 0:  # round 0 warms up
            for reuse in (True, False):
                samples[reuse].append(results[reuse])

    def per_turn(reuse: bool, key: str) -> list[float]:
        return [statistics.median(float(run[i][key]) for run in samples[reuse]) for i in range(turns)]

    report: dict[str, Any] = {"label": label, "turns": turns, "reply_tokens": reply_tokens, "rounds": rounds}
    for reuse, name in ((True, "reuse"), (False, "no_reuse")):
        keys = ("prompt", "prefill", "reused", "ttft_s", "latency_s", "cpu_s")
        report[name] = {key: per_turn(reuse, key) for key in keys}
        latency = report[name]["latency_s"]
        report[name]["ratio_last_first"] = latency[-1] / latency[0]
        cpu = report[name]["cpu_s"]
        report[name]["cpu_ratio_last_first"] = cpu[-1] / cpu[0]
        ttft = report[name]["ttft_s"]
        report[name]["ttft_ratio_last_first"] = ttft[-1] / ttft[0]
    report["replies_identical"] = identical
    report["output_tokens_per_reply"] = sorted({r["output"] for run in samples[True] for r in run})
    return report


def print_report(report: dict[str, Any]) -> None:
    reuse, fresh = report["reuse"], report["no_reuse"]
    rows = []
    for i in range(report["turns"]):
        rows.append(
            [
                str(i + 1),
                f"{reuse['prompt'][i]:.0f}",
                f"{reuse['prefill'][i]:.0f}",
                f"{reuse['ttft_s'][i] * 1000:.0f}",
                f"{reuse['latency_s'][i] * 1000:.0f}",
                f"{reuse['cpu_s'][i] * 1000:.0f}",
                f"{fresh['prefill'][i]:.0f}",
                f"{fresh['ttft_s'][i] * 1000:.0f}",
                f"{fresh['latency_s'][i] * 1000:.0f}",
                f"{fresh['cpu_s'][i] * 1000:.0f}",
            ]
        )
    headers = [
        "turn",
        "prompt tok",
        "reuse: prefill tok",
        "first tok ms",
        "latency ms",
        "cpu ms",
        "no reuse: prefill tok",
        "first tok ms",
        "latency ms",
        "cpu ms",
    ]
    print(
        f"\n{report['label']}: {report['turns']} turns, {report['reply_tokens']}-token replies, "
        f"median of {report['rounds']} conversations"
    )
    print(table(headers, rows))
    ok = reuse["ratio_last_first"] <= GOAL
    print(
        f"\nturn {report['turns']} / turn 1 latency: with reuse {reuse['ratio_last_first']:.2f}x "
        f"(goal <= {GOAL}x: {'met' if ok else 'NOT met'}), without reuse {fresh['ratio_last_first']:.2f}x"
    )
    print(
        f"turn {report['turns']} / turn 1 CPU time (the work, whatever else runs on the machine): "
        f"with reuse {reuse['cpu_ratio_last_first']:.2f}x, without reuse {fresh['cpu_ratio_last_first']:.2f}x"
    )
    print(
        f"turn {report['turns']} / turn 1 time to first token: with reuse {reuse['ttft_ratio_last_first']:.2f}x, "
        f"without reuse {fresh['ttft_ratio_last_first']:.2f}x"
    )
    print(
        f"replies identical with and without reuse: {'yes' if report['replies_identical'] else 'NO'}; "
        f"output tokens per reply: {report['output_tokens_per_reply']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="A local model folder (default: build a Llama here).")
    parser.add_argument("--hidden", type=int, default=512, help="Width of the built model.")
    parser.add_argument("--layers", type=int, default=8, help="Layers of the built model.")
    parser.add_argument("--vocab", type=int, default=2000, help="Vocabulary of the built model's tokenizer.")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--reply-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="Whole conversations measured (after a warm-up).")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice).")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON too.")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    print(f"machine: {describe(info)}; torch threads {torch.get_num_threads()}")
    build: Callable[[Path], Path] = lambda folder: build_model(  # noqa: E731
        folder, hidden=args.hidden, layers=args.layers, vocab=args.vocab
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is not None:
            folder, label = args.model, str(args.model)
        else:
            folder = build(Path(tmp) / "llama")
            label = f"Llama hidden {args.hidden}, {args.layers} layers (random weights)"
        report = run_conversations(
            folder, turns=args.turns, reply_tokens=args.reply_tokens, rounds=args.rounds, label=label
        )
    report["machine"] = info
    report["load_average_after"] = load_average()
    print_report(report)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0 if report["replies_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
