"""The usage dashboard in a real Chromium, fed by real API calls to a live server: totals, charts with
their table, top keys and models, status breakdown, filters (HTMX), CSV download and a key's activity."""
from __future__ import annotations

import csv
import io
import json

import pytest
import requests
from playwright.sync_api import expect
from support.browser import login
from support.demo_gateway import OWNER, running_demo

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """A live server that has answered: 3 chats, 1 streamed chat, 1 unknown model and 1 unknown key."""
    with running_demo(tmp_path_factory.mktemp("usage")) as (server, gateway):
        tokens = 0
        for i in range(3):
            answer = gateway.chat(f"Question number {i}")
            assert answer.status_code == 200
            tokens += answer.json()["usage"]["total_tokens"]
        stream = gateway.chat("Stream this", stream=True, stream_options={"include_usage": True})
        events = [json.loads(line[6:]) for line in stream.iter_lines(decode_unicode=True)
                  if line.startswith("data: {")]
        tokens += events[-1]["usage"]["total_tokens"]
        assert gateway.chat("x", model="no-such-model").status_code == 404
        assert gateway.chat("x", key="sk-pf-unknownkey").status_code == 401
        yield server, gateway, tokens


@pytest.fixture
def dashboard(page, traffic):
    server, gateway, tokens = traffic
    login(page, gateway.url, *OWNER)
    page.goto(f"{gateway.url}/usage")
    return page, gateway, tokens


def test_dashboard_shows_the_real_requests(dashboard):
    page, gateway, tokens = dashboard
    assert page.locator('[data-total="requests"]').inner_text() == "6"
    assert page.locator('[data-total="error-rate"]').inner_text() == "33.3 %"
    assert page.locator('[data-total="tokens"]').inner_text() == f"{tokens:,}"

    chart = page.get_by_role("img", name="Requests per day")
    expect(chart).to_be_visible()
    description = page.locator("#chart-requests-desc").text_content()
    assert "6 in total, 2 errors" in description

    page.get_by_text("Show the daily figures as a table").click()
    daily = page.locator("#daily-table tbody tr").last
    expect(daily).to_be_visible()
    assert daily.locator("td").first.inner_text() == "6"

    keys = page.locator("#top-keys-table")
    expect(keys.get_by_role("link", name="Demo key")).to_be_visible()
    models = page.locator("#top-models-table tbody th").all_inner_texts()
    assert models[0] == f"{gateway.model} demo" and "no-such-model" in models  # the demo model is marked
    statuses = dict(zip(page.locator("#statuses-table tbody th").all_inner_texts(),
                        page.locator("#statuses-table tbody td:nth-child(2)").all_inner_texts(), strict=True))
    assert statuses["200"] == "4" and statuses["401 error"] == "1" and statuses["404 error"] == "1"


def test_filter_by_model_updates_the_results_in_place(dashboard):
    page, gateway, _tokens = dashboard
    page.get_by_label("Model", exact=True).select_option(gateway.model)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#usage-scope")).to_contain_text(f"model {gateway.model}")
    assert "model=" + gateway.model in page.url
    assert page.locator('[data-total="requests"]').inner_text() == "4"
    assert page.locator('[data-total="error-rate"]').inner_text() == "0.0 %"


def test_csv_download_has_the_same_numbers(dashboard):
    page, _gateway, tokens = dashboard
    with page.expect_download() as download:
        page.get_by_role("link", name="Download per-day figures (CSV)").click()
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    today = rows[-1]
    assert today[1:3] == ["6", "2"] and today[5] == str(tokens)


def test_key_activity_lists_the_keys_requests(dashboard):
    page, gateway, _tokens = dashboard
    page.locator("#top-keys-table").get_by_role("link", name="Demo key").click()
    expect(page.get_by_role("heading", name="Activity of Demo key")).to_be_visible()
    rows = page.locator("#recent-requests tbody tr")
    expect(rows).to_have_count(5)
    assert page.locator('[data-month="requests"]').inner_text() == "5"
    newest, oldest = rows.first.inner_text(), rows.last.inner_text()
    assert "no-such-model" in newest and "404" in newest and "127.0.0.1" in newest
    assert gateway.model in oldest and "200" in oldest
    assert "/login?next=" in requests.get(page.url, timeout=10).url  # not readable without a session
