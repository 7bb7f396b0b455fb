"""What a call cost: prices from the config or from genai-prices, applied to a Usage.

Where a price comes from, most specific first:

1. ``[models.ALIAS] input_price_per_mtok`` / ``output_price_per_mtok`` (source ``config``);
2. ``[providers.NAME] input_price_per_mtok`` / ``output_price_per_mtok`` (source ``config``),
   meant for OpenAI-compatible servers that genai-prices cannot know;
3. genai-prices' bundled price table (source ``genai-prices``; offline, never updated from the
   network by llmctl) for hosted models: OpenAI and Anthropic by provider id, any other
   OpenAI-compatible server by its base URL;
4. local Hugging Face models cost 0 (source ``local``).

Anything else has no price: its cost is ``None`` (shown as "—"), never 0, and
``unknown_price_hint`` says how to set one. A config price half set (only input or only
output) is completed from genai-prices when it knows the model, else it is unknown.

Token semantics: ``Usage.input_tokens`` counts all input tokens, cached ones included;
``cached_input_tokens`` is the part served from the provider's cache. genai-prices charges
that part at the provider's cache-read price; a config price charges it as plain input.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from llmctl.domain import Usage
from llmctl.provider_specs import configured_prices
from llmctl.providers.base import ResolvedModel

_PER_MTOK = 1_000_000


class PriceSource(StrEnum):
    CONFIG = "config"
    GENAI_PRICES = "genai-prices"
    LOCAL = "local"


@dataclass(frozen=True)
class Price:
    """USD per million tokens, and where the figures came from."""

    input_per_mtok: float
    output_per_mtok: float
    source: PriceSource
    cached_input_per_mtok: float | None = None  # None: cached input is charged as input

    @property
    def is_free(self) -> bool:
        return self.input_per_mtok == 0 and self.output_per_mtok == 0 and not self.cached_input_per_mtok


@dataclass(frozen=True)
class Cost:
    """The USD cost of one call and the price it was computed with."""

    usd: float
    price: Price


def price_for(resolved: ResolvedModel) -> Price | None:
    """The price of ``resolved`` per million tokens, or ``None`` when nobody knows it."""
    model = resolved.model_settings
    provider = resolved.provider_settings
    configured_in: float | None = None
    configured_out: float | None = None
    if model is not None:
        configured_in, configured_out = model.input_price_per_mtok, model.output_price_per_mtok
    provider_in, provider_out = configured_prices(provider)
    configured_in = provider_in if configured_in is None else configured_in
    configured_out = provider_out if configured_out is None else configured_out
    if configured_in is not None and configured_out is not None:
        return Price(configured_in, configured_out, PriceSource.CONFIG)

    if resolved.spec.local:
        if configured_in is None and configured_out is None:
            return Price(0.0, 0.0, PriceSource.LOCAL)
        # Half a local price: the missing half is free, as local models are.
        return Price(configured_in or 0.0, configured_out or 0.0, PriceSource.CONFIG)

    listed = _genai_price(resolved)
    if listed is None:
        return None
    if configured_in is None and configured_out is None:
        return listed
    return Price(
        listed.input_per_mtok if configured_in is None else configured_in,
        listed.output_per_mtok if configured_out is None else configured_out,
        PriceSource.CONFIG,
    )


def price_usage(resolved: ResolvedModel, usage: Usage, price: Price | None = None) -> Cost | None:
    """The cost of ``usage`` on ``resolved``; ``None`` when the price or a needed count is unknown.

    ``price`` skips the lookup when the caller already has it (a chat session prices
    every turn with the same one). A free model costs 0 even when its counts are unknown.
    """
    price = price if price is not None else price_for(resolved)
    if price is None:
        return None
    if price.is_free:
        return Cost(0.0, price)
    if usage.input_tokens is None or usage.output_tokens is None:
        return None
    if price.source is PriceSource.GENAI_PRICES:
        usd = _genai_cost(resolved, usage)
        if usd is not None:
            return Cost(usd, price)
    return Cost(cost_from_price(price, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens), price)


def cost_from_price(price: Price, input_tokens: int, output_tokens: int, cached_input_tokens: int | None) -> float:
    """Tokens times price per million; cached input at its own price when it has one."""
    cached = min(cached_input_tokens or 0, input_tokens) if price.cached_input_per_mtok is not None else 0
    total = (
        (input_tokens - cached) * price.input_per_mtok
        + cached * (price.cached_input_per_mtok or 0.0)
        + output_tokens * price.output_per_mtok
    )
    return total / _PER_MTOK


def unknown_price_hint(resolved: ResolvedModel) -> str:
    """How to give ``resolved`` a price (for a cost shown as unknown)."""
    if resolved.alias is not None and resolved.model_settings is not None:
        table = f"[models.{resolved.alias}]"
    else:
        table = f"[providers.{resolved.provider_name}] (or a [models.ALIAS] for {resolved.model_id})"
    return f"set input_price_per_mtok and output_price_per_mtok (USD per million tokens) under {table} in the config"


def _calc(resolved: ResolvedModel, usage: Any) -> Any:
    """genai-prices' calculation, or ``None`` when it does not know the model (or the server).

    The official APIs are found by provider id; any other base URL (an OpenAI-compatible
    server, a proxy) by its URL, so a local server is never priced as OpenAI.
    """
    provider_id = resolved.spec.pricing_vendor
    if provider_id is None:
        return None  # never priced (a local engine)
    base_url = getattr(resolved.provider_settings, "base_url", None)
    from genai_prices import calc_price

    try:
        if base_url:
            return calc_price(usage, resolved.model_id, provider_api_url=base_url)
        return calc_price(usage, resolved.model_id, provider_id=provider_id)
    except (LookupError, ValueError):
        return None


def listed_model_info(resolved: ResolvedModel) -> Any:
    """genai-prices' entry for a hosted model (name, context window ...), or ``None``."""
    if resolved.spec.pricing_vendor is None:
        return None
    from genai_prices import Usage as PricesUsage

    calculation = _calc(resolved, PricesUsage(input_tokens=0, output_tokens=0))
    return None if calculation is None else calculation.model


def _genai_price(resolved: ResolvedModel) -> Price | None:
    from genai_prices import Usage as PricesUsage

    calculation = _calc(resolved, PricesUsage(input_tokens=0, output_tokens=0))
    if calculation is None:
        return None
    prices = calculation.model_price
    input_mtok = _decimal(prices.input_mtok)
    output_mtok = _decimal(prices.output_mtok)
    if input_mtok is None or output_mtok is None:
        return None
    return Price(input_mtok, output_mtok, PriceSource.GENAI_PRICES, _decimal(prices.cache_read_mtok))


def _genai_cost(resolved: ResolvedModel, usage: Usage) -> float | None:
    from genai_prices import Usage as PricesUsage

    input_tokens = usage.input_tokens or 0
    cached = min(usage.cached_input_tokens or 0, input_tokens)
    calculation = _calc(
        resolved,
        PricesUsage(
            input_tokens=input_tokens,
            output_tokens=usage.output_tokens or 0,
            cache_read_tokens=cached or None,
        ),
    )
    return None if calculation is None else float(calculation.total_price)


def _decimal(value: object) -> float | None:
    """A genai-prices price as a float; tiered prices give their base tier."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    base = getattr(value, "base", None)
    return float(base) if isinstance(base, Decimal | int | float) else None
