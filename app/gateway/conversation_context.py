"""Conversations the server keeps, on the gateway side: chat threads (`thread_id`) and stored Responses
(`previous_response_id`).

A key that keeps conversations makes every chat completion a turn of a thread: without `thread_id` it
starts one (the answer carries the new id; a stream names it on its first chunk), with one it continues
it, and the earlier turns go upstream ahead of the new messages. The turn (the client's messages and the
answer) is stored after the answer; if it cannot be stored (the thread is full, or another request wrote
it meanwhile) the client gets that error instead of an answer whose turn would be missing next time.
A key that keeps none stores nothing and answers a `thread_id` with 400: never an answer that silently
forgot the earlier turns.

Order for an endpoint: `prepare(call)` after the model is resolved and before the budget is reserved
(the stored turns count in the prompt estimate), `history(call)` ahead of the new input upstream,
`store(call, new_items, answer_items)` after the answer. Every item is a chat message (a dict).
/v1/messages keeps no threads: a `thread_id` there is refused with 400 rather than dropped.

Responses follow the same rules: `prepare(call)` loads the response `previous_response_id` names (400
when the key keeps no conversations; 404 when it is unknown, another key's or past retention) and counts
its conversation in the prompt estimate, `earlier_items(call)` are its items (Responses items) ahead of
the new input, and `store_response(call, input_items, response)` keeps the answer under the id the client
saw, unless the key keeps no conversations or the request said `store: false`. Reading and deleting
stored responses needs a key that keeps conversations (`require_stored_responses`).
"""
from __future__ import annotations

from contextlib import nullcontext

from flask import has_app_context

from app.api_errors import ApiError
from app.conversations import service as conversations

THREAD_ENDPOINTS = ("chat",)
NO_THREAD_ENDPOINTS = ("messages",)
RESPONSE_ENDPOINTS = ("responses",)


def not_kept(param: str) -> ApiError:
    return ApiError(400, "invalid_request_error", "conversations_not_kept",
                    f"This API key does not keep conversations, so '{param}' cannot continue one. Send the whole "
                    f"conversation in the request, or ask an owner or admin to turn on \"Keep conversations\" "
                    f"for the key.", param=param, retryable=False)


def prepare(call) -> None:
    """Take `thread_id` out of the body; with the key keeping conversations load the thread (404 when it is
    unknown, another key's or past retention) or name a new one. 400 when the key keeps none. For
    Responses, load the response that `previous_response_id` names."""
    if call.endpoint in RESPONSE_ENDPOINTS:
        _load_previous_response(call)
        return
    if call.endpoint not in THREAD_ENDPOINTS:
        if call.endpoint in NO_THREAD_ENDPOINTS and call.body.get("thread_id") is not None:
            raise ApiError(400, "invalid_request_error", "invalid_request",
                           "'thread_id' continues chat completions only (POST /v1/chat/completions); this "
                           "endpoint keeps no conversations.", param="thread_id")
        return
    thread_id = call.body.pop("thread_id", None)
    if thread_id is not None and (not isinstance(thread_id, str) or not thread_id):
        raise ApiError(400, "invalid_request_error", "invalid_request", "'thread_id' must be a non-empty string.",
                       param="thread_id")
    if thread_id is not None:
        require_keeping(call, "thread_id")
    if not call.key.keep_conversations:
        return
    if thread_id is None:
        call.thread_id = conversations.new_thread_id()
        return
    call.thread = conversations.load_thread(call.key.id, thread_id)
    call.thread_id = thread_id
    call.context_bytes += call.thread.items_bytes


def require_keeping(call, param: str) -> None:
    """400 conversations_not_kept when the call's key keeps no conversations."""
    if not call.key.keep_conversations:
        raise not_kept(param)


def require_stored_responses(call) -> None:
    """400 conversations_not_kept for GET and DELETE /v1/responses/{id} when the key keeps no conversations:
    no response of it is stored, and a 404 would not say why."""
    if not call.key.keep_conversations:
        raise ApiError(400, "invalid_request_error", "conversations_not_kept",
                       "This API key does not keep conversations, so no responses are stored for it to read or "
                       "delete. Ask an owner or admin to turn on \"Keep conversations\" for the key.",
                       retryable=False)


def _load_previous_response(call) -> None:
    previous = call.body.get("previous_response_id")
    if previous is None:
        return
    require_keeping(call, "previous_response_id")
    call.previous_response = conversations.load_response(call.key.id, previous)
    call.context_bytes += call.previous_response.thread.items_bytes


def earlier_items(call) -> list:
    """The items of the stored response the call continues and of those before it (none without one)."""
    return list(call.previous_response.items) if call.previous_response is not None else []


def stores_response(call) -> bool:
    """Whether the call's response is kept: the key keeps conversations and the request did not say
    `store: false` (the Responses API's default is to store)."""
    return call.key.keep_conversations and call.body.get("store") is not False


def store_response(call, input_items: list, response: dict) -> None:
    """Keep the finished response (under its own id) after the one it continues. Needs no request context."""
    with app_context(call):
        conversations.store_response(call.key.id, response["id"], input_items, response["output"], response,
                                     after=call.previous_response)


def app_context(call):
    """An app context for database work: the request's while it lasts, else a new one (stream ends)."""
    return nullcontext() if has_app_context() else call.app.app_context()


def history(call) -> list:
    """The earlier turns of the call's thread (none on a first turn or without a thread)."""
    return list(call.thread.items) if call.thread is not None else []


def store(call, new_items: list, answer_items: list) -> None:
    """Store the turn in the call's thread (nothing when the call has none). Needs no request context: the
    end of a stream runs after it is gone."""
    if call.thread_id is None:
        return
    items = [*new_items, *answer_items]
    with app_context(call):
        if call.thread is None:
            call.thread = conversations.start_thread(call.key.id, items, thread_id=call.thread_id)
        else:
            call.thread = conversations.append_turn(call.thread, items)


def answer_message(message: dict) -> dict:
    """The stored form of a chat answer: role, content and tool calls."""
    stored = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        stored["tool_calls"] = message["tool_calls"]
    return stored


class StreamedAnswer:
    """The answer of a chat stream, put together from its chunks (the first choice)."""

    def __init__(self):
        self.text: list[str] = []
        self.tool_calls: dict[int, dict] = {}

    def add(self, chunk: dict) -> None:
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.text.append(delta["content"])
            for part in delta.get("tool_calls") or ():
                if isinstance(part, dict):
                    self._add_tool_call(part)

    def _add_tool_call(self, part: dict) -> None:
        call = self.tool_calls.setdefault(part.get("index", 0), {"id": None, "type": "function",
                                                                  "function": {"name": "", "arguments": ""}})
        if part.get("id"):
            call["id"] = part["id"]
        function = part.get("function") or {}
        if function.get("name"):
            call["function"]["name"] += function["name"]
        if function.get("arguments"):
            call["function"]["arguments"] += function["arguments"]

    def message(self) -> dict:
        tool_calls = [self.tool_calls[index] for index in sorted(self.tool_calls)]
        return answer_message({"content": "".join(self.text) if self.text or not tool_calls else None,
                               "tool_calls": tool_calls})
