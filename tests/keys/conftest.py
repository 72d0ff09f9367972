"""Keys test helpers: an app context and keys created through the service; clients per role and the
audit trail come from tests/support/accounts.py."""
from __future__ import annotations

import pytest
from support.accounts import audit_log, client_as, make_user, owner_client  # noqa: F401


@pytest.fixture
def make_key(app):
    """make_key(name='test key', **values) → (public_id, plaintext), created through the service."""
    from app.keys import service

    def make(name: str = "test key", **values):
        with app.app_context():
            key, plaintext = service.create_key(name, actor="test", **values)
            return key.public_id, plaintext

    return make
