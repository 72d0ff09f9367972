"""Credit arithmetic and reservations against a real database: key quotas, monthly renewal, the organisation
allowance, small remainders, and the invariants under concurrent reservation and settlement."""
from __future__ import annotations

import random
import threading
import uuid

import pytest
from sqlalchemy import text

from app.catalog.entries import ModelEntry
from app.credits import cost_micro
from app.extensions import db
from app.policy import budget
from app.policy.service import PolicyDenied, Reservation, reserve_budget
from app.usage.settle import RequestRecord, settle_request

# 2 credits per million input tokens, 10 per million output tokens: 1 input token = 2 micro-credits.
MODEL = ModelEntry(id=1, public_id="demo", display_name="Demo", upstream_model="demo", enabled=True,
                   input_price=2.0, output_price=10.0, max_output_tokens=100)
FREE = ModelEntry(id=2, public_id="free", display_name="Free", upstream_model="free", enabled=True,
                  input_price=0.0, output_price=0.0)


def new_key(**policy):
    """Create a key through the keys service and return its verified snapshot (as the gateway sees it)."""
    from app.keys.service import create_key
    from app.keys.verify import verify_key

    _row, plaintext = create_key(f"k-{uuid.uuid4().hex[:6]}", **policy)
    return verify_key(plaintext), plaintext


def fresh(plaintext):
    from app.keys.verify import verify_key

    return verify_key(plaintext)


def key_row(key_id):
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT quota_micro, used_micro, reserved_micro, quota_period FROM api_keys "
                                 "WHERE id = :id"), {"id": key_id}).one()


def settle(key, reservation, cost, model="demo"):
    """The gateway's real settle step (app/usage/settle.py) with this reservation."""
    record = RequestRecord(request_id=uuid.uuid4().hex, endpoint="chat", status=200, key_id=key.id,
                           model=model, credits_micro=cost)
    settle_request(db.engine, record, reservation)


def log_total(key_id):
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT COALESCE(SUM(credits_micro), 0) FROM request_logs "
                                 "WHERE key_id = :id"), {"id": key_id}).scalar()


# --- arithmetic ----------------------------------------------------------------------------------------

def test_cost_and_worst_case_arithmetic():
    assert cost_micro(1000, 500, 2.0, 10.0) == 1000 * 2 + 500 * 10
    assert cost_micro(3, 0, 0.5, 0.0) == 2  # 1.5 rounded up
    assert cost_micro(1, 1, 0.3, 0.3) == 1  # 0.6 → 1
    assert budget.worst_case_micro(3, 0, 0.5, 0.0) == 2  # 1.5 rounded up
    assert budget.worst_case_micro(1, 1, 0.3, 0.3) == 1
    assert budget.worst_case_micro(0, 0, 5.0, 5.0) == 0
    assert budget.worst_case_micro(-5, 10, 1.0, 1.0) == 10
    assert budget.worst_case_micro(10, 50, 1.0, 2.0, choices=20) == 10 + 20 * 50 * 2  # every choice


def test_a_small_remainder_shrinks_the_cap_and_refuses_below_one_token_per_choice():
    worst = budget.WorstCase.of(100, 4, 2.0, 10.0)  # prompt 200, one token of cap 4 × 10 = 40
    assert worst.micro(50) == 200 + 50 * 40
    assert worst.cap_within(10_000, 50) == 50  # fits: the cap asked for
    assert worst.cap_within(1000, 50) == 20  # 200 + 20 × 40 = 1000
    assert worst.cap_within(999, 50) == 19
    assert worst.cap_within(240, 50) == 1  # the smallest request: one token per choice
    assert worst.cap_within(239, 50) is None
    assert worst.cap_within(150, 50) is None  # the prompt alone costs more
    assert worst.cap_within(0, 50) is None and worst.cap_within(-5, 50) is None
    free = budget.WorstCase.of(100, 4, 0.0, 0.0)
    assert free.cap_within(1, 50) == 50  # a free request while something remains
    assert free.cap_within(0, 50) is None
    assert budget.WorstCase.of(10**400, 10**400, 1.0, 1.0).micro(10**400) < 2**63  # absurd numbers fit a BIGINT


