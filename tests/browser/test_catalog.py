"""In a real browser an admin adds a connection and a model, tests the connection and disables the model."""
from __future__ import annotations

import json

import pytest
from catalog.upstream_stub import StubUpstream
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SECRET = "sk-browser-secret-7Tq0aZ"


def test_admin_sets_up_a_connection_and_a_model(logged_in_page, admin_server):
    page = logged_in_page
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    with StubUpstream() as upstream:
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Models", exact=True).click()
        expect(page.get_by_role("heading", name="Models and connections")).to_be_visible()
        expect(page.get_by_text("No model is enabled")).to_be_visible()

        page.get_by_role("link", name="Add connection").click()
        page.get_by_label("Name").fill("local-llm")
        page.get_by_label("Kind").select_option(label="OpenAI-compatible")
        page.get_by_label("Base URL").fill(f"{upstream.url}/v1")
        page.get_by_label("API key").fill(SECRET)
        page.get_by_role("button", name="Save connection").click()
        expect(page.get_by_text("Connection “local-llm” added.")).to_be_visible()

        row = page.locator("tr", has_text="local-llm")
        row.get_by_role("button", name="Test connection").click()
        expect(row.get_by_text("The upstream offers 2 models.")).to_be_visible()
        expect(row.get_by_text("gpt-test-1")).to_be_visible()
        assert upstream.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"

    page.get_by_role("link", name="Add model", exact=True).first.click()
    page.get_by_label("Model id").fill("team/gpt-test:1")
    page.get_by_label("Display name").fill("Team model")
    page.get_by_label("Connection").select_option(label="local-llm")
    page.get_by_label("Upstream model name").fill("gpt-test-1")
    page.get_by_label("Input price").fill("0.5")
    page.get_by_label("Output price").fill("1.5")
    page.get_by_label("vision").uncheck()
    page.get_by_role("button", name="Save model").click()

    model_row = page.locator("tr", has_text="team/gpt-test:1")
    expect(model_row.get_by_text("Team model")).to_be_visible()
    expect(model_row.get_by_text("enabled", exact=True)).to_be_visible()
    expect(page.get_by_text("No model is enabled")).to_have_count(0)

    model_row.get_by_role("button", name="Disable").click()
    expect(model_row.get_by_text("disabled", exact=True)).to_be_visible()
    expect(model_row.get_by_role("button", name="Enable")).to_be_visible()

    assert SECRET not in page.content()
    [model] = json.loads(admin_server.cli("models", "list", "--json").stdout)
    assert model["id"] == "team/gpt-test:1" and model["enabled"] is False
    assert model["capabilities"] == ["chat", "embeddings", "tools"]
    assert model["upstream_model"] == "gpt-test-1"
    assert problems == []


def test_admin_says_a_connection_offers_the_responses_api(logged_in_page, admin_server):
    page = logged_in_page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models", exact=True).click()
    page.get_by_role("link", name="Add connection").click()
    page.get_by_label("Name").fill("native-llm")
    page.get_by_label("Kind").select_option(label="OpenAI-compatible")
    page.get_by_label("Base URL").fill("http://127.0.0.1:9/v1")
    box = page.get_by_label("Upstream offers the Responses API")
    expect(box).not_to_be_checked()
    box.check()
    page.get_by_role("button", name="Save connection").click()
    expect(page.get_by_text("Connection “native-llm” added.")).to_be_visible()
    row = page.locator("tr", has_text="native-llm")
    expect(row.get_by_text("offers the Responses API")).to_be_visible()
    listed = {c["name"]: c for c in json.loads(admin_server.cli("connections", "list", "--json").stdout)}
    assert listed["native-llm"]["responses_api"] is True

    row.get_by_role("link", name="Edit").click()
    box = page.get_by_label("Upstream offers the Responses API")
    expect(box).to_be_checked()
    box.uncheck()
    page.get_by_role("button", name="Save connection").click()
    expect(page.locator("tr", has_text="native-llm").get_by_text("offers the Responses API")).to_have_count(0)
    listed = {c["name"]: c for c in json.loads(admin_server.cli("connections", "list", "--json").stdout)}
    assert listed["native-llm"]["responses_api"] is False
