"""The organisation's upstream credential goes only to the base URL it was entered for, and link-local or
cloud-metadata addresses are refused as upstreams unless the server setting allows them."""
from __future__ import annotations

import pytest
from sqlalchemy import update
from support.accounts import app_with  # noqa: F401  (fixture; client_as comes from conftest.py)
from upstream_stub import StubUpstream

from app.catalog import service
from app.catalog.service import CatalogError
from app.providers.base import UpstreamTarget
from app.providers.probe import probe_connection

SECRET = "sk-org-upstream-9Kd2LmQ"
BLOCKED_URLS = ("http://169.254.169.254/latest", "http://[fe80::1]:8080/v1", "http://[fd00:ec2::254]/v1",
                "http://2852039166/v1", "http://0xa9.254.169.254/v1", "http://[::ffff:169.254.169.254]/v1")


def _form(base_url: str, name: str = "org") -> dict:
    return {"name": name, "kind": "openai", "base_url": base_url}


def _errors(call, *args, **kwargs) -> dict:
    with pytest.raises(CatalogError) as info:
        call(*args, **kwargs)
    return info.value.errors


def test_an_admin_cannot_move_the_stored_credential_to_another_base_url(ctx):
    connection = service.create_connection(_form("http://127.0.0.1:9/v1"), credential=SECRET)
    errors = _errors(service.update_connection, connection.id, _form("http://127.0.0.1:10/v1"))
    assert "enter the API key again" in errors["credential"]
    assert service.get_connection(connection.id).base_url == "http://127.0.0.1:9/v1"
    # with a credential of their own, the change is fine: the organisation's key is replaced
    service.update_connection(connection.id, _form("http://127.0.0.1:10/v1"), credential="sk-own")
    service.create_model({"public_id": "m"}, "org")
    assert service.lookup_model("m").target.api_key == "sk-own"
    # other changes keep the stored credential
    service.update_connection(connection.id, {**_form("http://127.0.0.1:10/v1"), "read_timeout": "60"})
    service.drop_cached()
    assert service.lookup_model("m").target.api_key == "sk-own"


def test_an_owner_may_move_the_stored_credential_and_the_audit_trail_says_so(ctx):
    from app.audit.models import AuditEvent
    from app.extensions import db

    connection = service.create_connection(_form("http://127.0.0.1:9/v1"), credential=SECRET)
    service.update_connection(connection.id, _form("http://127.0.0.1:11/v1"), owner=True)
    service.create_model({"public_id": "m"}, "org")
    assert service.lookup_model("m").target.api_key == SECRET
    event = db.session.query(AuditEvent).filter_by(action="connection.update").one()
    assert '"credential_moved_to_new_base_url": true' in event.after and SECRET not in event.after


def test_a_credential_is_not_sent_to_a_base_url_it_was_not_entered_for(ctx):
    from app.catalog.models import Connection
    from app.extensions import db

    with StubUpstream() as upstream:
        connection = service.create_connection(_form("http://127.0.0.1:9/v1"), credential=SECRET)
        service.create_model({"public_id": "m"}, "org")
        # the base URL changed behind the service's back (a restored row, a hand-edited database)
        db.session.execute(update(Connection).where(Connection.id == connection.id)
                           .values(base_url=f"{upstream.url}/v1"))
        db.session.commit()
        service.drop_cached()
        assert service.lookup_model("m").target.api_key is None
        assert service.test_connection(connection.id).ok
    assert "authorization" not in upstream.requests[0]["headers"]


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_link_local_and_metadata_addresses_are_refused_as_base_urls(ctx, url):
    errors = _errors(service.create_connection, _form(url))
    assert "Link-local and cloud metadata addresses" in errors["base_url"]
    connection = service.create_connection(_form("http://127.0.0.1:9/v1"))
    assert "base_url" in _errors(service.update_connection, connection.id, _form(url), owner=True)


def test_the_server_setting_allows_link_local_upstreams(app_with):  # noqa: F811
    app = app_with(PFORTE_ALLOW_LINK_LOCAL_UPSTREAMS="true")
    with app.app_context():
        connection = service.create_connection(_form("http://169.254.10.20:8000/v1"))
        assert connection.base_url == "http://169.254.10.20:8000/v1"
        service.create_model({"public_id": "m"}, "org")
        assert service.lookup_model("m").target.allow_link_local is True


def test_the_probe_refuses_a_link_local_address_without_sending_anything():
    target = UpstreamTarget(connection_id=1, name="t", kind="openai", base_url="http://169.254.169.254/v1",
                            api_key=SECRET, connect_timeout=3)
    result = probe_connection(target)
    assert not result.ok and result.error_kind == "blocked"
    assert "link-local or a cloud metadata service" in result.detail



def test_the_connection_form_refuses_a_metadata_address_and_an_owner_may_move_the_key(client_as, app, post):
    admin, owner = client_as("admin"), client_as("owner")
    form = {"name": "org", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}
    assert post(owner, "/catalog/connections/new", {**form, "credential": SECRET}).status_code == 302
    with app.app_context():
        connection_id = service.list_connections()[0].id
    edit = f"/catalog/connections/{connection_id}/edit"
    refused = post(admin, "/catalog/connections/new", {**form, "name": "meta",
                                                       "base_url": "http://169.254.169.254/latest"})
    assert refused.status_code == 422 and "Link-local and cloud metadata" in refused.get_data(as_text=True)
    moved = {**form, "base_url": "http://127.0.0.1:10/v1"}
    answer = post(admin, edit, moved)
    assert answer.status_code == 422 and "enter the API key again" in answer.get_data(as_text=True)
    assert post(owner, edit, moved).status_code == 302
    with app.app_context():
        service.create_model({"public_id": "m"}, "org")
        assert service.lookup_model("m").target.api_key == SECRET
