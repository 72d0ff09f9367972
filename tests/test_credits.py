"""The one cost rule: tokens at the model's prices in micro-credits, rounded up."""
from app.credits import MAX_MICRO, MICRO, cost_micro


def test_cost_is_tokens_times_price_per_million():
    assert MICRO == 1_000_000
    assert cost_micro(1_000_000, 0, 2.5, 0.0) == 2_500_000  # a million input tokens at 2.5 credits
    assert cost_micro(1000, 500, 2.0, 10.0) == 7000


def test_costs_round_up_to_the_next_micro_credit():
    # Small requests are never free: any fraction of a micro-credit is a whole one.
    assert cost_micro(3, 1, 0.5, 0.25) == 2  # 1.75 → 2
    assert cost_micro(1, 0, 0.3, 0.0) == 1  # 0.3 → 1 (rounding to the nearest made it free)
    assert cost_micro(20, 10, 0.01, 0.01) == 1  # 0.3 → 1
    assert cost_micro(1, 1, 1.1, 0.0) == 2  # 1.1 → 2
    assert cost_micro(0, 0, 5.0, 5.0) == 0  # no tokens, no cost


def test_float_noise_does_not_add_a_micro_credit():
    assert 100 * 1.1 > 110  # 110.00000000000001
    assert cost_micro(100, 0, 1.1, 0.0) == 110
    assert cost_micro(3, 0, 0.1, 0.0) == 1  # 0.30000000000000004 → 1
    assert cost_micro(10, 10, 0.07, 0.03) == 1


def test_negative_token_counts_count_as_zero():
    # A provider's bad report must neither lower the cost of the other side nor turn it into a credit.
    assert cost_micro(-100, 10, 1.0, 1.0) == 10
    assert cost_micro(10, -100, 1.0, 1.0) == 10
    assert cost_micro(-5, -5, 3.0, 3.0) == 0


def test_absurd_token_counts_stay_within_a_bigint():
    assert cost_micro(10**400, 10**400, 1e6, 1e6) == MAX_MICRO < 2**63
