"""The one cost rule: tokens at the model's prices in micro-credits."""
from app.credits import MICRO, cost_micro


def test_cost_is_tokens_times_price_per_million_rounded():
    assert MICRO == 1_000_000
    assert cost_micro(1_000_000, 0, 2.5, 0.0) == 2_500_000  # a million input tokens at 2.5 credits
    assert cost_micro(3, 1, 0.5, 0.25) == 2  # 1.75 → 2


def test_negative_token_counts_count_as_zero():
    # A provider's bad report must neither lower the cost of the other side nor turn it into a credit.
    assert cost_micro(-100, 10, 1.0, 1.0) == 10
    assert cost_micro(10, -100, 1.0, 1.0) == 10
    assert cost_micro(-5, -5, 3.0, 3.0) == 0
