"""Assistants on the gateway side: which assistant answers a call, and what it adds to the request.

Who may call an assistant:
- a key made for one assistant calls only that one, whatever `model` it sends (none, another model or
  another assistant); when its assistant is disabled it gets 404 model_not_found;
- any other key calls an assistant by sending its public id as `model`, if the key may use it: a key
  without a model allow list may, and a key with one may when the list names the assistant's id or the
  catalog model the assistant runs on. The same allow-list rule holds for keys made for an assistant.

What it adds (the client's own values win, except for the instructions, which always come first):
- its instructions as the first system text, ahead of any the client sends: for chat a system message
  ahead of the stored turns and the client's messages (instruction_messages, at upstream time), for
  /v1/messages the first `system` block, for Responses the start of `instructions`;
- its temperature and its output cap when the client sends none (the output cap goes into the budget
  reservation like a cap of the client's, see pipeline.reserve_budget);
- its tool definitions when the client sends no tools.

The answer names the assistant's public id as `model`, and so does the request log (each assistant has
its own line in the usage views): `resolve` returns the catalog model under the assistant's id.
"""
from __future__ import annotations

import dataclasses

from app.api_errors import ApiError
from app.assistants import cache as assistants
from app.assistants.service import AssistantEntry
from app.catalog.entries import ModelEntry
from app.catalog.service import lookup_model
from app.gateway import errors
from app.keys.context import KeyContext

ENDPOINTS = ("chat", "messages", "responses")  # the endpoints an assistant answers


def resolve(call) -> ModelEntry:
    """Step 6 for a key made for an assistant, or for a name that is no catalog model: the assistant's
    catalog model under the assistant's public id. Sets call.assistant and applies its temperature and
    tools to call.body. 404 model_not_found for an unknown or disabled assistant (or one whose model is
    gone), 403 model_not_allowed when the key's allow list names neither it nor its model."""
    key = call.key
    public_id = key.assistant_id or call.model_name
    call.model_name = public_id
    assistant = assistants.find(public_id)
    if assistant is None or not assistant.enabled:
        raise errors.model_not_found(public_id)
    if call.endpoint not in ENDPOINTS:
        raise errors.invalid_request(f"The assistant `{public_id}` answers chat completions, messages and "
                                     f"responses, not the {call.endpoint} endpoint.", param="model")
    model = lookup_model(assistant.model_id)
    if model is None or model.target is None:
        raise errors.model_not_found(public_id)
    check_allowed(key, assistant)
    call.assistant = assistant
    call.context_bytes += len(assistant.instructions)  # sent upstream besides the body: in the estimate
    apply_defaults(call.endpoint, call.body, assistant)
    return dataclasses.replace(model, public_id=assistant.public_id, display_name=assistant.display_name)


def may_use(key: KeyContext, assistant: AssistantEntry) -> bool:
    """Whether the key may call the assistant (the allow-list rule of the module docstring)."""
    if key.assistant_id is not None and key.assistant_id != assistant.public_id:
        return False
    return not key.allowed_models or assistant.public_id in key.allowed_models \
        or assistant.model_id in key.allowed_models


def check_allowed(key: KeyContext, assistant: AssistantEntry) -> None:
    if not may_use(key, assistant):
        raise ApiError(403, "permission_error", "model_not_allowed",
                       f"This API key may not use the model '{assistant.public_id}'.")


def visible_assistants(key: KeyContext) -> list[AssistantEntry]:
    """The enabled assistants this key may call, for /v1/models."""
    if key.assistant_id is not None:
        assistant = assistants.find(key.assistant_id)
        return [assistant] if assistant is not None and assistant.enabled and may_use(key, assistant) else []
    return [a for a in assistants.enabled_assistants() if may_use(key, a)]


def default_output_cap(call) -> int | None:
    """The assistant's output cap, for a call whose client sent none."""
    return call.assistant.max_output_tokens if call.assistant is not None else None


def instruction_messages(call) -> list[dict]:
    """The assistant's instructions as the chat messages that go first (none without an assistant)."""
    if call.assistant is None or not call.assistant.instructions:
        return []
    return [{"role": "system", "content": call.assistant.instructions}]


def _joined(own: str, client_instructions) -> str | None:
    """The Responses `instructions` field: the assistant's first, then the client's."""
    parts = [text for text in (own, client_instructions) if isinstance(text, str) and text]
    return "\n\n".join(parts) or None


def apply_defaults(endpoint: str, body: dict, assistant: AssistantEntry) -> None:
    """The assistant's temperature, tools and (except for chat) instructions in a request body."""
    if assistant.temperature is not None and body.get("temperature") is None:
        body["temperature"] = assistant.temperature
    if assistant.tools and not body.get("tools"):
        tools = [tool for tool in (_TOOL_SHAPES[endpoint](t) for t in assistant.tools) if tool]
        if tools:
            body["tools"] = tools
    if endpoint == "messages" and assistant.instructions:
        body["system"] = [{"type": "text", "text": assistant.instructions}, *_system_blocks(body.get("system"))]
    elif endpoint == "responses":
        body["instructions"] = _joined(assistant.instructions, body.get("instructions"))


def _system_blocks(system) -> list:
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    return list(system) if isinstance(system, list) else []


# --- tool definitions in each request shape (stored as the admin wrote them: chat, flat or Anthropic) -------

def _function_parts(tool: dict) -> dict | None:
    """name, description, parameters (and strict) of a function tool in any of the three shapes."""
    if isinstance(tool.get("function"), dict):
        return tool["function"]
    if "input_schema" in tool:
        return {"name": tool.get("name"), "description": tool.get("description"),
                "parameters": tool.get("input_schema")}
    if tool.get("type") == "function":
        return {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return None  # a hosted tool (web_search, ...): no chat upstream runs it


def _chat_tool(tool: dict) -> dict | None:
    parts = _function_parts(tool)
    return None if parts is None else {"type": "function", "function": _present(parts)}


def _anthropic_tool(tool: dict) -> dict | None:
    parts = _function_parts(tool)
    if parts is None:
        return None
    return _present({"name": parts.get("name"), "description": parts.get("description"),
                     "input_schema": parts.get("parameters") or {"type": "object", "properties": {}}})


def _responses_tool(tool: dict) -> dict | None:
    parts = _function_parts(tool)
    return dict(tool) if parts is None else {"type": "function", **_present(parts)}


def _present(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}


_TOOL_SHAPES = {"chat": _chat_tool, "messages": _anthropic_tool, "responses": _responses_tool}
