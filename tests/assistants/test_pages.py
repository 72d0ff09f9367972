"""The assistant pages, the key form's conversation fields and the settings' conversation default, through
the Flask test client."""
import re

from support.web import csrf_token


def _post(client, url, data, token_page="/assistants"):
    return client.post(url, data={"csrf_token": csrf_token(client, token_page), **data})


def _field_errors(html: str) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>([^<]+)<', html)


def test_owner_adds_edits_disables_an_assistant(owner_client, demo_model, app):
    assert "Assistants" in owner_client.get("/keys").get_data(as_text=True)  # in the navigation
    page = owner_client.get("/assistants/new").get_data(as_text=True)
    assert 'value="demo-chat"' in page
    added = _post(owner_client, "/assistants/new", {"public_id": "helpdesk", "display_name": "Help desk",
                                                    "model_id": demo_model, "instructions": "Be kind.",
                                                    "temperature": "0,5", "enabled": "1"})
    assert added.status_code == 302
    listing = owner_client.get("/assistants").get_data(as_text=True)
    assert "Help desk" in listing and "helpdesk" in listing and "Enabled" in listing
    edit = owner_client.get("/assistants/helpdesk/edit").get_data(as_text=True)
    assert "Be kind." in edit and 'value="0.5"' in edit
    assert _post(owner_client, "/assistants/helpdesk/edit", {"display_name": "Desk", "model_id": demo_model,
                                                             "instructions": "Be brief."}).status_code == 302
    assert _post(owner_client, "/assistants/helpdesk/enabled", {"enabled": "0"}).status_code == 302
    from app.assistants import service

    with app.app_context():
        entry = service.lookup("helpdesk")
    assert (entry.display_name, entry.instructions, entry.temperature, entry.enabled) == \
        ("Desk", "Be brief.", None, False)


def test_the_form_shows_every_problem(owner_client, demo_model):
    answer = _post(owner_client, "/assistants/new", {"public_id": "bad id", "model_id": demo_model,
                                                     "instructions": "", "temperature": "warm",
                                                     "tools": "[1]"})
    assert answer.status_code == 422
    errors = " ".join(_field_errors(answer.get_data(as_text=True)))
    for part in ("no spaces", "Enter the instructions", "from 0 to 2", "JSON list of objects"):
        assert part in errors


def test_auditors_read_but_do_not_edit(client_as, demo_model):
    auditor = client_as("auditor")
    assert auditor.get("/assistants").status_code == 200
    assert auditor.get("/assistants/new").status_code == 403


def test_german_texts(owner_client, demo_model):
    page = owner_client.get("/assistants", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Assistenten" in page and "Assistent hinzufügen" in page


def test_key_form_and_list_say_whether_conversations_are_kept(owner_client, demo_model, app, audit_log):
    from app.assistants import service as assistants
    from app.keys import service as keys

    with app.app_context():
        assistants.add({"public_id": "helpdesk", "model_id": demo_model, "instructions": "Hi"})
        key, _ = keys.create_key("Desk", actor="test")
        public_id = key.public_id
    form = owner_client.get(f"/keys/{public_id}/edit").get_data(as_text=True)
    assert "Organisation default (currently: not kept)" in form and 'value="helpdesk"' in form
    assert "Conversations are not kept" in owner_client.get("/keys").get_data(as_text=True)
    saved = _post(owner_client, f"/keys/{public_id}/edit", {"name": "Desk", "scope": "full",
                                                            "keep_conversations": "on", "assistant_id": "helpdesk"},
                  token_page="/keys")
    assert saved.status_code == 302
    listing = owner_client.get("/keys").get_data(as_text=True)
    assert "Conversations are kept" in listing and "Assistant helpdesk" in listing
    assert len(audit_log("key.update")) == 1  # both fields changed together


def test_owner_sets_the_organisation_default(owner_client, audit_log):
    page = owner_client.get("/settings").get_data(as_text=True)
    assert "Keys without their own choice do not keep conversations" in page and "30 days" in page
    answer = _post(owner_client, "/settings/conversations", {"keep_conversations": "on"}, token_page="/settings")
    assert answer.status_code == 302
    assert "Keys without their own choice keep conversations" in owner_client.get("/settings").get_data(as_text=True)
    assert len(audit_log("settings.keep_conversations")) == 1
