"""Benchmarking a model behind an API: a prompt of about the requested size, different on every call.

Servers with a prompt cache (vLLM's prefix caching, llama.cpp's slot cache, OpenAI's and
Anthropic's prompt caching) answer a prompt they have just seen without processing it
again, so repeating one prompt measures the cache, not prefill. Caches match on the
prompt's beginning, so every call's prompt *begins* with a line of its own (the run and
a nonce for this benchmark). What the API still reports as cached is kept per run
(``cached_prompt_tokens``) and summed up in the report, so a figure a cache inflated
says so.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from llmctl.domain import GenerationParams, GenerationRequest, Message
from llmctl.providers.base import Provider
from llmctl.services.bench import FILLER, BenchOptions, Clock, RunMeasurement, consume

HOSTED_INSTRUCTION = "Continue the following text for as long as you can, without repeating it:\n\n"


def hosted_prompt(count: int, header: str = "") -> str:
    """Text of roughly ``count`` tokens (about 0.75 words a token for English prose), after ``header``."""
    words = FILLER.split()
    wanted = max(1, round(count * 0.75) - len((header + HOSTED_INSTRUCTION).split()))
    body = [words[i % len(words)] for i in range(wanted)]
    return header + HOSTED_INSTRUCTION + " ".join(body)


def run_header(nonce: str, call: int) -> str:
    """The line that makes call ``call``'s prompt unlike any other's from its first token."""
    return f"Benchmark {nonce}, call {call}.\n"


def hosted_measurer(
    provider: Provider, options: BenchOptions, clock: Clock, nonce: str | None = None
) -> Callable[[], RunMeasurement]:
    nonce = nonce or secrets.token_hex(4)
    params = GenerationParams(temperature=0, max_tokens=options.max_tokens)
    calls = 0

    def measure() -> RunMeasurement:
        nonlocal calls
        calls += 1
        request = GenerationRequest(
            (Message("user", hosted_prompt(options.prompt_tokens, run_header(nonce, calls))),), params
        )
        first: list[float] = []

        def on_text() -> None:
            if not first:
                first.append(clock())

        started = clock()
        completion = consume(provider.stream(request), on_text=on_text)
        ended = clock()
        return RunMeasurement(
            ttft_s=first[0] - started if first else None,
            total_s=ended - started,
            prompt_tokens=completion.usage.input_tokens,
            output_tokens=completion.usage.output_tokens,
            finish_reason=completion.finish_reason,
            completion=completion,
            cached_prompt_tokens=completion.usage.cached_input_tokens,
        )

    return measure
