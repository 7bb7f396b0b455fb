"""The pre-flight estimate: input counted, output bounded only by max_tokens, unknown prices said so."""

from __future__ import annotations

import pytest

from llmctl.services.compare.estimate import CostEstimate, ModelEstimate

GPT = ModelEstimate("gpt", 6, 90, "exact", 0.0000135, 0.000036)
CLAUDE = ModelEstimate("claude", 6, 96, "provider", 0.000288, 0.0009)
UNPRICED = ModelEstimate("vllm", 6, 88, "estimate", None, None)


def test_lines_with_a_ceiling() -> None:
    estimate = CostEstimate([GPT, CLAUDE, UNPRICED], max_tokens=10)
    assert estimate.lines() == [
        "Estimated cost before running (18 hosted calls; judge calls not included):",
        "  gpt: 6 calls, 90 input tokens (exact): $0.000013 input + at most $0.000036 output (--max-tokens 10)",
        "  claude: 6 calls, 96 input tokens (provider): $0.000288 input + at most $0.000900 output (--max-tokens 10)",
        "  vllm: 6 calls, 88 input tokens (estimate): no price, cost unknown",
        "  Total: at most $0.001238 for the priced models",
    ]
    assert estimate.at_most_usd == pytest.approx(0.0000135 + 0.000036 + 0.000288 + 0.0009)


def test_nothing_priced_is_unknown_not_zero() -> None:
    lines = CostEstimate([UNPRICED, ModelEstimate("one", 1, 1, "exact", None, None)], max_tokens=10).lines()
    assert lines[-2:] == [
        "  one: 1 call, 1 input token (exact): no price, cost unknown",
        "  Total: unknown (no price for any of them)",
    ]


def test_without_max_tokens_output_has_no_ceiling() -> None:
    estimate = CostEstimate([ModelEstimate("gpt", 2, 10, "exact", 0.5, None)], max_tokens=None)
    assert estimate.at_most_usd is None
    assert estimate.lines()[-2:] == [
        "  gpt: 2 calls, 10 input tokens (exact): $0.5000 input + output without a ceiling (set --max-tokens for one)",
        "  Total: at least $0.5000, output not bounded",
    ]


@pytest.mark.parametrize(
    ("models", "max_tokens", "asks"),
    [
        ([GPT], 10, False),
        ([ModelEstimate("big", 1, 10, "exact", 0.05, 0.06)], 10, True),  # the ceiling is above $0.10
        ([ModelEstimate("big", 1, 10, "exact", 0.05, None)], None, False),  # known input alone is below
        ([ModelEstimate("big", 1, 10, "exact", 0.2, None)], None, True),
        ([UNPRICED], 10, False),  # nothing known to be spent
    ],
)
def test_when_to_ask(models: list[ModelEstimate], max_tokens: int | None, asks: bool) -> None:
    assert CostEstimate(models, max_tokens).needs_confirmation() is asks
