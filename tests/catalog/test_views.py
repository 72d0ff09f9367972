"""Catalog pages through the Flask test client, per role: owners and admins edit, auditors only read."""
from __future__ import annotations

import re

import pytest
from upstream_stub import StubUpstream

from app.catalog import service

SECRET = "sk-page-secret-9QmZr31x"
CONNECTION_FORM = {"name": "local", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                   "connect_timeout": "5", "read_timeout": "120", "total_timeout": "600"}


@pytest.fixture
def catalog(app):
    """A demo connection with a demo model, and an OpenAI-style connection with a key and a model."""
    with app.app_context():
        demo = service.create_connection({"name": "demo", "kind": "demo", "base_url": ""})
        service.create_model({"public_id": "demo", "display_name": "Demo model"}, "demo")
        upstream = service.create_connection(CONNECTION_FORM, credential=SECRET)
        model = service.create_model({"public_id": "org/llama-3:8b", "display_name": "Llama 3"}, "local")
        return {"demo": demo.id, "local": upstream.id, "llama": model.id}


def probe_url(connection) -> str:
    return f"/catalog/connections/{connection.id}/test"


def _row(html: str, element_id: str) -> str:
    match = re.search(rf'<tr id="{element_id}">(.*?)</tr>', html, re.S)
    assert match, f"{element_id} not on the page"
    return match.group(1)


def test_index_shows_connections_models_badges_and_never_the_key(admin, catalog):
    html = admin.get("/catalog").get_data(as_text=True)
    demo_model = _row(html, f"model-{1}")
    assert "Demo model" in demo_model and "badge-demo" in demo_model
    llama = _row(html, f"model-{catalog['llama']}")
    assert re.search(r"Llama 3</strong>\s*<span class=\"sub mono\">org/llama-3:8b</span>", llama)
    assert "badge-demo" not in llama and "enabled" in llama
    assert "badge-demo" in _row(html, f"connection-{catalog['demo']}")
    local = _row(html, f"connection-{catalog['local']}")
    assert ">set<" in local and "Test connection" in local
    assert SECRET not in html
    assert "No model is enabled" not in html


def test_warns_when_no_model_is_enabled(admin):
    assert "No model is enabled" in admin.get("/catalog").get_data(as_text=True)


def test_pages_need_a_login(client, owner):
    response = client.get("/catalog")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_auditor_reads_without_buttons_and_every_change_is_refused(auditor, catalog, post):
    html = auditor.get("/catalog").get_data(as_text=True)
    assert "org/llama-3:8b" in html
    for label in ("Add connection", "Add model", "Test connection", "Disable", "Edit", "Delete"):
        assert label not in html
    for url in ("/catalog/connections/new", f"/catalog/connections/{catalog['local']}/edit",
                f"/catalog/models/{catalog['llama']}/edit", "/catalog/models/new"):
        assert auditor.get(url).status_code == 403
    posts = [("/catalog/connections/new", CONNECTION_FORM),
             (f"/catalog/connections/{catalog['local']}/edit", CONNECTION_FORM),
             (f"/catalog/connections/{catalog['demo']}/delete", {}),
             (f"/catalog/connections/{catalog['local']}/test", {}),
             ("/catalog/models/new", {"public_id": "x", "connection_id": catalog["demo"]}),
             (f"/catalog/models/{catalog['llama']}/edit", {"public_id": "x"}),
             (f"/catalog/models/{catalog['llama']}/enabled", {"enabled": "0"}),
             (f"/catalog/models/{catalog['llama']}/delete", {})]
    for url, data in posts:
        assert post(auditor, url, data).status_code == 403, url
    assert "org/llama-3:8b" in auditor.get("/catalog").get_data(as_text=True)


def test_admin_adds_a_connection_and_the_key_is_never_shown_back(admin, app, post):
    response = post(admin, "/catalog/connections/new", {**CONNECTION_FORM, "credential": SECRET})
    assert response.status_code == 302
    html = admin.get("/catalog").get_data(as_text=True)
    assert "http://127.0.0.1:9/v1" in html and SECRET not in html
    connection_id = int(re.search(r'id="connection-(\d+)"', html).group(1))
    edit = admin.get(f"/catalog/connections/{connection_id}/edit").get_data(as_text=True)
    assert SECRET not in edit and "An API key is set" in edit
    # Saving with an empty key field keeps the key; the checkbox removes it.
    post(admin, f"/catalog/connections/{connection_id}/edit", {**CONNECTION_FORM, "read_timeout": "30"})
    with app.app_context():
        assert service.get_connection(connection_id).read_timeout == 30.0
        assert service.get_connection(connection_id).credential_encrypted
    post(admin, f"/catalog/connections/{connection_id}/edit", {**CONNECTION_FORM, "clear_credential": "1"})
    assert ">not set<" in _row(admin.get("/catalog").get_data(as_text=True), f"connection-{connection_id}")


