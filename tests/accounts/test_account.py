"""The user's own account page: password change and preferences."""
from __future__ import annotations

from support.web import log_in, post_form


def test_password_change_needs_the_current_password_and_ends_other_sessions(app, client_as):
    here, elsewhere = client_as("admin", name="ida"), app.test_client()
    assert log_in(elsewhere, "ida", "role-password-1").status_code == 302
    form = {"current_password": "wrong", "new_password": "ida-new-password",
            "new_password_confirm": "ida-new-password"}
    response = post_form(here, "/account/password", form)
    assert response.status_code == 422
    assert "The current password is not correct." in response.get_data(as_text=True)
    response = post_form(here, "/account/password", {**form, "current_password": "role-password-1",
                                                      "new_password_confirm": "different-password"})
    assert response.status_code == 422 and "The passwords do not match." in response.get_data(as_text=True)

    response = post_form(here, "/account/password", {**form, "current_password": "role-password-1"})
    assert response.status_code == 302
    assert "Your password was changed." in here.get("/account").get_data(as_text=True)  # this session goes on
    assert elsewhere.get("/account").status_code == 302  # the other one has ended
    assert log_in(app.test_client(), "ida", "ida-new-password").status_code == 302


def test_preferences_are_saved_and_validated(client_as):
    client = client_as("auditor", name="jan")
    response = post_form(client, "/account/preferences", {"language": "de", "timezone": "Europe/Berlin"})
    assert response.status_code == 302
    page = client.get("/account").get_data(as_text=True)
    assert '<html lang="de">' in page
    assert '<option value="Europe/Berlin" selected>' in page
    response = post_form(client, "/account/preferences", {"language": "de", "timezone": "Mars/Olympus"})
    assert response.status_code == 422
    assert post_form(client, "/account/preferences", {"language": "fr", "timezone": ""}).status_code == 422
