"""Dashboard aggregation in SQL: per day (zero-filled, UTC days), top keys and models, statuses, filters."""
from __future__ import annotations

from datetime import date, datetime

from app.usage import filters, reports


def _filter(start: str, end: str, **kwargs) -> filters.UsageFilter:
    return filters.UsageFilter(start=date.fromisoformat(start), end=date.fromisoformat(end), **kwargs)


def test_per_day_totals_cover_every_day_of_the_range(ctx, make_key, log_request):
    key_id, _ = make_key("DMS")
    log_request(datetime(2025, 3, 1, 0, 0, 0), key_id, "m1", input=10, output=5, micro=1_500_000)
    log_request(datetime(2025, 3, 1, 23, 59, 59), key_id, "m1", input=1, output=2, micro=500_000)
    log_request(datetime(2025, 3, 3, 12, 0), key_id, "m1", status=429, error_code="rate_limit_exceeded")
    log_request(datetime(2025, 3, 4, 0, 0, 0), key_id, "m1", input=99)  # the day after the range

    rows = reports.daily(_filter("2025-03-01", "2025-03-03"))

    assert [r.label for r in rows] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    first, empty, last = rows
    assert (first.requests, first.errors, first.input_tokens, first.output_tokens) == (2, 0, 11, 7)
    assert first.credits_micro == 2_000_000 and first.credits == 2.0
    assert (empty.requests, empty.tokens, empty.credits_micro) == (0, 0, 0)
    assert (last.requests, last.errors) == (1, 1)


def test_top_keys_and_models_rank_by_credits_and_name_the_keys(ctx, make_key, log_request):
    small, small_public = make_key("Portal")
    big, big_public = make_key("Dokumente")
    when = datetime(2025, 5, 10, 9, 0)
    log_request(when, small, "cheap", input=100, micro=100)
    log_request(when, small, "cheap", input=100, micro=100)
    log_request(when, big, "premium", input=5, micro=9_000_000)
    log_request(when, None, None, status=401, error_code="invalid_api_key")

    f = _filter("2025-05-01", "2025-05-31")
    keys = reports.top_keys(f)
    models = reports.top_models(f)

    assert [(k.label, k.ref, k.requests) for k in keys[:2]] == [("Dokumente", big_public, 1),
                                                                 ("Portal", small_public, 2)]
    assert keys[2].ref is None and keys[2].errors == 1  # requests refused before a key was known
    assert [m.label for m in models[:2]] == ["premium", "cheap"]
    assert models[1].tokens == 200


def test_status_breakdown_and_error_rate(ctx, make_key, log_request):
    key_id, _ = make_key("n8n")
    when = datetime(2025, 6, 2, 8, 0)
    for status in (200, 200, 200, 402, 429, 429, 502):
        log_request(when, key_id, "m", status=status)

    f = _filter("2025-06-01", "2025-06-30")
    statuses = {row.label: (row.requests, row.errors) for row in reports.statuses(f)}
    total, avg_latency, avg_ttfb = reports.totals(f)

    assert statuses == {"200": (3, 0), "402": (1, 1), "429": (2, 2), "502": (1, 1)}
    assert total.requests == 7 and total.errors == 4
    assert abs(total.error_rate - 4 / 7) < 1e-9
    assert avg_latency == 120.0 and avg_ttfb == 40.0


def test_filters_by_key_and_model(ctx, make_key, log_request):
    a, a_public = make_key("A")
    b, _ = make_key("B")
    when = datetime(2025, 7, 1, 12, 0)
    log_request(when, a, "x", input=1)
    log_request(when, a, "y", input=10)
    log_request(when, b, "x", input=100)

    by_key, errors = filters.parse_filter({"start": "2025-07-01", "end": "2025-07-01", "key": a_public})
    assert errors == [] and by_key.key_id == a and by_key.key_name == "A"
    assert reports.totals(by_key)[0].input_tokens == 11
    by_model = _filter("2025-07-01", "2025-07-01", model="x")
    assert reports.totals(by_model)[0].input_tokens == 101
    both = _filter("2025-07-01", "2025-07-01", key_id=a, model="x")
    assert reports.totals(both)[0].input_tokens == 1


def test_bad_filter_input_is_reported_and_replaced_by_defaults(ctx):
    f, errors = filters.parse_filter({"start": "yesterday", "end": "2025-02-30", "key": "nope", "model": ""})
    default = filters.default_filter()
    assert (f.start, f.end, f.key_id, f.model) == (default.start, default.end, None, None)
    assert len(errors) == 3
    assert any("nope" in message for message in errors)

    backwards, errors = filters.parse_filter({"start": "2025-02-10", "end": "2025-02-01"})
    assert (backwards.start, backwards.end) == (default.start, default.end) and len(errors) == 1

    too_long, errors = filters.parse_filter({"start": "2020-01-01", "end": "2025-01-01"})
    assert too_long.days == filters.MAX_RANGE_DAYS and too_long.end == date(2025, 1, 1) and len(errors) == 1


def test_monthly_totals_come_from_the_kept_table(ctx, make_key, add_monthly):
    key_id, _ = make_key("K")
    add_monthly("2025-01", key_id, "m", requests=5, micro=2_000_000)
    add_monthly("2025-02", key_id, "m", requests=7, micro=1_000_000)
    add_monthly("2025-02", key_id, "n", requests=1, micro=0)
    add_monthly("2024-01", key_id, "m", requests=99, micro=0)  # older than 12 months before the end

    rows = reports.monthly(_filter("2025-02-01", "2025-02-28"))

    assert [(r.label, r.requests, r.credits_micro) for r in rows] == [("2025-01", 5, 2_000_000),
                                                                       ("2025-02", 8, 1_000_000)]
    assert [r.requests for r in reports.monthly(_filter("2025-02-01", "2025-02-28", model="n"))] == [1]