def test_bad_connection_input_is_shown_with_everything_kept(admin, post):
    form = {**CONNECTION_FORM, "name": "typed name", "base_url": "localhost:11434", "connect_timeout": "-2",
            "credential": SECRET}
    response = post(admin, "/catalog/connections/new", form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "must start with http:// or https://" in html and "Enter a number above 0" in html
    assert 'value="typed name"' in html and 'value="localhost:11434"' in html
    assert SECRET not in html  # a typed key is not echoed into the page


def test_a_connection_in_use_cannot_be_deleted(admin, catalog, post, app):
    response = post(admin, f"/catalog/connections/{catalog['local']}/delete", follow_redirects=True)
    assert "used by 1 model" in response.get_data(as_text=True)
    post(admin, f"/catalog/models/{catalog['llama']}/delete")
    confirm = admin.get(f"/catalog/connections/{catalog['local']}/delete").get_data(as_text=True)
    assert "Delete connection “local”?" in confirm
    post(admin, f"/catalog/connections/{catalog['local']}/delete")
    with app.app_context():
        assert [c.name for c, _ in service.overview()[0]] == ["demo"]


def test_admin_adds_and_edits_a_model(admin, catalog, post, app):
    form = {"public_id": "gpt-4o-mini", "display_name": "GPT-4o mini", "connection_id": catalog["local"],
            "upstream_model": "", "input_price": "0.15", "output_price": "0.6", "max_output_tokens": "",
            "capabilities": ["chat", "tools"], "enabled": "1"}
    assert post(admin, "/catalog/models/new", form).status_code == 302
    with app.app_context():
        entry = service.lookup_model("gpt-4o-mini")
        assert entry.upstream_model == "gpt-4o-mini" and entry.capabilities == {"chat", "tools"}
        assert (entry.input_price, entry.output_price, entry.max_output_tokens) == (0.15, 0.6, 4096)
        assert entry.target.api_key == SECRET
        model_id = entry.id
    page = admin.get(f"/catalog/models/{model_id}/edit").get_data(as_text=True)
    assert 'value="gpt-4o-mini"' in page
    changed = {**form, "upstream_model": "gpt-4o-mini-2024-07-18", "connection_id": catalog["demo"]}
    assert post(admin, f"/catalog/models/{model_id}/edit", changed).status_code == 302
    with app.app_context():
        entry = service.lookup_model("gpt-4o-mini")
        assert entry.upstream_model == "gpt-4o-mini-2024-07-18" and entry.target.kind == "demo"


def test_bad_model_input_is_shown_with_everything_kept(admin, catalog, post):
    form = {"public_id": "demo", "display_name": "Another", "connection_id": catalog["local"],
            "input_price": "-1", "capabilities": []}
    response = post(admin, "/catalog/models/new", form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter a number from 0" in html and "Choose at least one capability" in html
    assert 'value="Another"' in html and 'value="-1"' in html
    form["input_price"], form["capabilities"] = "1", ["chat"]
    html = post(admin, "/catalog/models/new", form).get_data(as_text=True)
    assert "A model with this id exists already" in html


def test_toggle_answers_htmx_with_the_row_and_browsers_with_a_redirect(admin, catalog, post, app):
    url = f"/catalog/models/{catalog['llama']}/enabled"
    response = post(admin, url, {"enabled": "0"}, htmx=True)
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and fragment.lstrip().startswith(f'<tr id="model-{catalog["llama"]}">')
    assert "disabled" in fragment and "<html" not in fragment
    assert "HX-Request" in response.headers.get("Vary", "")
    with app.app_context():
        assert service.lookup_model("org/llama-3:8b") is None
    response = post(admin, url, {"enabled": "1"})
    assert response.status_code == 302
    with app.app_context():
        assert service.lookup_model("org/llama-3:8b") is not None


def test_test_connection_shows_what_the_upstream_answered(admin, app, post):
    with StubUpstream() as upstream:
        with app.app_context():
            url = probe_url(service.create_connection({**CONNECTION_FORM, "base_url": f"{upstream.url}/v1"},
                                                     credential=SECRET))
        fragment = post(admin, url, htmx=True).get_data(as_text=True)
        page = post(admin, url).get_data(as_text=True)
    assert "<html" not in fragment and "HTTP 200" in fragment and "gpt-test-2" in fragment
    assert "offers 2 models" in fragment and SECRET not in fragment
    assert "<html" in page and "Connection test: local" in page and "gpt-test-1" in page
    assert upstream.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"


def test_test_connection_reports_a_refusal(admin, app, post):
    body = {"error": {"message": "Invalid API key", "type": "invalid_request_error"}}
    with StubUpstream(status=401, body=body) as upstream:
        with app.app_context():
            url = probe_url(service.create_connection({**CONNECTION_FORM, "base_url": upstream.url}))
        html = post(admin, url, htmx=True).get_data(as_text=True)
    assert "Failed" in html and "HTTP 401" in html
    assert "refused the API key" in html and "Invalid API key" in html


def test_demo_connection_test_answers_locally(admin, catalog, post):
    html = post(admin, f"/catalog/connections/{catalog['demo']}/test", htmx=True).get_data(as_text=True)
    assert "Built-in demo" in html


def test_unknown_ids_are_404(admin, post):
    assert admin.get("/catalog/connections/999/edit").status_code == 404
    assert admin.get("/catalog/models/999/edit").status_code == 404
    assert post(admin, "/catalog/models/999/enabled", {"enabled": "1"}).status_code == 404
    assert post(admin, "/catalog/connections/999/test").status_code == 404


def test_owner_can_edit_too(client_as, catalog, post):
    client = client_as("owner")
    assert "Add connection" in client.get("/catalog").get_data(as_text=True)
    assert post(client, f"/catalog/models/{catalog['llama']}/enabled", {"enabled": "0"}).status_code == 302


def test_the_responses_api_checkbox_is_saved_shown_and_kept_on_errors(admin, app, post):
    response = post(admin, "/catalog/connections/new", {**CONNECTION_FORM, "responses_api": "1"})
    assert response.status_code == 302
    html = admin.get("/catalog").get_data(as_text=True)
    connection_id = int(re.search(r'id="connection-(\d+)"', html).group(1))
    assert "offers the Responses API" in _row(html, f"connection-{connection_id}")
    with app.app_context():
        assert service.get_connection(connection_id).responses_api is True
    edit = admin.get(f"/catalog/connections/{connection_id}/edit").get_data(as_text=True)
    assert re.search(r'<input type="checkbox" id="responses_api" name="responses_api" value="1" checked', edit)
    post(admin, f"/catalog/connections/{connection_id}/edit", CONNECTION_FORM)  # the box left unticked
    with app.app_context():
        assert service.get_connection(connection_id).responses_api is False
    assert "offers the Responses API" not in admin.get("/catalog").get_data(as_text=True)
    response = post(admin, "/catalog/connections/new", {**CONNECTION_FORM, "name": "claude", "kind": "anthropic",
                                                        "base_url": "https://api.anthropic.test", "responses_api": "1"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Only OpenAI-compatible and Azure OpenAI" in html
    assert re.search(r'name="responses_api" value="1" checked', html)


def test_the_passthrough_checkbox_is_saved_shown_and_audited(admin, catalog, app, post):
    page = admin.get(f"/catalog/connections/{catalog['local']}/edit").get_data(as_text=True)
    assert re.search(r'<input type="checkbox" id="allow_passthrough" name="allow_passthrough" value="1"[^>]*>',
                     page)
    assert not re.search(r'name="allow_passthrough"[^>]*checked', page), "off by default"
    edit = f"/catalog/connections/{catalog['local']}/edit"
    assert post(admin, edit, {**CONNECTION_FORM, "allow_passthrough": "1"}).status_code == 302
    with app.app_context():
        assert service.get_connection(catalog["local"]).allow_passthrough is True
    assert re.search(r'name="allow_passthrough"[^>]*checked', admin.get(edit).get_data(as_text=True))
    assert post(admin, edit, CONNECTION_FORM).status_code == 302  # an unticked box is not sent: off again
    with app.app_context():
        assert service.get_connection(catalog["local"]).allow_passthrough is False
        events = [e for e in audit_events(app) if e["action"] == "connection.update"]
    assert [(e["before"]["allow_passthrough"], e["after"]["allow_passthrough"]) for e in events[-2:]] == \
        [(False, True), (True, False)]


def audit_events(app) -> list[dict]:
    import json

    from app.audit.models import AuditEvent
    from app.extensions import db

    rows = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
    return [{"action": r.action, "before": json.loads(r.before or "{}"), "after": json.loads(r.after or "{}")}
            for r in rows]
