"""Assistants on the integrator pages: selectable in the playground and on "Use the API" (for signed-in
admins; a stored key gets its assistants from /v1/models), and listed on "Use the API"."""
from __future__ import annotations

import pytest

from app.assistants import service as assistants
from app.catalog import service as catalog


@pytest.fixture
def helper(app):
    with app.app_context():
        catalog.create_connection({"name": "demo", "kind": "demo", "base_url": ""})
        catalog.create_model({"public_id": "demo-chat", "display_name": "Demo"}, "demo")
        assistants.add({"public_id": "helpdesk", "display_name": "Help desk", "model_id": "demo-chat",
                        "instructions": "You are the help desk."})
        assistants.add({"public_id": "old-desk", "model_id": "demo-chat", "instructions": "Off."}, enabled=False)


@pytest.mark.parametrize("path", ("/use", "/playground"))
def test_enabled_assistants_are_in_the_model_select(client_as, helper, path):
    html = client_as("admin").get(path).get_data(as_text=True)
    select = html[html.index("data-model-select"):]
    select = select[:select.index("</select>")]
    assert select.index('<option value="demo-chat">') < select.index('<option value="helpdesk">helpdesk</option>')
    assert "old-desk" not in select


def test_use_page_lists_the_assistants_for_admins_only(client, client_as, helper):
    html = client_as("admin").get("/use").get_data(as_text=True)
    table = html[html.index('id="assistants-heading"'):]
    assert "Help desk" in table and '<td class="mono">helpdesk</td>' in table and "old-desk" not in table
    assert 'data-fill="model">demo-chat<' in html  # the examples still default to the first catalog model
    assert "thread_id" in html
    anonymous = client.get("/use").get_data(as_text=True)
    assert 'id="assistants-heading"' in anonymous and "Help desk" not in anonymous


def test_use_page_in_german(client_as, helper):
    html = client_as("admin").get("/use", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Unterhaltungen, die der Server aufbewahrt" in html and "ID (als Modell senden)" in html
