"""Credits, the unit every quota, allowance, reservation and usage figure is kept in.

Amounts are integers in micro-credits (1 credit = MICRO micro-credits), so that sums stay exact. Prices
are credits per million tokens, so tokens × price is already micro-credits. Keys, settings, policy and
usage all count in this unit; nothing here imports another part of the app.
"""
from __future__ import annotations

MICRO = 1_000_000


def cost_micro(input_tokens: int, output_tokens: int, input_price: float, output_price: float) -> int:
    """Micro-credits a request costs: its tokens at the model's prices, rounded to the nearest micro-credit.
    A negative token count (a provider's bad report) counts as zero tokens."""
    return round(max(0, input_tokens) * input_price + max(0, output_tokens) * output_price)
