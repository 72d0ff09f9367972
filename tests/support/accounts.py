"""Fixtures for admin-page tests: users and test clients per role (the owner comes from tests/conftest.py),
and the audit trail as plain dicts. A test folder imports them in its conftest.py."""
from __future__ import annotations

import pytest

from support.web import log_in

PASSWORD = "role-password-1"


@pytest.fixture
def make_user(app, owner):
    """make_user(name, role) → the new user's id (created through the service, as the CLI does)."""
    from app.accounts import service

    def make(name: str, role: str, password: str = PASSWORD) -> int:
        with app.app_context():
            return service.create_user(name, password, role, actor="test").id

    return make


@pytest.fixture
def client_as(app, owner, make_user):
    """client_as(role) → a test client logged in with that role ("owner" uses the owner fixture)."""

    def make(role: str, name: str | None = None):
        client = app.test_client()
        if role == "owner":
            response = log_in(client, owner["username"], owner["password"])
        else:
            name = name or f"{role}-1"
            make_user(name, role)
            response = log_in(client, name, PASSWORD)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make


@pytest.fixture
def owner_client(client_as):
    return client_as("owner")


@pytest.fixture
def audit_log(app):
    """audit_log(action=None) → the recorded audit events as dicts, oldest first."""
    from app.audit.models import AuditEvent
    from app.extensions import db

    def read(action: str | None = None) -> list[dict]:
        with app.app_context():
            query = db.session.query(AuditEvent).order_by(AuditEvent.id)
            if action:
                query = query.filter_by(action=action)
            return [{c.name: getattr(e, c.name) for c in AuditEvent.__table__.columns} for e in query]

    return read


@pytest.fixture
def app_with(instance_path, database_url):
    """app_with(**settings) → an app like the `app` fixture, with extra settings such as
    PFORTE_LOGIN_ATTEMPTS="2/hour" (for behaviour that is fixed when the app starts)."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    made = []

    def make(**settings):
        app = create_app({"INSTANCE_PATH": str(instance_path), "PFORTE_DATABASE_URL": database_url,
                          "TESTING": True, **settings})
        with app.app_context():
            upgrade()
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