def test_near_quota_from_eighty_percent(make_key):
    assert not budget.near_quota(make_key(quota_micro=None, used_micro=10**9), "2026-03")
    assert not budget.near_quota(make_key(quota_micro=1000, used_micro=700, reserved_micro=99), "2026-03")
    assert budget.near_quota(make_key(quota_micro=1000, used_micro=700, reserved_micro=100), "2026-03")
    monthly = make_key(quota_micro=1000, used_micro=900, quota_monthly=True, quota_period="2026-02")
    assert not budget.near_quota(monthly, "2026-03")  # renewed this month
    assert budget.near_quota(monthly, "2026-02")


# --- reservations -------------------------------------------------------------------------------------

def test_unlimited_key_without_allowance_reserves_nothing(ctx):
    key, _ = new_key()
    reservation = reserve_budget(key, MODEL, 10**6, None)
    assert reservation == Reservation(key.id)
    assert key_row(key.id).reserved_micro == 0


def test_reservation_is_the_worst_case_and_settle_books_the_real_cost(ctx):
    key, plaintext = new_key(quota_micro=10_000)
    reservation = reserve_budget(key, MODEL, 100, 50)  # 100 * 2 + 50 * 10
    assert reservation.key_reserved_micro == 700
    assert key_row(key.id).reserved_micro == 700
    other = reserve_budget(key, MODEL, 10, None)  # None → the model's max_output_tokens (100)
    assert other.key_reserved_micro == 10 * 2 + 100 * 10
    settle(key, reservation, 420)
    row = key_row(key.id)
    assert (row.used_micro, row.reserved_micro) == (420, 1020)
    settle(key, other, 0)
    assert (key_row(key.id).used_micro, key_row(key.id).reserved_micro) == (420, 0)
    assert log_total(key.id) == 420


def test_small_remainder_shrinks_the_cap_then_refuses(ctx):
    key, plaintext = new_key(quota_micro=1000)
    first = reserve_budget(key, MODEL, 0, 60)  # 600 fits
    second = reserve_budget(key, MODEL, 0, 60)  # 400 remain: the cap shrinks to 40 tokens
    assert (first.key_reserved_micro, second.key_reserved_micro) == (600, 400)
    assert (first.output_cap, second.output_cap) == (60, 40)
    with pytest.raises(PolicyDenied) as refused:
        reserve_budget(key, MODEL, 0, 1)
    denied = refused.value
    assert (denied.status, denied.error_type) == (402, "insufficient_quota")
    assert denied.code == "insufficient_quota"
    assert denied.headers == {"x-should-retry": "false"}
    settle(key, second, 400)
    settle(key, first, 590)
    row = key_row(key.id)
    assert (row.used_micro, row.reserved_micro) == (990, 0)
    with pytest.raises(PolicyDenied):  # 10 left: not even one output token (10) and a prompt token (2)
        reserve_budget(fresh(plaintext), MODEL, 1, 5)
    assert reserve_budget(fresh(plaintext), MODEL, 0, 5).output_cap == 1
    with pytest.raises(PolicyDenied):
        reserve_budget(fresh(plaintext), FREE, 0, 0)  # exhausted means exhausted, also for a free model


def test_the_reservation_covers_every_choice(ctx):
    key, _ = new_key(quota_micro=10_000)
    reservation = reserve_budget(key, MODEL, 10, 20, choices=5)
    assert (reservation.key_reserved_micro, reservation.output_cap) == (10 * 2 + 5 * 20 * 10, 20)
    shrunk = reserve_budget(key, MODEL, 10, 1000, choices=5)  # 8980 remain: (8980 - 20) // 50 = 179 tokens
    assert (shrunk.key_reserved_micro, shrunk.output_cap) == (20 + 179 * 50, 179)
    assert key_row(key.id).reserved_micro == 1020 + 8970


def test_free_model_passes_while_credit_remains(ctx):
    key, _ = new_key(quota_micro=1)
    reservation = reserve_budget(key, FREE, 1000, 1000)
    assert reservation.key_reserved_micro == 0


