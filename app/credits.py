"""Credits, the unit every quota, allowance, reservation and usage figure is kept in.

Amounts are integers in micro-credits (1 credit = MICRO micro-credits), so that sums stay exact. Prices
are credits per million tokens, so tokens × price is already micro-credits. Keys, settings, policy and
usage all count in this unit; nothing here imports another part of the app.
"""
from __future__ import annotations

import math

MICRO = 1_000_000
MAX_MICRO = 2**62  # any amount is kept below this, so that it fits a BIGINT column and a bound parameter


def round_up(amount: float) -> int:
    """Micro-credits for an amount, rounded up to the next whole micro-credit (so that nothing costs nothing),
    after dropping the float noise of the multiplication (1000 tokens × 0.3 is 300, not 301)."""
    if not amount > 0:  # also NaN
        return 0
    return min(MAX_MICRO, math.ceil(round(min(amount, float(MAX_MICRO)), 6)))


def cost_micro(input_tokens: int, output_tokens: int, input_price: float, output_price: float) -> int:
    """Micro-credits a request costs: its tokens at the model's prices, rounded up to the next micro-credit.
    A negative token count (a provider's bad report) counts as zero tokens."""
    return round_up(_tokens(input_tokens) * input_price + _tokens(output_tokens) * output_price)


def _tokens(count: int) -> float:
    return float(min(max(0, count), MAX_MICRO))
