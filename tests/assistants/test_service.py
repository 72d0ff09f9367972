"""Assistants through the service: validation with clear messages, changes and their audit events."""
from __future__ import annotations

import pytest

from app.assistants import service


@pytest.fixture
def ready(ctx, demo_model):
    return demo_model


def test_add_and_lookup(ready):
    service.add({"public_id": "helpdesk", "model_id": ready, "instructions": "Be brief.", "temperature": 0.3,
                 "max_output_tokens": 200, "tools": '[{"type": "function", "name": "lookup"}]'}, actor="test")
    entry = service.lookup("helpdesk")
    assert entry == service.AssistantEntry(
        public_id="helpdesk", display_name="helpdesk", model_id=ready, instructions="Be brief.", temperature=0.3,
        max_output_tokens=200, tools=({"type": "function", "name": "lookup"},), enabled=True)
    assert service.lookup("nobody") is None


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"public_id": ""}, "public_id", "Enter the id"),
    ({"public_id": "has space"}, "public_id", "no spaces"),
    ({"public_id": "demo-chat"}, "public_id", "A model in the catalog has this id"),
    ({"model_id": "gone"}, "model_id", "No model with the id “gone”"),
    ({"instructions": "  "}, "instructions", "Enter the instructions"),
    ({"temperature": 2.5}, "temperature", "from 0 to 2"),
    ({"max_output_tokens": 0}, "max_output_tokens", "at least 1"),
    ({"tools": "{not json"}, "tools", "not valid JSON"),
    ({"tools": '[{"name": "x"}]'}, "tools", "each with a “type”"),
])
def test_invalid_values_are_refused_with_a_message(ready, values, field, message):
    with pytest.raises(service.AssistantInputError) as caught:
        service.add({"public_id": "a", "model_id": ready, "instructions": "Hi", **values})
    assert message in caught.value.errors[field]
    assert service.list_assistants() == []


def test_duplicate_ids_are_refused(ready):
    service.add({"public_id": "a", "model_id": ready, "instructions": "Hi"})
    with pytest.raises(service.AssistantInputError) as caught:
        service.add({"public_id": "a", "model_id": ready, "instructions": "Hi"})
    assert "exists already" in caught.value.errors["public_id"]


def test_update_disable_enable_are_audited(ready, audit_log):
    service.add({"public_id": "a", "model_id": ready, "instructions": "Hi"}, actor="test")
    service.update("a", {"instructions": "Hello there", "temperature": 1.0}, actor="test")
    service.update("a", {"instructions": "Hello there"}, actor="test")  # no change, no event
    with pytest.raises(service.AssistantInputError):
        service.update("a", {"public_id": "b"})
    service.set_enabled("a", False, actor="test")
    assert service.lookup("a").enabled is False
    service.set_enabled("a", True, actor="test")
    actions = [event["action"] for event in audit_log() if event["target_type"] == "assistant"]
    assert actions == ["assistant.create", "assistant.update", "assistant.disable", "assistant.enable"]
    update = audit_log("assistant.update")[0]
    assert '"temperature": 1.0' in update["after"] and "Hello there" not in update["after"]
    with pytest.raises(service.AssistantNotFound):
        service.set_enabled("nobody", False)