def test_zero_quota_refuses_everything(ctx):
    key, _ = new_key(quota_micro=0)
    with pytest.raises(PolicyDenied):
        reserve_budget(key, FREE, 0, 0)


def test_lifted_quota_since_verification_reserves_nothing(ctx):
    from app.keys.service import update_key

    key, _ = new_key(quota_micro=5)
    update_key(key.public_id, {"quota_micro": None})
    assert reserve_budget(key, MODEL, 1000, 1000).key_reserved_micro == 0


def test_monthly_quota_renews_in_a_new_month(ctx):
    key, plaintext = new_key(quota_micro=1000, quota_monthly=True)
    with db.engine.begin() as conn:  # as if the quota had been used up in an earlier month
        conn.execute(text("UPDATE api_keys SET used_micro = 1000, quota_period = '2000-01' WHERE id = :id"),
                     {"id": key.id})
    stale = fresh(plaintext)
    reservation = reserve_budget(stale, MODEL, 0, 10)
    assert reservation.key_reserved_micro == 100
    row = key_row(key.id)
    assert (row.used_micro, row.reserved_micro, row.quota_period) == (0, 100, budget.period_of())
    # Renewal happens once: a second stale snapshot does not wipe this month's usage.
    settle(key, reservation, 80)
    reserve_budget(stale, MODEL, 0, 10)
    assert key_row(key.id).used_micro == 80


def test_monthly_quota_exhausted_names_the_renewal(ctx):
    key, _ = new_key(quota_micro=0, quota_monthly=True)
    with pytest.raises(PolicyDenied) as refused:
        reserve_budget(key, MODEL, 0, 1)
    assert "month" in refused.value.message


# --- organisation allowance ------------------------------------------------------------------------------

def set_allowance(credits: str):
    from app.policy import service as policy

    policy.update_org_settings(credits, "", "minute")


def org_row():
    with db.engine.connect() as conn:
        return budget.org_status(conn, budget.period_of())


def test_org_allowance_is_reserved_and_booked(ctx):
    set_allowance("0.001")  # 1000 micro-credits
    key, _ = new_key()  # no key quota: only the allowance applies
    first = reserve_budget(key, MODEL, 0, 70)
    assert (first.org_reserved_micro, first.org_period) == (700, budget.period_of())
    second = reserve_budget(key, MODEL, 0, 70)
    assert (second.org_reserved_micro, second.output_cap) == (300, 30)
    with pytest.raises(PolicyDenied) as refused:
        reserve_budget(key, MODEL, 0, 1)
    assert refused.value.status == 402 and "organisation" in refused.value.message
    settle(key, first, 650)
    settle(key, second, 100)
    assert org_row() == (750, 0)
    third = reserve_budget(key, MODEL, 0, 70)
    assert third.org_reserved_micro == 250


def test_output_cap_is_named_whenever_a_budget_applies(ctx):
    """Reservation.output_cap: the cap per choice that was reserved for, which the gateway sends upstream."""
    free_key, _ = new_key()
    assert reserve_budget(free_key, MODEL, 10, None).output_cap is None  # no budget: nothing to protect
    quota_key, _ = new_key(quota_micro=10**9)
    assert reserve_budget(quota_key, MODEL, 10, None).output_cap == MODEL.max_output_tokens
    assert reserve_budget(quota_key, MODEL, 10, 50).output_cap == 50  # the client's own cap
    set_allowance("1000")
    assert reserve_budget(free_key, MODEL, 10, None).output_cap == MODEL.max_output_tokens
    assert reserve_budget(free_key, MODEL, 10, 5).output_cap == 5


def test_a_smaller_allowance_shrinks_the_cap_and_the_keys_reservation(ctx):
    set_allowance("0.0005")  # 500 micro-credits; the key's quota would pay for more
    key, _ = new_key(quota_micro=10_000)
    reservation = reserve_budget(key, MODEL, 0, 100)
    assert (reservation.output_cap, reservation.key_reserved_micro, reservation.org_reserved_micro) == (50, 500, 500)
    assert key_row(key.id).reserved_micro == 500


