"""User management by owners: create, disable/enable, reset password, change role; the rules that keep
an owner in charge; every change recorded in the audit trail."""
from __future__ import annotations

import json
import re

import pytest
from support.web import log_in, post_form

PASSWORD = "role-password-1"


def error_of(response) -> str:
    match = re.search(r'class="error" role="alert">([^<]*)<', response.get_data(as_text=True))
    return match.group(1) if match else ""


def user_row(html: str, user_id: int) -> str:
    return re.search(rf'<tr id="user-{user_id}">(.*?)</tr>', html, re.S).group(1)


def test_owner_creates_a_user_who_can_then_log_in(app, owner_client, audit_log):
    response = post_form(owner_client, "/users", {"username": "berta", "password": "berta-password",
                                                  "role": "auditor"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/users")
    page = owner_client.get("/users").get_data(as_text=True)
    assert "User berta was created." in page and "berta" in page
    assert log_in(app.test_client(), "berta", "berta-password").status_code == 302
    created = audit_log("user.create")[-1]
    assert created["actor_name"] == "owner" and created["target_name"] == "berta"
    assert json.loads(created["after"]) == {"username": "berta", "role": "auditor", "disabled": False}
    assert "berta-password" not in repr(audit_log())


def test_htmx_create_answers_with_the_fragment(owner_client):
    response = post_form(owner_client, "/users", {"username": "carl", "password": "carl-password",
                                                  "role": "admin"}, htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="users-panel">') and "<html" not in html
    assert "User carl was created." in html
    assert response.headers["Vary"] and "HX-Request" in response.headers["Vary"]


def test_invalid_new_users_get_clear_messages_and_keep_the_input(owner_client, make_user):
    make_user("dora", "admin")
    good = "a-long-password"
    cases = [({"username": "DORA", "password": good, "role": "admin"}, "exists already"),
             ({"username": "eve", "password": "short", "role": "admin"}, "at least 10 characters"),
             ({"username": "eve", "password": good, "role": "superuser"}, "Choose one of the roles"),
             ({"username": "has space", "password": good, "role": "admin"}, "1 to 64 characters"),
             ({"username": "x" * 65, "password": good, "role": "admin"}, "1 to 64 characters")]
    for form, message in cases:
        response = post_form(owner_client, "/users", form, htmx=True)
        assert response.status_code == 422, form
        assert message in error_of(response), form
        assert f'value="{form["username"]}"' in response.get_data(as_text=True)


def test_disabling_ends_the_users_sessions_and_blocks_login(app, owner_client, client_as, audit_log):
    admin = client_as("admin", name="frank")
    frank_id = audit_log("user.create")[-1]["target_id"]
    assert admin.get("/keys").status_code == 200
    response = post_form(owner_client, f"/users/{frank_id}/disable", htmx=True)
    assert response.status_code == 200 and "User frank was disabled." in response.get_data(as_text=True)
    assert "Disabled" in user_row(response.get_data(as_text=True), int(frank_id))
    assert admin.get("/keys").status_code == 302  # the running session is over
    assert log_in(app.test_client(), "frank", PASSWORD).status_code == 401
    event = audit_log("user.disable")[-1]
    assert json.loads(event["before"]) == {"disabled": False}
    assert json.loads(event["after"]) == {"disabled": True}

    post_form(owner_client, f"/users/{frank_id}/enable")
    assert log_in(app.test_client(), "frank", PASSWORD).status_code == 302
    assert audit_log("user.enable")[-1]["target_name"] == "frank"


def test_reset_password_replaces_the_old_one_and_ends_sessions(app, owner_client, client_as, audit_log):
    user = client_as("admin", name="greta")
    greta_id = audit_log("user.create")[-1]["target_id"]
    assert post_form(owner_client, f"/users/{greta_id}/password", {"password": "short"},
                     htmx=True).status_code == 422
    response = post_form(owner_client, f"/users/{greta_id}/password", {"password": "greta-new-password"})
    assert response.status_code == 302
    assert user.get("/keys").status_code == 302
    assert log_in(app.test_client(), "greta", PASSWORD).status_code == 401
    assert log_in(app.test_client(), "greta", "greta-new-password").status_code == 302
    event = audit_log("user.password_reset")[-1]
    assert "greta-new-password" not in json.dumps(audit_log(), default=str)
    assert json.loads(event["after"]) == {"password": "[redacted]"}


def test_role_change_takes_effect_on_the_next_request(owner_client, client_as, audit_log):
    user = client_as("admin", name="hans")
    hans_id = audit_log("user.create")[-1]["target_id"]
    response = post_form(owner_client, f"/users/{hans_id}/role", {"role": "auditor"})
    assert response.status_code == 302
    assert post_form(user, "/users", {"username": "x-user"}).status_code == 403
    event = audit_log("user.role_change")[-1]
    assert json.loads(event["before"]) == {"role": "admin"}
    assert json.loads(event["after"]) == {"role": "auditor"}
    assert post_form(owner_client, f"/users/{hans_id}/role", {"role": "boss"}, htmx=True).status_code == 422


def test_owners_cannot_disable_or_demote_themselves(owner_client, audit_log):
    own_id = audit_log("login.success")[0]["actor_id"]
    response = post_form(owner_client, f"/users/{own_id}/disable", htmx=True)
    assert response.status_code == 422 and error_of(response) == "You cannot disable your own account."
    response = post_form(owner_client, f"/users/{own_id}/role", {"role": "admin"}, htmx=True)
    assert response.status_code == 422 and error_of(response) == "You cannot change your own role."
    response = post_form(owner_client, f"/users/{own_id}/password", {"password": "a-long-password"},
                         htmx=True)
    assert response.status_code == 422
    assert owner_client.get("/keys").status_code == 200
    assert not audit_log("user.disable") and not audit_log("user.role_change")


def test_the_last_enabled_owner_stays(app, make_user):
    from app.accounts import service

    second_id = make_user("second-owner", "owner")
    with app.app_context():
        first, second = service.get_user(1), service.get_user(second_id)
        service.set_disabled(second.id, True, actor=first)  # another owner remains: allowed
        # `first` is now the last enabled owner; no one (not even another, disabled owner) may remove it.
        with pytest.raises(service.AccountError, match="last enabled owner"):
            service.set_disabled(first.id, True, actor=second)
        with pytest.raises(service.AccountError, match="last enabled owner"):
            service.change_role(first.id, "admin", actor=second)
        assert first.role == "owner" and not first.disabled


def test_unknown_users_give_404(owner_client):
    assert post_form(owner_client, "/users/9999/disable").status_code == 404
    assert post_form(owner_client, "/users/9999/password", {"password": "a-long-password"}).status_code == 404
