"""The playground in a real Chromium: a reply from the demo model streams in chunk by chunk with the
browser-stored key, with time to first token and token counts; a revoked key's error shows its code; a key
row's "Open in playground" link lands here with a hint when the stored key is another one."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from support.browser import login
from support.demo_gateway import OWNER, create_key, running_demo

pytestmark = pytest.mark.browser

# Records every change of the reply's text node (old value included), so that growth in steps is observable
# even when the browser paints less often than chunks arrive.
OBSERVE_REPLY = """() => {
  window.replySteps = [];
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "characterData" && r.target.parentElement.closest(".from-assistant")) {
        window.replySteps.push(r.oldValue.length, r.target.data.length);
      }
    }
  }).observe(document.getElementById("pg-conversation"),
             {subtree: true, characterData: true, characterDataOldValue: true, childList: true});
}"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with running_demo(tmp_path_factory.mktemp("playground")) as (server, gateway):
        yield server, gateway


def _open_playground(page, url: str, key: str):
    page.goto(f"{url}/use")
    page.get_by_label("Paste an API key").fill(key)
    page.get_by_role("button", name="Keep in this browser").click()
    page.goto(f"{url}/playground")
    page.wait_for_selector("[data-playground][data-ready=true]")


def test_reply_streams_in_token_by_token(page, demo):
    _server, gateway = demo
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _open_playground(page, gateway.url, gateway.key)
    expect(page.get_by_label("Model")).to_have_value(gateway.model)
    # The key's models as /v1/models lists them, the built-in demo model marked as such.
    expect(page.locator("#pg-model option")).to_have_text([f"{gateway.model} (demo)"])
    page.get_by_label("Temperature").fill("0.2")
    prompt = "Please summarise the opening hours of the citizens' office"
    page.get_by_label("Your message").fill(prompt)
    page.evaluate(OBSERVE_REPLY)

    with page.expect_request(f"{gateway.api}/chat/completions") as sent:
        page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-status")).to_have_text("Reply complete.", timeout=20_000)

    body = sent.value.post_data_json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.2 and body["model"] == gateway.model
    assert sent.value.headers["authorization"] == f"Bearer {gateway.key}"

    # The same question answered without streaming: the demo model is deterministic.
    plain = gateway.chat(prompt).json()
    expected = plain["choices"][0]["message"]["content"]
    reply = page.locator(".from-assistant .text")
    expect(reply).to_have_text(expected)

    steps = sorted(set(page.evaluate("window.replySteps")))
    assert len(steps) >= 10, steps  # one step per streamed token, not one jump to the whole text
    assert steps[-1] == len(expected)
    assert page.locator("#pg-tokens-in").inner_text() == str(plain["usage"]["prompt_tokens"])
    assert page.locator("#pg-tokens-out").inner_text() == str(plain["usage"]["completion_tokens"])
    assert re.fullmatch(r"\d+ ms", page.locator("#pg-ttft").inner_text())
    assert re.fullmatch(r"\d+ ms", page.locator("#pg-total").inner_text())
    assert page.locator(".from-user .text").inner_text() == prompt
    assert page.get_by_label("Your message").input_value() == ""
    assert errors == []


def test_keyboard_follow_up_keeps_the_conversation(page, demo):
    _server, gateway = demo
    _open_playground(page, gateway.url, gateway.key)
    expect(page.get_by_label("Model")).to_have_value(gateway.model)
    message = page.get_by_label("Your message")
    for text in ("First question", "Second question"):
        message.fill(text)
        message.press("Control+Enter")
        expect(page.locator("#pg-status")).to_have_text("Reply complete.", timeout=20_000)
        expect(page.get_by_role("button", name="Send")).to_be_enabled()
    assert page.locator(".from-user").count() == 2 and page.locator(".from-assistant").count() == 2
    assert "Second question" in page.locator(".from-assistant .text").nth(1).inner_text()

    page.get_by_role("button", name="New conversation").click()
    assert page.locator("#pg-conversation li").count() == 0


def test_revoked_key_shows_the_api_error_with_its_code(page, demo):
    server, gateway = demo
    revoked = create_key(server, "Revoked integration")
    server.cli("keys", "revoke", revoked["id"])
    _open_playground(page, gateway.url, revoked["key"])
    expect(page.locator("[data-key-models-status]")).to_contain_text("The gateway refused the stored key:")

    page.get_by_label("Your message").fill("Hello?")
    page.get_by_role("button", name="Send").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("HTTP 401 \u00b7 invalid_api_key")
    expect(alert).to_contain_text("Incorrect API key provided")
    assert page.locator("#pg-conversation li").count() == 0
    assert page.get_by_label("Your message").input_value() == "Hello?"  # nothing typed is lost


def test_open_in_playground_from_a_key_row(page, demo):
    server, gateway = demo
    other = create_key(server, "Other integration")
    paused = create_key(server, "Paused integration")
    server.cli("keys", "disable", paused["id"])
    _open_playground(page, gateway.url, other["key"])  # this browser holds another key
    assert page.locator("[data-prefix-warning]").count() == 0  # no hint without a key row to come from

    login(page, gateway.url, *OWNER)
    page.goto(f"{gateway.url}/keys")
    paused_row = page.locator(f"#key-{paused['id']}")
    expect(paused_row).to_contain_text("Disabled")
    expect(paused_row.get_by_role("link", name="Open in playground")).to_have_count(0)  # active keys only

    page.locator(f"#key-{gateway.key_id}").get_by_role("link", name="Open in playground Demo key").click()
    page.wait_for_url(f"{gateway.url}/playground?prefix={gateway.prefix}")
    page.wait_for_selector("[data-playground][data-ready=true]")
    hint = page.locator("[data-prefix-warning]")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text(f"is not the key {gateway.prefix}\u2026 you came from")

    # Storing the key from the row makes the hint go away and the playground answers with it.
    page.get_by_label("Paste an API key").fill(gateway.key)
    page.get_by_role("button", name="Keep in this browser").click()
    expect(hint).to_be_hidden()
    expect(page.get_by_label("Model")).to_have_value(gateway.model)
    page.get_by_label("Your message").fill("Hello from the keys page")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-status")).to_have_text("Reply complete.", timeout=20_000)
