"""The integrator pages (/use, /playground, /docs): public, strict CSP, no inline script or style, and the
catalog's enabled models pre-filled for signed-in admins only, demo models marked "demo"."""
from __future__ import annotations

import re

import pytest

PAGES = ("/use", "/playground", "/docs")


@pytest.fixture
def catalog(app):
    from app.catalog import service

    with app.app_context():
        service.create_connection({"name": "demo", "kind": "demo", "base_url": ""})
        service.create_model({"public_id": "demo-chat", "display_name": "Demo"}, "demo")
        hidden = service.create_model({"public_id": "demo-off", "display_name": "Off"}, "demo")
        service.set_model_enabled(hidden.id, False)
        service.create_connection({"name": "vllm", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"})
        service.create_model({"public_id": "local-chat", "display_name": "Local"}, "vllm")


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_public_with_strict_csp_and_no_inline_code(client, owner, path):
    response = client.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\sstyle=", html), "inline style attribute"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


def test_use_page_fills_in_base_url_and_enabled_model_for_admins(client, client_as, catalog):
    html = client_as("admin").get("/use").get_data(as_text=True)
    assert 'value="http://127.0.0.1:8080/v1"' in html
    assert '<option value="demo-chat">demo-chat (demo)</option>' in html and "demo-off" not in html
    assert '<option value="local-chat">local-chat</option>' in html
    assert html.count('data-fill="key"') == 10 and 'data-fill="model">demo-chat<' in html

    anonymous = client.get("/use").get_data(as_text=True)
    # The key's own models come from /v1/models in the browser; only the enabled built-in demo models are
    # named, so that the script can mark them "demo" in that list too.
    assert '<option value="demo-chat">' not in anonymous
    assert 'data-demo-models="[&#34;demo-chat&#34;]"' in anonymous
    assert "local-chat" not in anonymous and "demo-off" not in anonymous


@pytest.mark.parametrize("path", ("/use", "/playground"))
def test_model_selects_mark_demo_models(client_as, catalog, path):
    html = client_as("auditor").get(path).get_data(as_text=True)
    select = html[html.index("data-model-select"):]
    select = select[:select.index("</select>")]
    assert '<option value="demo-chat">demo-chat (demo)</option>' in select
    assert '<option value="local-chat">local-chat</option>' in select
    assert 'data-text-demo="demo"' in select


def test_playground_warns_about_a_different_stored_key(client, owner):
    html = client.get("/playground?prefix=sk-pf-Ab12Cd34").get_data(as_text=True)
    assert 'data-expected-prefix="sk-pf-Ab12Cd34"' in html
    assert 'data-expected-prefix' not in client.get("/playground").get_data(as_text=True)


def test_api_docs_show_headers_endpoints_and_base_url(client, owner):
    html = client.get("/docs", headers={"Host": "gw.example"}).get_data(as_text=True)
    for text in ("Authorization: Bearer", "x-api-key", "api-key", "/v1/chat/completions", "/v1/embeddings",
                 "/v1/messages", "x-ratelimit-remaining-requests", "retry-after", "x-request-id",
                 "http://127.0.0.1:8080/v1", "/v1/openapi.json"):
        assert text in html, text
    assert "gw.example" not in html
