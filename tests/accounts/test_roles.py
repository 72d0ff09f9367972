"""Every accounts and audit page per role; auditors read everything and change nothing."""
from __future__ import annotations

import pytest
from support.web import post_form

PAGES = ("/users", "/account", "/audit", "/audit.csv")


@pytest.mark.parametrize("role", ["owner", "admin", "auditor"])
def test_every_role_reads_the_accounts_and_audit_pages(client_as, role):
    client = client_as(role)
    for path in PAGES:
        assert client.get(path).status_code == 200, path


def test_only_owners_see_the_user_management_forms(client_as, make_user):
    make_user("someone", "admin")
    owner_page = client_as("owner").get("/users").get_data(as_text=True)
    assert "Create user" in owner_page and "Reset password" in owner_page
    for role in ("admin", "auditor"):
        page = client_as(role, name=f"{role}-reader").get("/users").get_data(as_text=True)
        assert "Create user" not in page and "Reset password" not in page
        assert "Only owners can add users or change them." in page


def test_navigation_shows_the_audit_trail_and_users_to_every_role(client_as):
    for role in ("owner", "admin", "auditor"):
        page = client_as(role, name=f"{role}-nav").get("/account").get_data(as_text=True)
        assert 'href="/audit"' in page and 'href="/users"' in page


def test_auditor_posts_are_refused(client_as, make_user, audit_log):
    auditor = client_as("auditor")
    victim = make_user("victim", "admin")
    before = len(audit_log())
    for url, data in (("/users", {"username": "new-one", "password": "a-long-password", "role": "owner"}),
                      (f"/users/{victim}/disable", {}),
                      (f"/users/{victim}/role", {"role": "auditor"}),
                      (f"/users/{victim}/password", {"password": "another-password-1"}),
                      ("/keys", {"name": "sneaky"})):
        assert post_form(auditor, url, data).status_code == 403, url
    assert len(audit_log()) == before  # nothing changed, nothing recorded


def test_admins_cannot_manage_users(client_as, make_user):
    admin = client_as("admin")
    victim = make_user("victim", "auditor")
    assert post_form(admin, "/users", {"username": "x-user", "password": "a-long-password",
                                       "role": "owner"}).status_code == 403
    assert post_form(admin, f"/users/{victim}/role", {"role": "owner"}).status_code == 403
    assert post_form(admin, f"/users/{victim}/disable").status_code == 403


def test_auditors_may_still_manage_their_own_account_language_and_logout(client_as):
    auditor = client_as("auditor")
    response = post_form(auditor, "/account/preferences", {"language": "de", "timezone": "Europe/Berlin"})
    assert response.status_code == 302
    assert post_form(auditor, "/language", {"language": "en", "next": "/audit"}).status_code == 302
    response = post_form(auditor, "/account/password", {"current_password": "role-password-1",
                                                        "new_password": "auditor-new-pass",
                                                        "new_password_confirm": "auditor-new-pass"})
    assert response.status_code == 302
    assert post_form(auditor, "/logout").status_code == 302
    assert auditor.get("/audit").status_code == 302