def test_key_reservation_is_undone_when_the_allowance_refuses(ctx):
    set_allowance("0")
    key, _ = new_key(quota_micro=10_000)
    with pytest.raises(PolicyDenied):
        reserve_budget(key, MODEL, 0, 10)
    assert key_row(key.id).reserved_micro == 0


def test_setting_an_allowance_recounts_the_month_from_the_request_log(ctx):
    key, _ = new_key()
    for cost in (1234, 4321):
        settle(key, None, cost)
    assert org_row() == (0, 0)  # nothing is counted without an allowance
    set_allowance("5")
    assert org_row() == (5555, 0)


# --- invariants under concurrency ------------------------------------------------------------------------

def test_invariants_hold_under_concurrent_reservations_and_settlements(app):
    """40 threads × 5 requests against a quota that covers only some of them; each request settles at a
    random real cost up to what it reserved (its cap goes upstream, so it cannot cost more). Afterwards:
    used == sum of the request log, nothing stays reserved, and the used credits never passed the quota,
    though the quota ran out (requests were refused)."""
    quota, worst_tokens = 20_000, 60
    with app.app_context():
        key, _ = new_key(quota_micro=quota)
    lock = threading.Lock()
    state = {"admitted": 0, "refused": 0, "most_used": 0, "shrunk": 0}

    def client(seed):
        rng = random.Random(seed)
        with app.app_context():
            for _n in range(5):
                try:
                    reservation = reserve_budget(key, MODEL, 0, worst_tokens)
                except PolicyDenied as denied:
                    assert denied.status == 402
                    with lock:
                        state["refused"] += 1
                    continue
                reserved = reservation.key_reserved_micro
                assert reserved == reservation.output_cap * 10
                cost = rng.randint(reserved // 2, reserved)
                with lock:
                    state["admitted"] += 1
                    state["shrunk"] += reservation.output_cap < worst_tokens
                    settle(key, reservation, cost)
                    state["most_used"] = max(state["most_used"], key_row(key.id).used_micro)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        row = key_row(key.id)
        assert row.used_micro == log_total(key.id)
        assert row.reserved_micro == 0
    assert state["admitted"] + state["refused"] == 200
    assert state["refused"] > 0 and state["shrunk"] > 0  # the quota ran out
    assert state["most_used"] <= quota and row.used_micro <= quota


def test_shared_reservations_of_one_turn_each_get_their_own_answer(ctx):
    """Reservations made while other requests are under way share one commit (app.rawsql.GroupWriter):
    each still gets its own amount or its own 402, and the key's reserved credits are their sum."""
    import gevent

    key, _plaintext = new_key(quota_micro=2400)

    def reserve(max_output):
        with ctx.app_context():  # a new greenlet starts without the test's context
            try:
                return reserve_budget(key, MODEL, 0, max_output, share_commit=True).key_reserved_micro
            except PolicyDenied as exc:
                return exc.status

    greenlets = [gevent.spawn(reserve, n) for n in (100, 100, 40, 100)]  # 1000 + 1000 + 400 + refused
    gevent.joinall(greenlets, raise_error=True)
    answers = [g.value for g in greenlets]
    assert answers[:3] == [1000, 1000, 400] and answers[3] == 402
    assert key_row(key.id).reserved_micro == 2400


def test_a_reservation_alone_commits_without_yielding(ctx):
    import gevent

    from app.rawsql import sqlite_connections

    if db.engine.dialect.name != "sqlite":
        pytest.skip("shared commits are for file-based SQLite; other databases commit each reservation")
    assert sqlite_connections(db.engine) is not None
    key, _plaintext = new_key(quota_micro=10_000)
    ran = []
    other = gevent.spawn(ran.append, "other greenlet")
    reserve_budget(key, MODEL, 0, 10, share_commit=False)
    assert ran == []  # nothing else ran meanwhile
    reserve_budget(key, MODEL, 0, 10, share_commit=True)
    assert ran == ["other greenlet"]  # the shared commit waited one turn of the loop
    other.join()
