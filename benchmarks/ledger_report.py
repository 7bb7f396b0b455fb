"""How fast is ``llmctl usage`` over a ledger of a million calls?

Builds a ledger of N calls (default 1,000,000) through the same write path every command
uses (``UsageLedger.record_many``: rows plus the hourly rollup), then times, in the same
run and on the same file:

* the report: ``UsageLedger.summarize`` per ``--by`` grouping, all time and ``--since 7d``
  (whole hours from the rollup, edge hours from ``calls`` through its ``ts`` index);
* the baseline: the naive query, a GROUP BY over every row of ``calls``;
* the whole command: ``llmctl usage --json`` as a fresh process (Python start-up included).

    .venv/bin/python benchmarks/ledger_report.py            # 1,000,000 calls
    .venv/bin/python benchmarks/ledger_report.py --calls 100000 --keep /tmp/ledger.sqlite3
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from llmctl.services.usage.ledger import LEDGER_FILE, GroupBy, LedgerRecord, UsageLedger, UsageQuery

MODELS = [  # (provider, model, USD per million input / output tokens; None = unknown price)
    ("openai", "gpt-4o-mini", 0.15, 0.6),
    ("openai", "gpt-4o", 2.5, 10.0),
    ("openai", "gpt-4.1-mini", 0.4, 1.6),
    ("anthropic", "claude-3-5-haiku-latest", 0.8, 4.0),
    ("anthropic", "claude-sonnet-4-5", 3.0, 15.0),
    ("anthropic", "claude-opus-4-1", 15.0, 75.0),
    ("hf", "demo", 0.0, 0.0),
    ("hf", "llama-3.2-1b", 0.0, 0.0),
    ("hf", "qwen2.5-0.5b", 0.0, 0.0),
    ("my-vllm", "mistral-7b", None, None),
    ("my-vllm", "llama-3.1-8b", None, None),
    ("groq", "llama-3.3-70b-versatile", 0.59, 0.79),
]
COMMANDS = ("generate", "chat", "chat", "serve")
DAYS = 365


def synthetic_calls(count: int, seed: int = 7) -> Iterator[LedgerRecord]:
    rng = random.Random(seed)
    now = time.time()
    for _ in range(count):
        provider, model, price_in, price_out = rng.choice(MODELS)
        status = rng.choices(("ok", "error", "interrupted"), (97, 2, 1))[0]
        input_tokens = rng.randint(20, 4000)
        output_tokens = None if status == "error" else rng.randint(1, 1500)
        known = output_tokens is not None
        cost = None
        if price_in is not None and price_out is not None and known:
            cost = (input_tokens * price_in + (output_tokens or 0) * price_out) / 1e6
        yield LedgerRecord(
            ts=now - rng.random() * DAYS * 86400,
            command=rng.choice(COMMANDS),
            provider=provider,
            model=model,
            status=status,
            token_source="provider" if provider != "hf" else "exact",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens if output_tokens is not None else None,
            cost_usd=cost,
            price_input_per_mtok=price_in,
            price_output_per_mtok=price_out,
            price_source=None if price_in is None else ("local" if provider == "hf" else "genai-prices"),
            first_token_s=rng.random(),
            total_s=rng.random() * 10,
        )


def build(path: Path, count: int, chunk: int = 50_000) -> float:
    started = time.perf_counter()
    calls = synthetic_calls(count)
    with UsageLedger(path) as ledger:
        written = 0
        while written < count:
            batch = [next(calls) for _ in range(min(chunk, count - written))]
            ledger.record_many(batch)
            written += len(batch)
    return time.perf_counter() - started


def best_of(repeats: int, action: Callable[[], object]) -> tuple[float, float]:
    """(best, median) seconds over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


NAIVE_KEY = {
    "model": "model",
    "provider": "provider",
    "command": "command",
    "day": "date(ts, 'unixepoch', 'localtime')",
}


def naive_report(path: Path, by: GroupBy, since: float | None) -> list[tuple[object, ...]]:
    """The baseline: every row of ``calls`` read and grouped."""
    conn = sqlite3.connect(path)
    try:
        key = NAIVE_KEY[by]
        where = "WHERE ts >= ?" if since is not None else ""
        sql = (
            f"SELECT {key}, COUNT(*), SUM(input_tokens), COUNT(input_tokens), SUM(output_tokens), "
            f"COUNT(output_tokens), SUM(total_tokens), COUNT(total_tokens), SUM(cost_usd), COUNT(cost_usd) "
            f"FROM calls NOT INDEXED {where} GROUP BY {key}"
        )
        return conn.execute(sql, (since,) if since is not None else ()).fetchall()
    finally:
        conn.close()


def report(path: Path, by: GroupBy, since: float | None) -> object:
    with UsageLedger(path) as ledger:
        return ledger.summarize(UsageQuery(since=since), by=by)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the ledger here and keep it (reused if it exists)")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    home = Path(tmp.name)
    path = args.keep or home / LEDGER_FILE
    if not path.exists():
        seconds = build(path, args.calls)
        print(f"built a ledger of {args.calls:,} calls in {seconds:.1f} s ({args.calls / seconds:,.0f} calls/s)")
    with UsageLedger(path) as ledger:
        rows = ledger.count()
    conn = sqlite3.connect(path)
    rollup = dict(conn.execute("SELECT period, COUNT(*) FROM usage_rollup GROUP BY period").fetchall())
    conn.close()
    print(f"ledger: {rows:,} calls, {path.stat().st_size / 1e6:,.0f} MB  ({path})")
    print("rollup rows: " + ", ".join(f"{n:,} per {period}" for period, n in sorted(rollup.items())))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print()
    week_ago = time.time() - 7 * 86400
    print(f"{'report':<26}{'llmctl usage (best/median)':>30}{'naive full scan (best/median)':>34}{'ratio':>9}")
    worst = 0.0
    cases: list[tuple[str, GroupBy, float | None]] = [
        ("--by model", "model", None),
        ("--by provider", "provider", None),
        ("--by command", "command", None),
        ("--by day", "day", None),
        ("--by model --since 7d", "model", week_ago),
        ("--by day --since 7d", "day", week_ago),
    ]
    for label, by, since in cases:
        fast = best_of(args.repeats, functools.partial(report, path, by, since))
        slow = best_of(max(1, args.repeats // 2), functools.partial(naive_report, path, by, since))
        worst = max(worst, fast[1])
        print(
            f"{label:<26}{fast[0] * 1000:>17.1f} / {fast[1] * 1000:>6.1f} ms"
            f"{slow[0] * 1000:>21.1f} / {slow[1] * 1000:>6.1f} ms{slow[1] / fast[1]:>8.0f}x"
        )

    env = {**os.environ, "LLMCTL_HOME": str(path.parent), "LLMCTL_CONFIG": str(home / "none.toml")}
    if path.name != LEDGER_FILE:
        print("\n(skipping the end-to-end command: --keep must name a file called usage.sqlite3)")
    else:
        command = [sys.executable, "-m", "llmctl", "usage", "--json"]
        e2e = best_of(args.repeats, lambda: subprocess.run(command, env=env, check=True, capture_output=True))
        print(f"\n`llmctl usage --json` as a new process: best {e2e[0]:.3f} s, median {e2e[1]:.3f} s")
    print(f"slowest report median: {worst * 1000:.1f} ms (target < 500 ms)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
