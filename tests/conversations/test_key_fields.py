"""A key's "keep conversations" choice and assistant: stored, resolved for the gateway, audited."""
from __future__ import annotations

import pytest

from app.assistants import service as assistants
from app.keys import service as keys
from app.keys import verify
from app.settings import service as settings


@pytest.fixture
def demo_model(ctx):
    from app.catalog import service as catalog

    connection = catalog.create_connection({"name": "demo", "kind": "demo", "base_url": ""})
    catalog.create_model({"public_id": "demo-chat", "display_name": "Demo"}, connection.id, ["chat"])
    return "demo-chat"


def _audit(action: str) -> list:
    from app.audit.models import AuditEvent
    from app.extensions import db

    return list(db.session.query(AuditEvent).filter(AuditEvent.action == action))


def test_the_verified_context_carries_the_resolved_choice(app, ctx):
    _, follows = keys.create_key("follows the default", actor="test")
    _, keeps = keys.create_key("keeps", actor="test", keep_conversations=True)
    _, never = keys.create_key("never", actor="test", keep_conversations=False)
    assert verify.verify_key(follows).keep_conversations is False  # PFORTE_KEEP_CONVERSATIONS_DEFAULT
    assert verify.verify_key(keeps).keep_conversations is True
    settings.set_keep_conversations_default(True)
    assert verify.verify_key(follows).keep_conversations is True
    assert verify.verify_key(never).keep_conversations is False
    assert _audit("settings.keep_conversations")[0].after == '{"keep_conversations_default": true}'


def test_the_server_default_applies_until_the_owner_chooses(app, ctx):
    app.config["PFORTE_KEEP_CONVERSATIONS_DEFAULT"] = True
    _, raw = keys.create_key("follows", actor="test")
    assert verify.verify_key(raw).keep_conversations is True
    settings.set_keep_conversations_default(False)
    assert verify.verify_key(raw).keep_conversations is False


def test_turning_it_on_and_off_is_its_own_audit_event(ctx):
    key, _ = keys.create_key("k", actor="test")
    keys.update_key(key.public_id, {"keep_conversations": True}, actor="test")
    keys.update_key(key.public_id, {"keep_conversations": False}, actor="test")
    events = _audit("key.keep_conversations")
    assert [(e.before, e.after) for e in events] == [
        ('{"keep_conversations": null}', '{"keep_conversations": true}'),
        ('{"keep_conversations": true}', '{"keep_conversations": false}')]


def test_a_key_for_an_assistant(ctx, demo_model):
    assistants.add({"public_id": "helpdesk", "model_id": demo_model, "instructions": "Be kind."}, actor="test")
    key, raw = keys.create_key("desk", actor="test", assistant_id="helpdesk")
    assert verify.verify_key(raw).assistant_id == "helpdesk"
    with pytest.raises(keys.KeyInputError) as caught:
        keys.create_key("bad", actor="test", assistant_id="nobody")
    assert "nobody" in caught.value.errors["assistant_id"]
    keys.update_key(key.public_id, {"assistant_id": None}, actor="test")
    assert verify.verify_key(raw).assistant_id is None
