"""Cost of a call: genai-prices offline, config overrides, local models free, unknown stays unknown."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from llmctl.config import Settings
from llmctl.domain import Completion, CountSource, FinishReason, Usage
from llmctl.errors import ProviderError
from llmctl.providers.registry import resolve
from llmctl.services.generation import GenerationResult, RunStatus, Timing
from llmctl.services.usage.accounting import record_call
from llmctl.services.usage.ledger import UsageLedger
from llmctl.services.usage.pricing import PriceSource, price_for, price_usage, unknown_price_hint

USAGE = Usage(1000, 500, CountSource.PROVIDER)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pricing must work offline: any connection attempt fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"pricing tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def settings(**data: Any) -> Settings:
    return Settings.model_validate(data)


def test_openai_model_is_priced_from_genai_prices_offline() -> None:
    resolved = resolve("openai/gpt-4o-mini", Settings())
    cost = price_usage(resolved, USAGE)
    assert cost is not None
    assert cost.price.source is PriceSource.GENAI_PRICES
    assert (cost.price.input_per_mtok, cost.price.output_per_mtok) == (0.15, 0.6)
    assert cost.usd == pytest.approx(1000 * 0.15e-6 + 500 * 0.6e-6)


def test_cached_input_is_charged_at_the_cache_read_price() -> None:
    resolved = resolve("openai/gpt-4o-mini", Settings())
    cost = price_usage(resolved, Usage(1000, 500, CountSource.PROVIDER, cached_input_tokens=400))
    assert cost is not None and cost.price.cached_input_per_mtok == 0.075
    assert cost.usd == pytest.approx(600 * 0.15e-6 + 400 * 0.075e-6 + 500 * 0.6e-6)


def test_anthropic_model_is_priced_too() -> None:
    cost = price_usage(resolve("anthropic/claude-3-5-haiku-latest", Settings()), USAGE)
    assert cost is not None and cost.usd == pytest.approx(1000 * 0.8e-6 + 500 * 4e-6)


def test_a_model_price_in_the_config_overrides_genai_prices() -> None:
    config = settings(
        models={
            "mini": {"provider": "openai", "id": "gpt-4o-mini", "input_price_per_mtok": 1, "output_price_per_mtok": 2}
        }
    )
    cost = price_usage(resolve("mini", config), USAGE)
    assert cost is not None and cost.price.source is PriceSource.CONFIG
    assert cost.usd == pytest.approx(1000 * 1e-6 + 500 * 2e-6)
    # the same model without the alias keeps the listed price
    unaliased = price_usage(resolve("openai/gpt-4o-mini", config), USAGE)
    assert unaliased is not None and unaliased.price.source is PriceSource.GENAI_PRICES


def test_a_provider_price_prices_every_model_of_an_openai_compatible_server() -> None:
    config = settings(
        providers={
            "my-vllm": {
                "kind": "openai",
                "base_url": "http://127.0.0.1:8000/v1",
                "input_price_per_mtok": 0.5,
                "output_price_per_mtok": 0.25,
            }
        }
    )
    cost = price_usage(resolve("my-vllm/mistral-7b", config), USAGE)
    assert cost is not None and cost.price.source is PriceSource.CONFIG
    assert cost.usd == pytest.approx(1000 * 0.5e-6 + 500 * 0.25e-6)


def test_half_a_config_price_is_completed_from_genai_prices() -> None:
    config = settings(models={"mini": {"provider": "openai", "id": "gpt-4o-mini", "output_price_per_mtok": 1}})
    price = price_for(resolve("mini", config))
    assert price is not None and (price.input_per_mtok, price.output_per_mtok) == (0.15, 1.0)


def test_an_unknown_model_has_no_price_and_a_hint_to_set_one() -> None:
    config = settings(providers={"my-vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"}})
    for reference in ("openai/no-such-model-xyz", "my-vllm/gpt-4o-mini"):
        resolved = resolve(reference, config)
        assert price_for(resolved) is None
        assert price_usage(resolved, USAGE) is None
    hint = unknown_price_hint(resolve("my-vllm/gpt-4o-mini", config))
    assert "input_price_per_mtok" in hint and "[providers.my-vllm]" in hint


def test_local_models_cost_nothing_unless_the_config_prices_them(tiny_models: dict[str, Path]) -> None:
    folder = str(tiny_models["llama"])
    cost = price_usage(resolve(folder, Settings()), Usage(None, None))
    assert cost is not None and cost.usd == 0 and cost.price.source is PriceSource.LOCAL
    config = settings(models={"mine": {"provider": "hf", "id": folder, "input_price_per_mtok": 0.2}})
    priced = price_usage(resolve("mine", config), USAGE)
    assert priced is not None and priced.price.source is PriceSource.CONFIG
    assert priced.usd == pytest.approx(1000 * 0.2e-6)


def test_unknown_token_counts_make_a_paid_call_cost_unknown() -> None:
    resolved = resolve("openai/gpt-4o-mini", Settings())
    assert price_usage(resolved, Usage(1000, None, CountSource.PROVIDER)) is None


# -- record_call --------------------------------------------------------------------------------


def result(usage: Usage = USAGE, status: RunStatus = RunStatus.OK, text: str = "the answer") -> GenerationResult:
    error = ProviderError("server hung up") if status is RunStatus.ERROR else None
    completion = Completion(text, FinishReason.ERROR if error else FinishReason.STOP, usage)
    return GenerationResult(completion, "gpt-4o-mini", "openai", Timing(0.25, 1.5), status, error)


def test_record_call_writes_the_cost_and_the_price_it_used() -> None:
    resolved = resolve("openai/gpt-4o-mini", Settings())
    off = settings(usage={"store_text": False})
    accounting = record_call(result(), resolved, settings=off, command="generate", prompt_text="secret prompt")
    assert accounting.saved and accounting.warning is None
    with UsageLedger() as ledger:
        (row,) = ledger.records()
    assert row == accounting.record
    assert (row.command, row.provider, row.model, row.status) == ("generate", "openai", "gpt-4o-mini", "ok")
    assert (row.input_tokens, row.output_tokens, row.total_tokens, row.token_source) == (1000, 500, 1500, "provider")
    assert row.cost_usd == pytest.approx(accounting.cost_usd)
    assert (row.price_input_per_mtok, row.price_output_per_mtok, row.price_source) == (0.15, 0.6, "genai-prices")
    assert (row.first_token_s, row.total_s) == (0.25, 1.5)
    assert row.prompt_text is None and row.response_text is None


def test_store_text_keeps_the_prompt_and_answer() -> None:
    config = settings(usage={"store_text": True})
    resolved = resolve("openai/gpt-4o-mini", config)
    record_call(result(), resolved, settings=config, command="generate", prompt_text="my prompt")
    with UsageLedger() as ledger:
        (row,) = ledger.records()
    assert (row.prompt_text, row.response_text) == ("my prompt", "the answer")


def test_a_failed_call_is_recorded_with_its_error_and_unknown_cost() -> None:
    config = settings(providers={"my-vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"}})
    resolved = resolve("my-vllm/mistral", config)
    accounting = record_call(
        result(Usage(12, None, CountSource.PROVIDER), RunStatus.ERROR), resolved, settings=config, command="chat"
    )
    assert accounting.cost is None and accounting.price_hint and "[providers.my-vllm]" in accounting.price_hint
    row = accounting.record
    assert (row.status, row.error, row.output_tokens, row.cost_usd) == ("error", "server hung up", None, None)


def test_a_ledger_that_cannot_be_written_gives_a_warning_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("LLMCTL_HOME", str(blocker / "home"))
    resolved = resolve("openai/gpt-4o-mini", Settings())
    accounting = record_call(result(), resolved, settings=Settings(), command="generate")
    assert not accounting.saved
    assert accounting.warning is not None and "Usage not recorded" in accounting.warning
    assert accounting.cost is not None  # the cost is still known and shown
