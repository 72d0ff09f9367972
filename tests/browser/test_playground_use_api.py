"""The "Use the API" page in a real Chromium: the key is kept in this browser only, shown masked, can be
cleared; the examples carry the stored key, the base URL and a model the key may use, and they work when
run as copied."""
from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from playwright.sync_api import expect
from support.demo_gateway import running_demo

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with running_demo(tmp_path_factory.mktemp("use-api")) as (_server, gateway):
        yield gateway


@pytest.fixture
def use_page(page, demo):
    sent = []  # every request the page makes: (url, headers, body)
    page.on("request", lambda request: sent.append((request.url, request.headers, request.post_data or "")))
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{demo.url}/use")
    page.wait_for_selector("[data-api-page][data-ready=true]")
    page.sent = sent
    yield page
    assert errors == []


def _store(page, key: str) -> None:
    page.get_by_label("Paste an API key").fill(key)
    page.get_by_role("button", name="Keep in this browser").click()


def _stored(page) -> str | None:
    return page.evaluate("localStorage.getItem('pforte.apiKey')")


def test_storing_and_clearing_a_key(use_page, demo):
    page = use_page
    status = page.locator("#key-store-status")
    assert status.inner_text() == "No key is stored in this browser."
    assert page.get_by_role("button", name="Forget the key").is_disabled()

    page.get_by_role("button", name="Keep in this browser").click()
    assert page.locator("#api-key-error").inner_text() == "Paste a key first."
    assert _stored(page) is None

    _store(page, f"  {demo.key}\n")
    assert _stored(page) == demo.key
    assert status.inner_text() == f"Stored key: {demo.prefix}\u2026"  # masked like the admin pages show it
    assert demo.key not in status.inner_text()
    assert page.get_by_label("Paste an API key").input_value() == ""
    assert page.locator("#api-key-error").is_hidden()

    page.reload()
    page.wait_for_selector("[data-api-page][data-ready=true]")
    assert status.inner_text() == f"Stored key: {demo.prefix}\u2026"

    page.get_by_role("button", name="Forget the key").click()
    assert _stored(page) is None
    assert status.inner_text() == "No key is stored in this browser."
    assert "YOUR_API_KEY" in page.locator("#example-python").inner_text()

    # The key left the browser only as the credential of API requests to this gateway.
    carrying = [(url, headers) for url, headers, body in page.sent
                if demo.key in url or demo.key in body or any(demo.key in v for k, v in headers.items()
                                                              if k.lower() != "authorization")]
    assert carrying == []
    with_key = [url for url, headers, _ in page.sent if headers.get("authorization") == f"Bearer {demo.key}"]
    assert with_key and all(url.startswith(f"{demo.api}/") for url in with_key)


def test_examples_contain_the_stored_key_and_an_enabled_model(use_page, demo):
    page = use_page
    _store(page, demo.key)
    expect(page.locator("#example-model")).to_have_value(demo.model)
    expect(page.locator("#example-model option")).to_have_text([f"{demo.model} (demo)"])
    expect(page.locator("[data-key-models-status]")).to_have_text("This key may use 1 model(s).")

    names = ["curl", "python", "node", "langchain", "responses-curl", "responses-python", "responses-node",
             "agents", "n8n"]
    for name in names:
        shown = page.locator(f"#example-{name}").inner_text()
        copied = page.locator(f"#example-{name}-copy").text_content()
        assert demo.key not in shown and f"{demo.prefix}\u2026" in shown  # masked on screen
        assert demo.key in copied and demo.model in copied and demo.api in copied

    # n8n's OpenAI Chat Model node keeps its default, "Use Responses API" on.
    n8n = page.locator("#example-n8n-copy").text_content()
    assert "Use Responses API (in the OpenAI Chat Model node): on" in n8n
    expect(page.locator("#n8n-hint")).to_contain_text("/v1/responses while \u201cUse Responses API\u201d is on")
    expect(page.locator("#n8n-hint")).not_to_contain_text("switch off")
    codex = tomllib.loads(page.locator("#example-codex-copy").text_content())
    assert codex["model"] == demo.model and codex["model_provider"] == "pforte"
    assert codex["model_providers"]["pforte"] == {"name": "Pforte", "base_url": demo.api,
                                                  "env_key": "PFORTE_API_KEY", "wire_api": "responses"}
    assert f'export PFORTE_API_KEY="{demo.key}"' in page.locator("#example-codex-shell-copy").text_content()
    assert f'PFORTE_API_KEY="{demo.prefix}\u2026"' in page.locator("#example-codex-shell").inner_text()

    page.get_by_label("Show the whole key in the examples").check()
    assert all(demo.key in page.locator(f"#example-{name}").inner_text() for name in names)

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo.url)
    page.get_by_role("button", name="Copy Python (openai)").click()
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert clipboard == page.locator("#example-python-copy").text_content()
    assert page.locator("#copy-status").inner_text() == "Python (openai) copied"

    # The copied Python example runs as it is, with the real openai package, against the live server.
    run = subprocess.run([sys.executable, "-c", clipboard], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Hello from the Pforte demo model" in run.stdout

    # So do the Responses API examples for Python and the Agents SDK.
    for name in ("responses-python", "agents"):
        code = page.locator(f"#example-{name}-copy").text_content()
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("Hello from the Pforte demo model"), name

    # The copied curl examples likewise (.ci/run installs curl).
    curl = page.locator("#example-curl-copy").text_content()
    result = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
    assert '"object":"chat.completion"' in result.stdout.replace(" ", "")
    curl = page.locator("#example-responses-curl-copy").text_content()
    result = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
    assert '"object":"response"' in result.stdout.replace(" ", "")


def test_open_in_playground_link(use_page, demo):
    use_page.get_by_role("link", name="Open in playground").click()
    use_page.wait_for_url(f"{demo.url}/playground")
    assert use_page.get_by_role("heading", name="Playground", level=1).is_visible()


LONG_BASE_URL = "https://sprachmodelle.landkreis-musterstadt.example/v1"


def _base_url_fits(page) -> bool:
    return page.evaluate("(() => { const f = document.querySelector('#base-url');"
                         " return f.scrollWidth <= f.clientWidth; })()")


def test_base_url_field_shows_the_whole_url_at_1280_px(use_page, demo):
    page = use_page
    page.set_viewport_size({"width": 1280, "height": 800})
    field = page.get_by_label("Base URL", exact=True)
    assert field.input_value() == demo.api
    assert _base_url_fits(page)
    # An installed server's public address is longer than the test server's; it fits as well.
    field.evaluate(f"(f) => {{ f.value = {LONG_BASE_URL!r}; }}")
    assert _base_url_fits(page)
