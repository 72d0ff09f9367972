"""An assistant's defaults in each request shape: instructions first, the client's own values kept, tool
definitions (stored in the chat, flat or Anthropic form) converted, hosted tools left out for chat."""
from __future__ import annotations

from app.assistants.service import AssistantEntry
from app.gateway.assistant_context import apply_defaults

FLAT = {"type": "function", "name": "lookup", "description": "Find.", "parameters": {"type": "object"}}
HOSTED = {"type": "web_search"}


def assistant(**changes) -> AssistantEntry:
    values = {"public_id": "desk", "display_name": "Desk", "model_id": "m", "instructions": "Be kind.",
              "temperature": 0.2, "max_output_tokens": 50, "tools": (FLAT, HOSTED), "enabled": True}
    return AssistantEntry(**{**values, **changes})


def test_chat_gets_temperature_and_chat_tools_but_keeps_the_clients():
    body = {"messages": []}
    apply_defaults("chat", body, assistant())
    assert body == {"messages": [], "temperature": 0.2, "tools": [
        {"type": "function", "function": {"name": "lookup", "description": "Find.",
                                          "parameters": {"type": "object"}}}]}
    own = {"messages": [], "temperature": 0, "tools": [{"type": "function", "function": {"name": "x"}}]}
    apply_defaults("chat", own, assistant())
    assert own["temperature"] == 0 and own["tools"] == [{"type": "function", "function": {"name": "x"}}]


def test_messages_get_the_instructions_as_the_first_system_block_and_anthropic_tools():
    body = {"messages": [], "system": "Client rules."}
    apply_defaults("messages", body, assistant())
    assert body["system"] == [{"type": "text", "text": "Be kind."}, {"type": "text", "text": "Client rules."}]
    assert body["tools"] == [{"name": "lookup", "description": "Find.", "input_schema": {"type": "object"}}]
    blocks = {"messages": [], "system": [{"type": "text", "text": "A"}]}
    apply_defaults("messages", blocks, assistant(tools=()))
    assert blocks["system"] == [{"type": "text", "text": "Be kind."}, {"type": "text", "text": "A"}]
    assert "tools" not in blocks


def test_responses_get_joined_instructions_and_flat_tools_with_hosted_ones():
    body = {"input": "hi", "instructions": "Client."}
    apply_defaults("responses", body, assistant(temperature=None))
    assert body["instructions"] == "Be kind.\n\nClient." and "temperature" not in body
    assert body["tools"] == [FLAT, HOSTED]
    chat_form = {"input": "hi"}
    apply_defaults("responses", chat_form, assistant(tools=({"type": "function", "function": FLAT | {}},)))
    assert chat_form["tools"][0]["name"] == "lookup" and "function" not in chat_form["tools"][0]
