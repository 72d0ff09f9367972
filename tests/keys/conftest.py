"""Keys test helpers: an app context, keys created through the service, clients per role."""
from __future__ import annotations

import pytest
from support.web import log_in

PASSWORD = "role-password-1"


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def make_key(app):
    """make_key(name='k', **policy) → (public_id, plaintext), created through the service."""
    from app.keys import service

    def make(name: str = "test key", **values):
        with app.app_context():
            key, plaintext = service.create_key(name, actor="test", **values)
            return key.public_id, plaintext

    return make


@pytest.fixture
def client_as(app, owner):
    """client_as(role) → a test client logged in with that role ("owner" uses the owner fixture)."""
    from app.accounts import service

    def make(role: str):
        client = app.test_client()
        if role == "owner":
            response = log_in(client, owner["username"], owner["password"])
        else:
            with app.app_context():
                service.create_user(f"{role}-1", PASSWORD, role, actor="test")
            response = log_in(client, f"{role}-1", PASSWORD)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make


@pytest.fixture
def audit_events(app):
    """audit_events(action=None) → recorded audit events as dicts, oldest first."""
    from app.audit.models import AuditEvent
    from app.extensions import db

    def read(action: str | None = None) -> list[dict]:
        with app.app_context():
            query = db.session.query(AuditEvent).order_by(AuditEvent.id)
            if action:
                query = query.filter_by(action=action)
            return [{c.name: getattr(e, c.name) for c in AuditEvent.__table__.columns} for e in query]

    return read
