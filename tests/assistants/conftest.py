"""Assistant test helpers: a demo model in the catalog; clients per role and the audit trail."""
from __future__ import annotations

import pytest
from support.accounts import audit_log, client_as, make_user, owner_client  # noqa: F401


@pytest.fixture
def demo_model(app):
    """An enabled demo model 'demo-chat' in the catalog."""
    from app.catalog import service as catalog

    with app.app_context():
        connection = catalog.create_connection({"name": "demo", "kind": "demo", "base_url": ""})
        catalog.create_model({"public_id": "demo-chat", "display_name": "Demo"}, connection.id, ["chat"])
    return "demo-chat"
