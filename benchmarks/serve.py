"""What a running ``llmctl serve`` saves: cold vs warm-attached ``generate``, parallel clients, first token.

    .venv/bin/python benchmarks/serve.py                 # 3 runs each, 8 clients
    .venv/bin/python benchmarks/serve.py --runs 5 --clients 8 --max-tokens 32 --json

Measured in one run, on the demo model, with a fresh llmctl home:

1. ``llmctl generate --no-server`` (cold: imports torch and transformers, loads the weights) against
   ``llmctl generate`` attached to a warm server (goal: at most 0.5 s), round-robin;
2. 8 concurrent streaming clients on the server against 8 sequential cold ``generate`` calls
   (total wall time for the same 8 answers);
3. time to the first token through the server (HTTP, SSE) against in-process (the model already
   loaded in this process, ``provider.stream``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Sample, describe, machine, median, run_process, summarize, table

PROMPT = "What is the capital of France?"
WARM_TARGET_S = 0.5


def llmctl_argv() -> list[str]:
    script = Path(sys.executable).parent / "llmctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "llmctl"]


def start_server(env: dict[str, str], home: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    argv = [*llmctl_argv(), "serve", "--port", "0", "-m", "demo"]
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, err = process.communicate()
            raise RuntimeError(f"llmctl serve exited {process.returncode}: {err.decode()}")
        try:
            url = json.loads((home / "server.json").read_text())["url"]
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return process, url
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("llmctl serve did not start")


def stream_once(url: str, max_tokens: int) -> tuple[float, float]:
    """(seconds to the first content chunk, seconds to the end) of one streaming request."""
    import httpx

    body = {
        "model": "demo",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    started = time.perf_counter()
    first = None
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as response:
        for line in response.iter_lines():
            text = '"content": "' in line and '"content": ""' not in line  # the role chunk has no text
            if first is None and line.startswith("data: {") and text:
                first = time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started


def in_process_first_token(max_tokens: int, runs: int) -> float:
    from llmctl.config import Settings
    from llmctl.domain import GenerationParams, GenerationRequest, Message, TextDelta
    from llmctl.providers.registry import open_provider, resolve

    provider = open_provider(resolve("demo", Settings()))
    provider.prepare()
    request = GenerationRequest((Message("user", PROMPT),), GenerationParams(temperature=0, max_tokens=max_tokens))
    times = []
    for _ in range(runs + 1):  # the first one warms up torch's kernels
        started = time.perf_counter()
        events = provider.stream(request)
        for event in events:
            if isinstance(event, TextDelta) and event.text:
                times.append(time.perf_counter() - started)
                break
        events.close()  # type: ignore[attr-defined]
    provider.close()
    return median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="llmctl-serve-bench-") as tmp:
        root = Path(tmp)
        config = root / "config.toml"
        config.write_text("[defaults]\ntemperature = 0.0\n")
        env = {**os.environ, "LLMCTL_HOME": str(root / "home"), "LLMCTL_CONFIG": str(config), "HF_HUB_OFFLINE": "1"}
        generate = [*llmctl_argv(), "generate", "-m", "demo", "--max-tokens", str(args.max_tokens), PROMPT]
        server, url = start_server(env, root / "home")
        try:
            run_process(generate, env)  # warm-up: page cache, .pyc files, the server's first request
            cold: list[Sample] = []
            warm: list[Sample] = []
            for _ in range(args.runs):
                cold.append(run_process([*generate, "--no-server"], env))
                warm.append(run_process(generate, env))
            sequential = time.perf_counter()
            for _ in range(args.clients):
                run_process([*generate, "--no-server"], env)
            sequential_s = time.perf_counter() - sequential
            together = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(lambda _: stream_once(url, args.max_tokens), range(args.clients)))
            concurrent_s = time.perf_counter() - together
            served_first = median([stream_once(url, args.max_tokens)[0] for _ in range(args.runs)])
        finally:
            server.terminate()
            server.wait(60)
        local_first = in_process_first_token(args.max_tokens, args.runs)
    cold_s, warm_s = summarize(cold), summarize(warm)
    result: dict[str, Any] = {
        "machine": info,
        "cold_generate": cold_s,
        "warm_generate": warm_s,
        "warm_vs_cold": warm_s["wall_median_s"] / cold_s["wall_median_s"],
        "warm_target_met": warm_s["wall_median_s"] <= WARM_TARGET_S,
        "clients": args.clients,
        "sequential_generate_total_s": sequential_s,
        "concurrent_clients_total_s": concurrent_s,
        "concurrency_speedup": sequential_s / concurrent_s,
        "first_token_server_s": served_first,
        "first_token_in_process_s": local_first,
        "first_token_overhead_s": served_first - local_first,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(describe(info))
    print(
        table(
            ("measure", "wall median (s)", "cpu median (s)", "ratio"),
            [
                (
                    "generate, cold (--no-server)",
                    f"{cold_s['wall_median_s']:.2f}",
                    f"{cold_s['cpu_median_s']:.2f}",
                    "1.00",
                ),
                (
                    "generate, warm (attached)",
                    f"{warm_s['wall_median_s']:.2f}",
                    f"{warm_s['cpu_median_s']:.2f}",
                    f"{result['warm_vs_cold']:.2f}",
                ),
                (f"{args.clients} sequential generate (total)", f"{sequential_s:.2f}", "", "1.00"),
                (
                    f"{args.clients} concurrent clients (total)",
                    f"{concurrent_s:.2f}",
                    "",
                    f"{concurrent_s / sequential_s:.2f} ({result['concurrency_speedup']:.1f}x faster)",
                ),
                ("first token, in-process", f"{local_first:.3f}", "", "1.00"),
                ("first token, through the server", f"{served_first:.3f}", "", f"{served_first / local_first:.2f}"),
            ],
        )
    )
    verdict = "met" if result["warm_target_met"] else "NOT met"
    print(f"warm generate goal <= {WARM_TARGET_S} s: {verdict}")


if __name__ == "__main__":
    main()
